#!/usr/bin/env python3
"""Play a synthesized stack's IoT jobs through the provider, against embedded moto.

Usage: ``python scripts/demo.py cdk.out`` (``make demo`` runs it after
``cdk synth --output cdk.out``).

For every stack of the cloud assembly that has ``Custom::IotJob`` resources:

1. the thing groups and things the template declares are created in moto
   (a ``ThreadedMotoServer`` in this process, with the strict IoT fake of
   ``tests/iot_fake.py``);
2. each job's properties are resolved and stringified as CloudFormation would
   send them (``tests/harness/template.py``);
3. its Create event is played, in ``DependsOn``/reference order, through the
   handler loaded from the synthesized asset folder in a Lambda-like child
   process (``tests/harness/lambda_process.py``), which answers on a local
   HTTPS endpoint standing in for CloudFormation;
4. a table shows each job as moto then holds it, and CloudFormation's view.

Exits 1 if any Create failed, 2 if the assembly has no ``Custom::IotJob``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The demo reuses the test harness (moto fake, Lambda runner, endpoint, resolver).
sys.path.insert(0, str(REPO / "tests"))

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from cfn_events import event as cfn_event  # noqa: E402
from cdk_iot_job.local.cfn_endpoint import CloudFormationEndpoint  # noqa: E402
from cdk_iot_job.local.lambda_process import LambdaProcess  # noqa: E402
from cdk_iot_job.local.template import IOT_JOB_TYPE, REGION, Stack, TemplateResolver, load_stacks  # noqa: E402
from cdk_iot_job.local.iot_fake import StrictIotFake  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
FUNCTION_TIMEOUT_S = 300


@dataclass
class Outcome:
    """One job's row in the table."""

    stack: str
    logical_id: str
    response: str
    reason: str = ""
    job_id: str = "-"
    job_arn: str = "-"
    targets: tuple[str, ...] = ()
    status: str = "-"


def play_stack(stack: Stack, *, iot: Any, moto_url: str, endpoint: CloudFormationEndpoint, verbose: bool) -> list[Outcome]:
    """Create the stack's IoT jobs in moto through the synthesized provider."""
    resolver = TemplateResolver(stack)
    resolver.provision(iot)
    outcomes: list[Outcome] = []
    processes: dict[Path, LambdaProcess] = {}
    env = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        "SSL_CERT_FILE": str(endpoint.ca_pem_path),
    }
    try:
        for logical_id in stack.iot_job_ids():
            asset_dir = stack.asset_dir(stack.function_of(logical_id))
            if asset_dir not in processes:
                processes[asset_dir] = LambdaProcess(asset_dir, env=env, function_timeout=FUNCTION_TIMEOUT_S).start()
            process = processes[asset_dir]
            url = endpoint.response_url(f"Create-{logical_id}")
            create = cfn_event(
                "Create",
                resolver.properties(logical_id),
                response_url=url,
                logical_id=logical_id,
                stack_id=resolver.stack_id,
            )
            reply = process.invoke(create, timeout=FUNCTION_TIMEOUT_S + 30)
            outcomes.append(_outcome(stack, logical_id, reply, endpoint.responses_for(url), iot, resolver))
            if verbose or outcomes[-1].response != "SUCCESS":
                print(f"--- provider log, {stack.name}/{logical_id} ---\n{reply['logs']}", file=sys.stderr)
    finally:
        for process in processes.values():
            process.stop()
    return outcomes


def _outcome(
    stack: Stack,
    logical_id: str,
    reply: dict[str, Any],
    responses: list[Any],
    iot: Any,
    resolver: TemplateResolver,
) -> Outcome:
    if len(responses) != 1 or not isinstance(responses[0], dict):
        error = reply.get("error") or f"{len(responses)} responses instead of one"
        return Outcome(stack.name, logical_id, "NO RESPONSE" if not responses else "BAD RESPONSE", str(error))
    body = responses[0]
    outcome = Outcome(stack.name, logical_id, str(body.get("Status")), str(body.get("Reason") or ""))
    if outcome.response != "SUCCESS":
        return outcome
    job_id = str(body["PhysicalResourceId"])
    resolver.record(logical_id, job_id, body.get("Data") or {})
    outcome.job_id = job_id
    outcome.job_arn = str((body.get("Data") or {}).get("JobArn", "-"))
    try:
        job = iot.describe_job(jobId=job_id)["job"]
    except ClientError as error:
        outcome.status = error.response["Error"]["Code"]
        return outcome
    outcome.targets = tuple(job.get("targets", []))
    outcome.status = str(job.get("status"))
    return outcome


def render(outcomes: list[Outcome]) -> str:
    """The outcomes as an aligned text table; one line per target."""
    headers = ("LOGICAL ID", "JOB ID", "JOB ARN", "TARGETS", "STATUS", "CFN RESPONSE")
    rows: list[tuple[str, ...]] = []
    for item in outcomes:
        targets = item.targets or ("-",)
        rows.append((item.logical_id, item.job_id, item.job_arn, targets[0], item.status, item.response))
        rows.extend(("", "", "", target, "", "") for target in targets[1:])
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for item in outcomes:
        if item.reason:
            lines.append(f"{item.logical_id}: {item.response}: {item.reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="the cloud assembly folder written by `cdk synth` (cdk.out)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the provider's log of every event")
    args = parser.parse_args(argv)

    stacks = [stack for stack in load_stacks(args.outdir) if stack.logical_ids(IOT_JOB_TYPE)]
    if not stacks:
        print(f"no {IOT_JOB_TYPE} resources in {args.outdir}", file=sys.stderr)
        return 2

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        iot = boto3.client("iot", endpoint_url=moto_url, region_name=REGION, **FAKE_CREDENTIALS)
        with StrictIotFake(deletion_polls=1), CloudFormationEndpoint() as endpoint:
            outcomes = [
                outcome
                for stack in stacks
                for outcome in play_stack(stack, iot=iot, moto_url=moto_url, endpoint=endpoint, verbose=args.verbose)
            ]
    finally:
        server.stop()

    for stack in stacks:
        print(f"Stack {stack.name}: Create of each {IOT_JOB_TYPE}, played against embedded moto ({REGION})\n")
        print(render([item for item in outcomes if item.stack == stack.name]) + "\n")
    failed = [item for item in outcomes if item.response != "SUCCESS"]
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} job(s) created.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
