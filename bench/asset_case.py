"""Case 2, asset size: the provider's Lambda asset against AwsCustomResource's.

Both are taken from a synth's output folder the same way: the stack's
``<stack>.assets.json`` names each file asset's folder; the one that is not
the template is the function's code. Counted: files, bytes, and the bytes
of a deterministic zip (sorted paths, fixed timestamps, DEFLATE level 9,
the level CDK's asset packaging uses).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AssetSize", "function_asset_dir", "measure_asset"]

_FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class AssetSize:
    """One asset folder's size."""

    path: Path
    files: int
    bytes: int
    zipped_bytes: int


def function_asset_dir(outdir: Path, stack_name: str) -> Path:
    """The one code asset folder of ``stack_name`` in the synth output ``outdir``."""
    manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    folders = [
        outdir / asset["source"]["path"]
        for asset in manifest["files"].values()
        if asset["source"].get("packaging") == "zip"
    ]
    if len(folders) != 1:
        raise RuntimeError(f"expected one code asset in {outdir}, found {folders}")
    return folders[0]


def measure_asset(folder: Path) -> AssetSize:
    """Count the folder's files and bytes and zip it deterministically."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_FIXED_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return AssetSize(
        path=folder,
        files=len(files),
        bytes=sum(path.stat().st_size for path in files),
        zipped_bytes=len(buffer.getvalue()),
    )
