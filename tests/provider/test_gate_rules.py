"""The gate's pure evaluator, on a table of counts, clocks and configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.gate_rules import Counts, GateConfig, denominator, evaluate


def counts(**by_status: int) -> Counts:
    names = {
        "succeeded": "SUCCEEDED",
        "failed": "FAILED",
        "rejected": "REJECTED",
        "timed_out": "TIMED_OUT",
        "canceled": "CANCELED",
        "removed": "REMOVED",
        "in_progress": "IN_PROGRESS",
        "queued": "QUEUED",
    }
    return Counts({names[key]: value for key, value in by_status.items()})


GATE = GateConfig(min_succeeded_percent=95, max_failed_percent=2, bake_seconds=600, timeout_seconds=2700)


@dataclass(frozen=True)
class Case:
    name: str
    counts: Counts
    kind: str
    reason_has: tuple[str, ...] = ()
    config: GateConfig = GATE
    total: int = 100
    status: str | None = "IN_PROGRESS"
    elapsed: float = 60.0
    met_at: float | None = None
    reason_code: str | None = None
    comment: str | None = None
    selection: str = "SNAPSHOT"


CASES = [
    Case("nothing answered yet", counts(queued=100), "WAIT", ("0 of 100 (0.0%) succeeded",)),
    Case("threshold met: the bake starts", counts(succeeded=95, in_progress=5), "WAIT", ("baking for 600 s",)),
    Case("threshold held for the bake", counts(succeeded=96, in_progress=4), "PASS", (), met_at=0.0, elapsed=600.0),
    Case("bake not over yet", counts(succeeded=96, in_progress=4), "WAIT", ("baking for 1 s",), met_at=0, elapsed=599),
    Case(
        "a failure during the bake still fails",
        counts(succeeded=96, failed=3, in_progress=1),
        "FAIL",
        ("3 of 100 (3.0%) failed (FAILED+REJECTED+TIMED_OUT), over the maximum of 2%",),
        met_at=0.0,
        elapsed=300.0,
    ),
    Case("at the maximum is not over it", counts(succeeded=50, failed=2, queued=48), "WAIT"),
    Case(
        "rejected and timed out count as failed",
        counts(succeeded=10, rejected=2, timed_out=1, queued=87),
        "FAIL",
        ("3 of 100 (3.0%) failed",),
    ),
    Case(
        "only the configured failure types count",
        counts(succeeded=10, rejected=2, timed_out=1, queued=87),
        "WAIT",
        config=GateConfig(min_succeeded_percent=80, max_failed_percent=2, failure_types=("FAILED",)),
    ),
    Case(
        "success unreachable",
        counts(succeeded=40, failed=6, queued=54),
        "FAIL",
        ("success is unreachable: 6 of 100 things ended without succeeding", "at most 94.0% can succeed"),
        config=GateConfig(min_succeeded_percent=95),
    ),
    Case(
        "canceled executions make success unreachable too",
        counts(succeeded=90, canceled=10),
        "FAIL",
        ("success is unreachable",),
        config=GateConfig(min_succeeded_percent=95),
        status="COMPLETED",
    ),
    Case(
        "aborted by IoT",
        counts(succeeded=3, failed=5, canceled=92),
        "FAIL",
        ("the job was canceled (reasonCode FAILED_THRESHOLD_EXCEEDED: too many failures)",),
        status="CANCELED",
        reason_code="FAILED_THRESHOLD_EXCEEDED",
        comment="too many failures",
    ),
    Case("deleted while waiting", counts(), "FAIL", ("the job was deleted while the gate waited",), status=None),
    Case(
        "being deleted while waiting",
        counts(succeeded=1),
        "FAIL",
        ("deleted while the gate waited",),
        status="DELETION_IN_PROGRESS",
    ),
    Case(
        "timeout with stragglers",
        counts(succeeded=90, in_progress=7, queued=3),
        "FAIL",
        ("the gate timed out after 45 min", "10 thing(s) never answered", "required 95% succeeded"),
        elapsed=2700.0,
    ),
    Case(
        "timeout while baking says so",
        counts(succeeded=96, in_progress=4),
        "FAIL",
        ("(the bake time had not passed)",),
        met_at=2400.0,
        elapsed=2700.0,
    ),
    Case(
        "no things at all",
        counts(),
        "FAIL",
        ("the job targets no things",),
        total=0,
    ),
    Case(
        "a continuous job with no things yet waits",
        counts(),
        "WAIT",
        ("no things yet",),
        total=0,
        selection="CONTINUOUS",
    ),
    Case(
        "a continuous job passes without completing",
        counts(succeeded=10),
        "PASS",
        config=GateConfig(min_succeeded_percent=100),
        total=10,
        selection="CONTINUOUS",
    ),
    Case("zero bake passes at once", counts(succeeded=95, queued=5), "PASS", config=GateConfig(95)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_verdicts(case: Case) -> None:
    verdict = evaluate(
        case.config,
        case.counts,
        total=case.total,
        job_status=case.status,
        elapsed_seconds=case.elapsed,
        threshold_met_at=case.met_at,
        reason_code=case.reason_code,
        comment=case.comment,
        target_selection=case.selection,
    )

    assert verdict.kind == case.kind, verdict.reason
    for text in case.reason_has:
        assert text in verdict.reason


def test_the_bake_is_reckoned_from_when_the_threshold_was_first_met() -> None:
    first = evaluate(GATE, counts(succeeded=95, queued=5), total=100, job_status="IN_PROGRESS", elapsed_seconds=100)
    later = evaluate(
        GATE,
        counts(succeeded=97, queued=3),
        total=100,
        job_status="IN_PROGRESS",
        elapsed_seconds=700,
        threshold_met_at=first.threshold_met_at,
    )

    assert first.threshold_met_at == 100
    assert later.kind == "PASS"


def test_losing_the_threshold_restarts_the_bake() -> None:
    # A late joiner of a continuous job raises the denominator below the threshold.
    verdict = evaluate(
        GATE,
        counts(succeeded=95, queued=6),
        total=101,
        job_status="IN_PROGRESS",
        elapsed_seconds=700,
        threshold_met_at=100,
    )

    assert verdict.kind == "WAIT"
    assert verdict.threshold_met_at is None


@pytest.mark.parametrize(
    ("given", "counted", "expected", "total"),
    [
        ({"queued": 10}, 10, None, 10),
        ({"queued": 8, "removed": 2}, 10, None, 8),
        ({"queued": 12}, 10, None, 12),  # two things joined the continuous job's group
        ({"queued": 12, "removed": 1}, 10, 50, 50),  # ExpectedTargets wins
    ],
)
def test_denominator(given: dict[str, int], counted: int, expected: int | None, total: int) -> None:
    assert denominator(counts(**given), counted=counted, expected=expected) == total


def test_config_from_the_parsed_property_with_defaults() -> None:
    parsed: dict[str, Any] = schema.parse_properties(
        {
            "Targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/canary"],
            "Document": "{}",
            "RolloutGate": {"MinSucceededPercent": "95.5"},
        }
    )
    config = GateConfig.of(parsed["RolloutGate"])

    assert config == GateConfig(
        min_succeeded_percent=95.5,
        max_failed_percent=None,
        failure_types=("FAILED", "REJECTED", "TIMED_OUT"),
        bake_seconds=0.0,
        timeout_seconds=1800.0,
        on_failure="CANCEL",
        expected_targets=None,
    )


def test_counts_read_describe_jobs_process_details() -> None:
    details = {"numberOfSucceededThings": 3, "numberOfQueuedThings": 2, "processingTargets": ["arn"]}

    read = Counts.of(details)

    assert (read["SUCCEEDED"], read["QUEUED"], read["FAILED"], read.executions) == (3, 2, 0, 5)
    assert read.attributes()["SucceededThings"] == "3"
    assert Counts.of(None).executions == 0
