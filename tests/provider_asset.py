"""The provider's Lambda asset without a synth: the provider's own local bundling, as synth runs it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundle_provider_asset"]


def bundle_provider_asset(output_dir: Path) -> Path:
    """Bundle the handler package and crhelper into ``output_dir`` (created) and return it."""
    from cdk_iot_job.provider_asset import bundle_provider_files

    output_dir.mkdir()
    bundle_provider_files(str(output_dir))
    assert (output_dir / "cdk_iot_job_provider" / "handler.py").is_file()
    assert (output_dir / "crhelper" / "__init__.py").is_file()
    return output_dir
