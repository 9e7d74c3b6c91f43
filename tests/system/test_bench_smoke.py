"""``bench/run.py --smoke``: the benchmark runs end to end and reports every case (issue: benchmarks).

The smoke run synthesizes N = 1 and 3 of each tool (in one process), bundles
nothing new (the assets come from those synths), starts one cold-start probe
per side and sends one Create/Update/Delete cycle per side to moto. It
reports the goals but always exits 0. Timings are never asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The exhaustive set (make check), not make test: about 20 s of synths and cold starts.
pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[2]
SECTIONS = (
    "## 1. Synth: template footprint, limits, time and memory",
    "## 2. Asset:",
    "## 3. Cold start:",
    "## 4. Event latency:",
    "## 5. Scaling:",
    "## 6. Rollout gates:",
)
RATIO_HEADER = "| figure | IotJob (ours) |"


def test_the_smoke_benchmark_writes_every_case_with_both_sides_and_ratios(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    # The moto server and the Lambda children get their own settings; none of the test session's leak in.
    env.pop("AWS_ENDPOINT_URL", None)

    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    report = output.read_text()
    assert "Smoke run" in report
    for section in SECTIONS:
        assert section in report, section
    per_case = [report.split(section, 1)[1].split("\n## ", 1)[0] for section in SECTIONS]
    # Cases 1-4 compare IotJob with an alternative in a table with a ratio column.
    for text in per_case[:4]:
        assert RATIO_HEADER in text
        assert "| ratio | goal | met? |" in text
    for alternative in ("AwsCustomResource", "CfnJob"):
        assert f"vs {alternative}" in per_case[0]
        assert alternative in per_case[4]
    assert "| zipped bytes |" in per_case[1]
    assert "| import + IoT client (ms) |" in per_case[2] and "| module | self ms |" in per_case[2]
    for event in ("Create", "Update", "Delete"):
        assert f"| {event} (ms) |" in per_case[3]
    assert "deletion polls" in per_case[3]
    assert "synth s per job" in per_case[4] and "bytes per job" in per_case[4]
    # Every goal has a verdict, whichever it is.
    assert report.count("| yes |") + report.count("| **no** |") + report.count("| no (stretch) |") >= 12
