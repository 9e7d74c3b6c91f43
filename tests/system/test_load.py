"""Load: 100 provider processes at once against one throttling IoT (issue 6).

GIVEN the provider's Lambda asset, bundled into a temporary folder by the
provider's own local bundling (the handler package and crhelper, as synth
ships them), and 100 :class:`~cdk_iot_job_local.lambda_process.LambdaProcess`
children started at once, each with only that folder and boto3 on its
``sys.path`` and the provider's real 300 s function timeout; ONE
``ThreadedMotoServer`` carrying the strict IoT fake (as
:class:`iot_faults.FaultyIotFake`, which throttles), which the children reach
through ``AWS_ENDPOINT_URL``; and the local HTTPS endpoint standing in for
CloudFormation's response URLs, trusted through ``SSL_CERT_FILE``.

* Phase 1: 100 Creates of 100 logical ids of one stack, all delivered at
  once, while the fake throttles 30% of all IoT calls (ThrottlingException,
  HTTP 429). Every event gets exactly one response, SUCCESS, and IoT then
  holds exactly the 100 jobs the responses name, each tagged with its own
  logical id: none missing, none twice.
* Phase 2: 100 Deletes at once, still throttled, under IoT's limit of 10
  deletions in progress (the fake answers LimitExceededException beyond it).
  Every event gets exactly one response, SUCCESS, and no job of the stack
  remains; a job created outside the stack beforehand is never called on.

Nothing is sped up: botocore's standard retry backoff and the handler's
deletion polls sleep for real in the children. The figures (wall times,
attempts per IoT call, LimitExceeded answers, peak memory per process) are
reported through :mod:`figures`, never asserted as timings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import statistics
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import figures
import pytest
from botocore.exceptions import ClientError
from cfn_events import event as cfn_event
from cfn_faults import FaultyCloudFormationEndpoint
from iot_faults import OPERATIONS, FaultyIotFake, OperationStats
from job_arns import arn
from moto.server import ThreadedMotoServer
from provider_asset import bundle_provider_asset

from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint
from cdk_iot_job_local.lambda_process import LambdaProcess, lambda_runtime_path

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
HANDLER = "cdk_iot_job_provider.handler.handler"
PROCESSES = 100
THROTTLED_FRACTION = 0.3
# Fixed, so the sequence of throttled calls is the same in every run (their interleaving is not).
THROTTLE_SEED = 6
# DescribeJob calls that still see a deleted job DELETION_IN_PROGRESS. With 1, a deletion holds one
# of IoT's 10 slots from DeleteJob through the handler's first poll interval (0.5 s), so 100 Deletes
# at once queue for slots. The fake's default, 2, holds each slot 1.5 s and made the phase ~65 s
# instead of ~45 s: botocore retries LimitExceededException as throttling, with backoff of up to
# 20 s, so queued deletions sleep well past the moment a slot frees.
DELETION_POLLS = 1
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/CdkIotJobLoad/{uuid.uuid4()}"
FOREIGN_STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/SomeoneElse/{uuid.uuid4()}"
THING_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/load-device"
STACK_TAG = "cdk-iot-job:stack-id"
LOGICAL_ID_TAG = "cdk-iot-job:logical-id"
FOREIGN_JOB_ID = "load-foreign-job"
FIGURES_TABLE = "Load: 100 concurrent handler processes"

Item = TypeVar("Item")


# --------------------------------------------------------------------------
# the rig: one moto server, the fake, the response endpoint, 100 children
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Rig:
    """What both phases share."""

    fake: FaultyIotFake
    endpoint: FaultyCloudFormationEndpoint
    processes: list[LambdaProcess]
    iot: Any
    cold_start_wall_s: float


def _function_timeout_s() -> float:
    """The provider function's configured timeout (the handler keeps 30 s of it to answer)."""
    from cdk_iot_job.provider import FUNCTION_TIMEOUT

    return float(FUNCTION_TIMEOUT.to_seconds())


def _in_parallel(work: Callable[[Item], Any], items: Sequence[Item]) -> list[Any]:
    """``work`` on every item, each on a thread of its own; results in order, the first error raised."""
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(work, items))


@contextlib.contextmanager
def _quiet_werkzeug() -> Iterator[None]:
    # The moto server logs every request; thousands of lines would bury a failure report.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    try:
        yield
    finally:
        werkzeug.setLevel(level)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """The server, the fake, the endpoint and 100 started children; all stopped afterwards, even on failure."""
    asset_dir = bundle_provider_asset(tmp_path / "asset")
    runtime_path = lambda_runtime_path(tmp_path)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(_quiet_werkzeug())
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        cleanup.callback(server.stop)
        host, port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        # moto's backends live in this process: start from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")).close()
        fake = cleanup.enter_context(FaultyIotFake(deletion_polls=DELETION_POLLS))
        endpoint = cleanup.enter_context(FaultyCloudFormationEndpoint())
        env = {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "SSL_CERT_FILE": str(endpoint.ca_pem_path),
            **CREDENTIALS,
        }
        processes = [
            LambdaProcess(
                asset_dir,
                HANDLER,
                env,
                runtime_path=runtime_path,
                function_timeout=_function_timeout_s(),
                # 100 interpreters importing boto3 at once on two cores take a while.
                startup_timeout=180.0,
            )
            for _ in range(PROCESSES)
        ]
        # Registered before the starts: children already started are stopped if another fails.
        # Each stop waits for its child to exit; in parallel the waits overlap.
        cleanup.callback(_in_parallel, LambdaProcess.stop, processes)
        started = time.perf_counter()
        _in_parallel(LambdaProcess.start, processes)
        cold_start_wall_s = time.perf_counter() - started
        for process in processes:
            assert process.init_error is None, process.logs()
        iot = boto3.client(
            "iot",
            region_name=REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        yield Rig(fake, endpoint, processes, iot, cold_start_wall_s)


# --------------------------------------------------------------------------
# delivering events the way CloudFormation does: all at once, one URL each
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """One event, the process it went to, what the process returned and when."""

    event: dict[str, Any]
    process: LambdaProcess
    reply: dict[str, Any]
    seconds: float

    @property
    def url(self) -> str:
        return str(self.event["ResponseURL"])

    @property
    def logical_id(self) -> str:
        return str(self.event["LogicalResourceId"])


def _deliver_at_once(
    endpoint: CloudFormationEndpoint, events: list[dict[str, Any]], processes: Sequence[LambdaProcess]
) -> tuple[list[Delivery], float]:
    """Send ``events[i]`` to ``processes[i]``, all released together; the deliveries and the wall time."""
    assert len(events) == len(processes)
    for event in events:
        event["ResponseURL"] = endpoint.response_url(str(event["LogicalResourceId"]))
    release = threading.Barrier(len(events) + 1)

    def deliver(index: int) -> Delivery:
        event, process = events[index], processes[index]
        release.wait()
        started = time.perf_counter()
        # Beyond the function timeout, LambdaProcess reports "Task timed out" like Lambda does.
        reply = process.invoke(event, timeout=process.function_timeout + 30)
        return Delivery(event, process, reply, time.perf_counter() - started)

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        futures = [pool.submit(deliver, index) for index in range(len(events))]
        release.wait()
        started = time.perf_counter()
        deliveries = [future.result() for future in futures]
    return deliveries, time.perf_counter() - started


def _the_one_response(endpoint: CloudFormationEndpoint, delivery: Delivery) -> dict[str, Any]:
    """The single body PUT at the delivery's ResponseURL, checked as CloudFormation would."""
    event, reply = delivery.event, delivery.reply
    assert reply["ok"] and not reply["timed_out"], f"{delivery.logical_id}: {reply['error']}\n{reply['logs']}"
    requests = endpoint.requests_for(delivery.url)
    assert len(requests) == 1, f"{delivery.logical_id}: {len(requests)} responses\n{reply['logs']}"
    [request] = requests
    assert request.known_url and request.reply_status == 200
    assert request.body_size <= 4096
    body = request.json
    assert isinstance(body, dict), request.body
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        event["LogicalResourceId"],
    )
    assert body["Status"] == "SUCCESS", f"{delivery.logical_id}: {body.get('Reason')}\n{reply['logs']}"
    return body


# --------------------------------------------------------------------------
# IoT as the test sees it, and the figures
# --------------------------------------------------------------------------
def _properties(index: int) -> dict[str, Any]:
    return {
        "Targets": [THING_ARN],
        "Document": json.dumps({"operation": "load", "index": index}),
        "Description": f"load test job {index}",
        "Tags": [{"Key": "load-index", "Value": str(index)}],
    }


def _logical_id(index: int) -> str:
    return f"LoadJob{index:03d}"


def _jobs_by_stack(iot: Any) -> dict[str, dict[str, dict[str, str]]]:
    """Every job in IoT with its tags, grouped by the stack its ownership tag names ("" for none)."""
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    # One page holds them all (moto 5.2.5's ListJobs repeats its nextToken, so no paginating).
    page = iot.list_jobs(maxResults=250)
    assert len(page["jobs"]) < 250 and not page.get("nextToken"), "one page of ListJobs holds every job"
    for job in page["jobs"]:
        listed = iot.list_tags_for_resource(resourceArn=job["jobArn"])["tags"]
        tags = {tag["Key"]: tag.get("Value", "") for tag in listed}
        grouped.setdefault(tags.get(STACK_TAG, ""), {})[job["jobId"]] = tags
    return grouped


def _calls_on(job_id: str, calls: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    return [call for call in calls if call[1] in (job_id, arn(job_id))]


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _median_max(values: Iterable[float], digits: int = 0) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.{digits}f} / {ordered[-1]:.{digits}f}"


def _record_figures(
    phase: str,
    deliveries: list[Delivery],
    wall_s: float,
    stats: dict[str, OperationStats],
    **extra: object,
) -> None:
    attempts = sum(s.attempts for s in stats.values())
    calls = sum(s.invocations for s in stats.values())
    figures.record(
        FIGURES_TABLE,
        phase=phase,
        events=len(deliveries),
        wall_s=f"{wall_s:.1f}",
        event_s_median_max=_median_max((delivery.seconds for delivery in deliveries), 1),
        iot_calls=calls,
        iot_requests=attempts,
        throttled=sum(s.errors.get("ThrottlingException", 0) for s in stats.values()),
        attempts_per_call=f"{attempts / calls:.2f}",
        attempts_per_call_by_operation=", ".join(
            f"{name} {s.attempts}/{s.invocations}={s.attempts_per_invocation:.2f}" for name, s in sorted(stats.items())
        ),
        limit_exceeded=sum(s.errors.get("LimitExceededException", 0) for s in stats.values()),
        **extra,
    )


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------
@pytest.mark.load
def test_100_handler_processes_create_and_delete_100_jobs_at_once_under_throttling(rig: Rig) -> None:
    fake, endpoint, iot = rig.fake, rig.endpoint, rig.iot
    # GIVEN a job outside the stack, whose ownership tags name another stack but one of our logical ids
    iot.create_job(
        jobId=FOREIGN_JOB_ID,
        targets=[THING_ARN],
        document="{}",
        tags=[
            {"Key": STACK_TAG, "Value": FOREIGN_STACK_ID},
            {"Key": LOGICAL_ID_TAG, "Value": _logical_id(7)},
        ],
    )
    foreign_tags = _jobs_by_stack(iot)[FOREIGN_STACK_ID][FOREIGN_JOB_ID]
    fake.reset()

    # ---------------------------------------------------------- phase 1: Create
    # WHEN CloudFormation creates 100 jobs of one stack at once while 30% of IoT calls are throttled
    creates = [
        cfn_event("Create", _properties(index), response_url="", logical_id=_logical_id(index), stack_id=STACK_ID)
        for index in range(PROCESSES)
    ]
    fake.fail_fraction(OPERATIONS, "ThrottlingException", THROTTLED_FRACTION, seed=THROTTLE_SEED)
    created, create_wall_s = _deliver_at_once(endpoint, creates, rig.processes)
    create_stats, create_calls = fake.stats(), fake.calls
    fake.fail_fraction(OPERATIONS, "ThrottlingException", 0.0, seed=THROTTLE_SEED)
    _record_figures(
        f"create, {THROTTLED_FRACTION:.0%} of IoT calls throttled",
        created,
        create_wall_s,
        create_stats,
        cold_start_wall_s=f"{rig.cold_start_wall_s:.1f}",
        handler_init_ms_median_max=_median_max(process.init_duration_ms or 0.0 for process in rig.processes),
    )

    # THEN every event got exactly one response, SUCCESS, naming its own job
    job_of: dict[str, str] = {}
    for delivery in created:
        body = _the_one_response(endpoint, delivery)
        # The physical id is the job's ARN; the attributes are exactly Arn, CreatedAt and JobId.
        job_id = body["PhysicalResourceId"].rsplit("/", 1)[-1]
        assert body["PhysicalResourceId"] == arn(job_id)
        assert set(body["Data"]) == {"Arn", "CreatedAt", "JobId"}
        assert (body["Data"]["Arn"], body["Data"]["JobId"]) == (arn(job_id), job_id)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["Data"]["CreatedAt"])
        job_of[delivery.logical_id] = job_id
    assert len(endpoint.requests()) == PROCESSES, "no response went anywhere else"
    assert len(set(job_of.values())) == PROCESSES, "no two resources share a job"
    # ... and IoT holds exactly those 100 jobs, each tagged with its own logical id
    stack_jobs = _jobs_by_stack(iot)[STACK_ID]
    assert sorted(stack_jobs) == sorted(job_of.values()), "no job missing, none extra"
    for logical_id, job_id in job_of.items():
        assert stack_jobs[job_id][LOGICAL_ID_TAG] == logical_id
    create_job = create_stats["CreateJob"]
    assert create_job.attempts - sum(create_job.errors.values()) == PROCESSES, "CreateJob succeeded once per job"
    assert create_job.injected > 0, "the throttling really happened"
    assert _calls_on(FOREIGN_JOB_ID, create_calls) == []

    # ---------------------------------------------------------- phase 2: Delete
    # WHEN CloudFormation deletes the stack: 100 Deletes at once, still throttled, and at most 10
    # deletions may be in progress. Lambda routes events to any warm sandbox: shift them by half.
    fake.reset()
    endpoint.reset()
    deletes = [
        cfn_event(
            "Delete",
            _properties(index),
            response_url="",
            physical_id=arn(job_of[_logical_id(index)]),
            logical_id=_logical_id(index),
            stack_id=STACK_ID,
        )
        for index in range(PROCESSES)
    ]
    shifted = rig.processes[PROCESSES // 2 :] + rig.processes[: PROCESSES // 2]
    fake.fail_fraction(OPERATIONS, "ThrottlingException", THROTTLED_FRACTION, seed=THROTTLE_SEED + 1)
    deleted, delete_wall_s = _deliver_at_once(endpoint, deletes, shifted)
    delete_stats, delete_calls = fake.stats(), fake.calls
    fake.fail_fraction(OPERATIONS, "ThrottlingException", 0.0, seed=THROTTLE_SEED + 1)
    # Read before the fixture stops the children.
    peak_rss_mb = [_peak_rss_mb(process.pid) for process in rig.processes if process.pid is not None]
    _record_figures(
        f"delete, {THROTTLED_FRACTION:.0%} throttled, 10 deletions at most, deletion_polls={DELETION_POLLS}",
        deleted,
        delete_wall_s,
        delete_stats,
        peak_rss_mb_per_process_median_max=_median_max(peak_rss_mb),
    )

    # THEN every event got exactly one response, SUCCESS, with the id it was sent
    for delivery in deleted:
        body = _the_one_response(endpoint, delivery)
        assert body["PhysicalResourceId"] == delivery.event["PhysicalResourceId"]
    assert len(endpoint.requests()) == PROCESSES, "no response went anywhere else"
    assert delete_stats["DeleteJob"].errors.get("LimitExceededException", 0) > 0, "the deletion limit was reached"
    # ... no job of the stack remains, and the foreign job was never called on
    jobs = _jobs_by_stack(iot)
    assert STACK_ID not in jobs, sorted(jobs.get(STACK_ID, {}))
    for job_id in job_of.values():
        with pytest.raises(ClientError) as gone:
            iot.describe_job(jobId=job_id)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert _calls_on(FOREIGN_JOB_ID, create_calls + delete_calls) == []
    assert iot.describe_job(jobId=FOREIGN_JOB_ID)["job"]["status"] == "IN_PROGRESS"
    assert jobs[FOREIGN_STACK_ID] == {FOREIGN_JOB_ID: foreign_tags}
    assert all(process.cold_starts == 1 for process in rig.processes), "no child died and was restarted"
