#!/usr/bin/env python3
"""``make bench``: IotJob against AwsCustomResource, CfnJob and the bare-boto3 floor; writes ``BENCHMARKS.md``.

Cases: (1) synth footprint, limits, time and memory, (2) asset size, (3) cold
start, (4) event latency, (5) scaling from 1 to 490 jobs, (6) a rollout gate's cost. Every figure is
measured side by side in this run, with repetitions; see each module.

Exit status: 0 when every goal is met, 1 when one is missed (a stretch goal
never fails the run). ``--smoke`` runs a fast version for the test suite
(N = 1 and 3, one repetition, all synths in one process): it writes every
section and reports the goals, but always exits 0 once the report is written.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from asset_case import function_asset_dir, measure_asset
from cold_start_case import measure_cold_start
from event_case import measure_events
from gate_case import measure_gate
from report import Report
from synth_case import KINDS, STACK_NAME, run_synths, run_synths_in_one_process

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """How much of each case to run."""

    job_counts: list[int]
    synth_repetitions: dict[int, int]
    cold_start_repetitions: int
    event_repetitions: int
    gate_minutes: int


FULL = Plan(
    job_counts=[1, 50, 200, 490],
    synth_repetitions={1: 3, 50: 3, 200: 3, 490: 2},
    cold_start_repetitions=10,
    event_repetitions=20,
    gate_minutes=55,
)
SMOKE = Plan(
    job_counts=[1, 3], synth_repetitions={1: 1, 3: 1}, cold_start_repetitions=1, event_repetitions=1, gate_minutes=6
)


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> list[str]:
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("aws-cdk-lib", "jsii", "boto3", "moto", "crhelper")
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return [
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}, {platform.system()}), load average at start {load}",
        f"Python {platform.python_version()}, Node.js {_version(['node', '--version'])}; {packages}",
    ]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Run the cases, write the report, and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="fast run for the test suite; never fails on goals")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md", help="report path")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    command = "make bench" if not args.smoke else "make bench  # this file came from: python bench/run.py --smoke"
    machine = _machine()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="cdk-iot-job-bench-") as scratch_name:
        scratch = Path(scratch_name)
        _progress(f"synth: {len(KINDS)} tools x N = {plan.job_counts}")
        if args.smoke:
            synth_runs, outdirs = run_synths_in_one_process(plan.job_counts, scratch / "synth")
        else:
            (scratch / "synth").mkdir()
            synth_runs, outdirs = run_synths(plan.job_counts, plan.synth_repetitions, scratch / "synth")
        _progress("asset")
        # CfnJob has no code asset.
        assets = {kind: measure_asset(function_asset_dir(outdirs[kind], STACK_NAME)) for kind in KINDS[:2]}
        provider_asset = assets["iotjob"].path
        _progress(f"cold start: {plan.cold_start_repetitions} processes per side")
        cold_start = measure_cold_start(provider_asset, plan.cold_start_repetitions)
        _progress(f"events: {plan.event_repetitions} cycles per side")
        events = measure_events(provider_asset, plan.event_repetitions, warm_up_cycles=1 if args.smoke else 2)
        _progress(f"rollout gate: a {plan.gate_minutes}-minute gate at a time scale of 60")
        gate = measure_gate(provider_asset, timeout_minutes=plan.gate_minutes, bake_minutes=1 if args.smoke else 5)
        elapsed = time.perf_counter() - started
        report = Report(
            smoke=args.smoke,
            command=command,
            machine=[*machine, f"Benchmark wall time: {elapsed / 60:.1f} min"],
            synth_runs=synth_runs,
            assets=assets,
            cold_start=cold_start,
            events=events,
            gate=gate,
        )
        text = report.render()
    args.output.write_text(text)
    _progress(f"wrote {args.output}")
    for goal in report.goals:
        _progress(f"  {goal.verdict:>13}  {goal.text}")
    if report.missed and not args.smoke:
        _progress(f"{len(report.missed)} goal(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
