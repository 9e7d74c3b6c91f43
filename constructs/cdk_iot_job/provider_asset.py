"""The provider's Lambda asset: the handler package and ``crhelper``, bundled locally.

No Docker and no network: the ``.py`` files of the installed
``cdk_iot_job_provider`` and ``crhelper`` packages are copied into the asset,
which is hashed by its content, so every synth of the same packages yields the
same asset. :mod:`cdk_iot_job.provider_template` zips the same files.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

__all__ = ["PROVIDER_HANDLER", "PROVIDER_PACKAGE", "RUNTIME", "bundle_provider_files", "provider_code"]

#: The handler's entry point inside the asset.
PROVIDER_HANDLER = "cdk_iot_job_provider.handler.handler"
#: The handler package copied into the asset (``lambda/cdk_iot_job_provider``, installed).
PROVIDER_PACKAGE = "cdk_iot_job_provider"
#: The Lambda runtime the asset is built for.
RUNTIME = lambda_.Runtime.PYTHON_3_14

_SHIPPED_PACKAGES = (PROVIDER_PACKAGE, "crhelper")
_SHIPPED_SUFFIXES = (".py",)


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (crhelper would
    # create boto3 clients on import).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {name} package must be installed to build the IotJob provider asset")
    return Path(next(iter(spec.submodule_search_locations)))


def _copy_package(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in _SHIPPED_SUFFIXES:
            shutil.copyfile(path, destination / path.name)


def bundle_provider_files(output_dir: str | Path) -> None:
    """Copy the handler package and crhelper into ``output_dir``: only their ``.py`` files.

    Parameters
    ----------
    output_dir
        An existing folder; each package becomes a subfolder of it.

    Raises
    ------
    RuntimeError
        When either package is not installed.
    """
    output = Path(output_dir)
    for package in _SHIPPED_PACKAGES:
        _copy_package(_package_dir(package), output / package)


@jsii.implements(ILocalBundling)
class _LocalBundling:
    """Bundles the asset in-process (:func:`bundle_provider_files`), so synth never starts Docker."""

    def try_bundle(self, output_dir: str, _options: Any = None) -> bool:
        bundle_provider_files(output_dir)
        return True


def provider_code() -> lambda_.Code:
    """The provider's Lambda code, bundled locally and hashed by content."""
    return lambda_.Code.from_asset(
        str(_package_dir(PROVIDER_PACKAGE)),
        asset_hash_type=AssetHashType.OUTPUT,
        # jsii passes the options positionally, unlike ILocalBundling's keyword-only stub.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_LocalBundling()),  # type: ignore[arg-type]
    )
