"""The ``cdk-iot-job-local`` entry point: one line of advice when the ``local`` extra is missing.

The package alone is enough to synthesize; the local engine needs
the ``local`` extra as well. This module imports only the standard library
until it knows the extra is there, so without it the user reads how to
install it instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["EXTRA_MODULES", "install_hint", "main", "missing_modules"]

#: The import names of the ``local`` extra's distributions (PyYAML is ``yaml``).
EXTRA_MODULES = ("boto3", "moto", "rich", "trustme", "yaml")
_EXIT_BAD_INPUT = 2


def missing_modules() -> list[str]:
    """The extra's modules that cannot be found, without importing any of them."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a finder refusing it, or a broken half-import
            found = False
        if not found:
            missing.append(name)
    return missing


def install_hint(missing: Sequence[str]) -> str:
    """The one line that says what is missing and how to install it."""
    return (
        f"cdk-iot-job-local needs the 'local' extra (missing: {', '.join(missing)}): "
        "pip install 'cdk-iot-job[local]', or from a checkout: pip install '.[local]'"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Check the extra, then run :func:`cdk_iot_job_local.cli.main`; returns the exit status."""
    missing = missing_modules()
    if missing:
        print(install_hint(missing), file=sys.stderr)
        return _EXIT_BAD_INPUT
    try:
        from .cli import main as cli_main
    except ModuleNotFoundError as error:
        # The extra's packages are there but one of their own dependencies is not.
        print(install_hint([error.name or str(error)]), file=sys.stderr)
        return _EXIT_BAD_INPUT
    return cli_main(argv)
