"""One synth, in a process of its own: a stack of N IoT jobs made with one of the three tools.

Run as ``python bench/synth_app.py --kind iotjob|awscustomresource|cfnjob --jobs N --outdir DIR``.
Several ``--kind`` and ``--jobs`` values synthesize one app per combination
in this one process, each into ``DIR/<kind>-<N>`` (the smoke run does that:
only the first app pays the process's fixed costs, so its times mean little).
Every kind gets the same job properties (targets, a ~100-byte document, a
description, a rollout rate, two tags and a fixed job id). The app is
synthesized with ``app.synth()`` as a plain ``python app.py`` would, without
the CDK CLI's context (no path or asset metadata, no version reporting), and
with CDK's own 500-resource check turned off (context
``@aws-cdk/core:stackResourceLimit`` = 0): CDK refuses to synthesize a bigger
stack (TooManyResourcesInStack), and AwsCustomResource's 490-job stack is
measured, then reported over the limit.

After each app the process prints one JSON line on stdout: the phase times
(import is the process's, counted for the first app only), and the peak
resident set (``VmHWM``) of this Python process and of the jsii Node.js
process it started, read from ``/proc`` while both are still alive.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import aws_cdk as cdk  # noqa: E402  (import time is one of the phases)
from aws_cdk import aws_iot as iot  # noqa: E402
from aws_cdk import custom_resources as cr  # noqa: E402

from cdk_iot_job import IotJob, JobExecutionsRolloutConfig  # noqa: E402

KINDS = ("iotjob", "awscustomresource", "cfnjob")
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_NAME = "BenchJobs"
TARGET_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/bench-fleet"
ROLLOUT_PER_MINUTE = 50
# 0 turns off CDK's synth-time check of CloudFormation's 500-resource limit.
CONTEXT = {"@aws-cdk/core:stackResourceLimit": 0}


def job_id(index: int) -> str:
    """The fixed job id of job ``index`` (every kind needs one: ``AWS::IoT::Job`` requires it)."""
    return f"bench-job-{index:04d}"


def document(index: int) -> dict[str, object]:
    """A job document of about 100 bytes as compact JSON."""
    return {
        "operation": "firmware-update",
        "version": "2.4.1",
        "url": f"https://firmware.example.com/sensor/2.4.1.bin?job={index:04d}",
    }


def document_json(index: int) -> str:
    """The document as ``IotJob`` renders a dict: compact JSON with sorted keys."""
    return json.dumps(document(index), separators=(",", ":"), sort_keys=True)


def description(index: int) -> str:
    """The job's description."""
    return f"Sensor firmware 2.4.1, wave {index % 4}"


def tags(index: int) -> dict[str, str]:
    """The job's tags."""
    return {"team": "firmware", "wave": f"wave-{index % 4}"}


def add_iotjob(stack: cdk.Stack, index: int) -> None:
    """One ``IotJob`` (the ``Custom::IotJob`` resource; the provider is shared by the stack)."""
    IotJob(
        stack,
        f"Job{index}",
        job_id=job_id(index),
        targets=[TARGET_ARN],
        document=document(index),
        description=description(index),
        job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=ROLLOUT_PER_MINUTE),
        tags=tags(index),
    )


def add_awscustomresource(stack: cdk.Stack, index: int) -> None:
    """One ``AwsCustomResource`` calling ``Iot.createJob`` on create and ``Iot.deleteJob`` on delete.

    Its policy is scoped to the job's ARN and the target's ARN (CreateJob is
    authorized on both).
    """
    the_job_id = job_id(index)
    job_arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{the_job_id}"
    cr.AwsCustomResource(
        stack,
        f"Job{index}",
        on_create=cr.AwsSdkCall(
            service="Iot",
            action="createJob",
            parameters={
                "jobId": the_job_id,
                "targets": [TARGET_ARN],
                "document": document_json(index),
                "description": description(index),
                "jobExecutionsRolloutConfig": {"maximumPerMinute": ROLLOUT_PER_MINUTE},
                "tags": [{"Key": key, "Value": value} for key, value in tags(index).items()],
            },
            physical_resource_id=cr.PhysicalResourceId.of(the_job_id),
        ),
        on_delete=cr.AwsSdkCall(service="Iot", action="deleteJob", parameters={"jobId": the_job_id, "force": True}),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[job_arn, TARGET_ARN]),
        install_latest_aws_sdk=False,
    )


def add_cfnjob(stack: cdk.Stack, index: int) -> None:
    """One native ``AWS::IoT::Job``."""
    iot.CfnJob(
        stack,
        f"Job{index}",
        job_id=job_id(index),
        targets=[TARGET_ARN],
        document=document_json(index),
        description=description(index),
        job_executions_rollout_config=iot.CfnJob.JobExecutionsRolloutConfigProperty(
            maximum_per_minute=ROLLOUT_PER_MINUTE
        ),
        tags=[cdk.CfnTag(key=key, value=value) for key, value in tags(index).items()],
    )


ADDERS = {"iotjob": add_iotjob, "awscustomresource": add_awscustomresource, "cfnjob": add_cfnjob}


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (``VmHWM``) in KiB; 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def descendant_pids(root: int) -> list[int]:
    """The pids of every live descendant of ``root`` (the jsii Node.js kernel and anything it started)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ')'.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def main(argv: list[str]) -> None:
    """Synthesize the stack and print the JSON report line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=KINDS, required=True, nargs="+")
    parser.add_argument("--jobs", type=int, required=True, nargs="+")
    parser.add_argument("--outdir", required=True)
    parser.add_argument(
        "--warm-up", action="store_true", help="first synthesize one unreported CfnJob app (the first synth is slow)"
    )
    args = parser.parse_args(argv)

    single = len(args.kind) == 1 and len(args.jobs) == 1
    import_s = time.perf_counter() - STARTED
    if args.warm_up:
        app = cdk.App(outdir=str(Path(args.outdir) / "warm-up"), context=CONTEXT)
        add_cfnjob(cdk.Stack(app, STACK_NAME, env=cdk.Environment(account=ACCOUNT, region=REGION)), 0)
        app.synth()
    for kind in args.kind:
        for jobs in args.jobs:
            synthesize(kind, jobs, Path(args.outdir) if single else Path(args.outdir) / f"{kind}-{jobs}", import_s)
            import_s = 0.0


def synthesize(kind: str, jobs: int, outdir: Path, import_s: float) -> None:
    """Synthesize one app of ``jobs`` jobs of ``kind`` into ``outdir`` and print its report line."""
    started = time.perf_counter()
    app = cdk.App(outdir=str(outdir), context=CONTEXT)
    stack = cdk.Stack(app, STACK_NAME, env=cdk.Environment(account=ACCOUNT, region=REGION))
    add = ADDERS[kind]
    for index in range(jobs):
        add(stack, index)
    constructed = time.perf_counter()
    app.synth()
    synthesized = time.perf_counter()
    node_pids = descendant_pids(os.getpid())
    report = {
        "kind": kind,
        "jobs": jobs,
        "outdir": str(outdir),
        "import_s": import_s,
        "construct_s": constructed - started,
        "synth_s": synthesized - constructed,
        "python_peak_rss_kib": peak_rss_kib(os.getpid()),
        "node_peak_rss_kib": sum(peak_rss_kib(pid) for pid in node_pids),
        "node_processes": len(node_pids),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
