"""Cases 1 and 5, synth: one fresh process per synth, for each tool and each number of jobs.

The wall time of the whole ``bench/synth_app.py`` process is taken in this
process around ``subprocess.run``. Peak memory is reported by the child
itself: ``VmHWM`` of its Python process and of the jsii Node.js process it
started, read from ``/proc`` after ``app.synth()`` while both still run
(``getrusage(RUSAGE_CHILDREN)`` would give neither the Node.js child, still
running then, nor a per-synth figure here). Template bytes are the size of
the stack's template file as ``app.synth()`` wrote it, resources the number
of its ``Resources``. Within a repetition every tool runs for a given N
before the next N, in an order that rotates, so drift hits all sides alike.

The smoke run (:func:`run_synths_in_one_process`) synthesizes every app in a
single process instead: its times are not comparable, only its pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "SynthRun", "run_synths", "run_synths_in_one_process"]

SYNTH_APP = Path(__file__).resolve().parent / "synth_app.py"
KINDS = ("iotjob", "awscustomresource", "cfnjob")
STACK_NAME = "BenchJobs"

SynthRuns = dict[tuple[str, int], list["SynthRun"]]


@dataclass(frozen=True)
class SynthRun:
    """One synth."""

    kind: str
    jobs: int
    wall_s: float
    import_s: float
    construct_s: float
    synth_s: float
    python_peak_rss_kib: int
    node_peak_rss_kib: int
    template_bytes: int
    resources: int

    @property
    def peak_rss_mib(self) -> float:
        """Python's and Node.js's peak resident sets added up, in MiB."""
        return (self.python_peak_rss_kib + self.node_peak_rss_kib) / 1024


def _synth_process(
    kinds: list[str], job_counts: list[int], outdir: Path, *extra: str
) -> tuple[float, list[dict[str, Any]]]:
    """Run ``synth_app.py`` once; its wall time and report lines."""
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    command = [sys.executable, str(SYNTH_APP), "--kind", *kinds, "--jobs", *map(str, job_counts)]
    command += ["--outdir", str(outdir), *extra]
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"synth of {job_counts} {kinds} failed:\n{completed.stderr}")
    return wall_s, [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def _synth_run(report: dict[str, Any], wall_s: float) -> SynthRun:
    template_path = Path(report["outdir"]) / f"{STACK_NAME}.template.json"
    template = json.loads(template_path.read_text())
    return SynthRun(
        kind=str(report["kind"]),
        jobs=int(report["jobs"]),
        wall_s=wall_s,
        import_s=float(report["import_s"]),
        construct_s=float(report["construct_s"]),
        synth_s=float(report["synth_s"]),
        python_peak_rss_kib=int(report["python_peak_rss_kib"]),
        node_peak_rss_kib=int(report["node_peak_rss_kib"]),
        template_bytes=template_path.stat().st_size,
        resources=len(template["Resources"]),
    )


def run_synth(kind: str, jobs: int, outdir: Path) -> SynthRun:
    """Synthesize a stack of ``jobs`` jobs of ``kind`` into ``outdir`` (replaced) in a fresh process."""
    shutil.rmtree(outdir, ignore_errors=True)
    wall_s, [report] = _synth_process([kind], [jobs], outdir)
    return _synth_run(report, wall_s)


def run_synths(
    job_counts: list[int], repetitions: dict[int, int], scratch: Path, *, progress: bool = True
) -> tuple[SynthRuns, dict[str, Path]]:
    """Every (kind, N) synth in a process of its own, ``repetitions[N]`` times, interleaved.

    Returns the runs by (kind, N), and per kind the output folder of its
    smallest N (kept, for the asset case).
    """
    runs: SynthRuns = {(kind, jobs): [] for kind in KINDS for jobs in job_counts}
    smallest = min(job_counts)
    kept = {kind: scratch / f"{kind}-{smallest}" for kind in KINDS}
    for repetition in range(max(repetitions.values())):
        for position, jobs in enumerate(job_counts):
            if repetition >= repetitions[jobs]:
                continue
            shift = (repetition + position) % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                outdir = kept[kind] if jobs == smallest else scratch / "synth-out"
                run = run_synth(kind, jobs, outdir)
                runs[(kind, jobs)].append(run)
                if progress:
                    print(
                        f"  synth rep {repetition + 1} N={jobs:<3} {kind:<17} {run.wall_s:6.2f} s"
                        f" {run.template_bytes:>8} B {run.resources:>4} resources",
                        file=sys.stderr,
                        flush=True,
                    )
    return runs, kept


def run_synths_in_one_process(job_counts: list[int], scratch: Path) -> tuple[SynthRuns, dict[str, Path]]:
    """The smoke run's synths: every (kind, N) once, all in one process after a warm-up app.

    Their times are construct plus synth of each app (not comparable to a full run's process times).
    """
    _, reports = _synth_process(list(KINDS), job_counts, scratch, "--warm-up")
    runs: SynthRuns = {}
    for report in reports:
        wall_s = float(report["construct_s"]) + float(report["synth_s"])
        run = _synth_run(report, wall_s)
        runs[(run.kind, run.jobs)] = [run]
    smallest = min(job_counts)
    return runs, {kind: scratch / f"{kind}-{smallest}" for kind in KINDS}
