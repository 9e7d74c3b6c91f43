"""Case 3, cold start: the provider's handler import plus first-event initialisation against the floor.

Each measurement is a fresh ``python -S -P -B bench/cold_start_probe.py``
process with only the provider's asset folder and a boto3-only runtime
folder on ``sys.path`` (as :class:`~cdk_iot_job_local.lambda_process.LambdaProcess`
runs handlers), the Lambda-like environment and the working directory in
the asset folder. The sides alternate. One extra run per side with
``-X importtime`` attributes the difference: the modules only the
provider's side imports, by their own import time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stats import Summary, summarize

from cdk_iot_job_local.lambda_process import lambda_runtime_path

__all__ = ["ColdStartResults", "ImportCost", "measure_cold_start"]

PROBE = Path(__file__).resolve().parent / "cold_start_probe.py"
SIDES = ("handler", "floor")
REGION = "us-east-1"


@dataclass(frozen=True)
class ImportCost:
    """One module's own import time (``-X importtime``'s "self"), in microseconds."""

    module: str
    self_us: int


@dataclass(frozen=True)
class ColdStartResults:
    """What case 3 measured (seconds), and the modules only the provider imports."""

    handler_s: list[float]
    floor_s: list[float]
    handler_process_s: list[float]
    floor_process_s: list[float]
    extra_imports: list[ImportCost]
    handler_imports_us: int
    floor_imports_us: int

    @property
    def handler(self) -> Summary:
        """Handler import plus IoT client, in the child."""
        return summarize(self.handler_s)

    @property
    def floor(self) -> Summary:
        """``import boto3`` plus the IoT client, in the child."""
        return summarize(self.floor_s)


def _environment(asset_dir: Path, runtime_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join([str(asset_dir), str(runtime_dir)]),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "cdk-iot-job-provider",
        "LAMBDA_TASK_ROOT": str(asset_dir),
    }


def _run_probe(side: str, asset_dir: Path, env: dict[str, str], *, importtime: bool = False) -> tuple[float, str]:
    """One probe process: its own reported seconds, and its stderr."""
    command = [sys.executable, "-S", "-P", "-B"] + (["-X", "importtime"] if importtime else [])
    completed = subprocess.run(
        [*command, str(PROBE), side], env=env, cwd=asset_dir, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {side} cold start probe failed:\n{completed.stderr}")
    return float(json.loads(completed.stdout)["seconds"]), completed.stderr


def _import_times(stderr: str) -> dict[str, int]:
    """``-X importtime``'s self time per module (µs)."""
    costs: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        costs[name.strip()] = int(self_us)
    return costs


def measure_cold_start(asset_dir: Path, repetitions: int, top: int = 12) -> ColdStartResults:
    """Run case 3 with ``repetitions`` fresh processes per side."""
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    process_times: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as scratch:
        env = _environment(asset_dir, lambda_runtime_path(Path(scratch)))
        for repetition in range(repetitions):
            for side in SIDES if repetition % 2 == 0 else tuple(reversed(SIDES)):
                started = time.perf_counter()
                seconds, _ = _run_probe(side, asset_dir, env)
                process_times[side].append(time.perf_counter() - started)
                times[side].append(seconds)
        _, handler_trace = _run_probe("handler", asset_dir, env, importtime=True)
        _, floor_trace = _run_probe("floor", asset_dir, env, importtime=True)
    handler_imports, floor_imports = _import_times(handler_trace), _import_times(floor_trace)
    extra = sorted(
        (ImportCost(name, cost) for name, cost in handler_imports.items() if name not in floor_imports),
        key=lambda cost: cost.self_us,
        reverse=True,
    )
    return ColdStartResults(
        handler_s=times["handler"],
        floor_s=times["floor"],
        handler_process_s=process_times["handler"],
        floor_process_s=process_times["floor"],
        extra_imports=extra[:top],
        handler_imports_us=sum(handler_imports.values()),
        floor_imports_us=sum(floor_imports.values()),
    )
