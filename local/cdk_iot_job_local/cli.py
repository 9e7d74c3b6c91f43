"""``cdk-iot-job-local plan|deploy|destroy``: the command line."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from .assembly import SynthError, app_command, from_assembly, from_template, synthesize
from .engine import IOT_JOB_TYPE, LocalCloudFormation, PlannedChange, Progress, StackResult
from .job_ids import job_id_of
from .runtime import LocalAws
from .state import DEFAULT_STATE_FILE, ResourceState, State
from .template import Stack, UnsupportedTemplateError
from .validate import check_template

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdk-iot-job-local",
        description="Plan, deploy and destroy a stack's IoT jobs against embedded moto: no AWS account needed.",
    )
    parser.add_argument("command", choices=["plan", "deploy", "destroy"])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--app", help="command that synthesizes the CDK app (default: cdk.json's 'app')")
    source.add_argument("--assembly", type=Path, help="an already synthesized cloud assembly (cdk synth -o DIR)")
    source.add_argument("--template", type=Path, help="a plain CloudFormation template (JSON or YAML)")
    parser.add_argument("--stack", action="append", default=[], help="only this stack (repeatable)")
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE_FILE, help=f"state file (default {DEFAULT_STATE_FILE})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run one command; returns the exit status (0 on success)."""
    args = _parser().parse_args(argv)
    state = State.load(args.state)
    with tempfile.TemporaryDirectory(prefix="cdk-iot-job-synth-") as outdir:
        try:
            stacks = _stacks(args, Path(outdir), state)
            if args.command != "destroy":
                # As CloudFormation validates a template: before anything is planned or changed.
                for stack in stacks:
                    check_template(stack)
        except (SynthError, UnsupportedTemplateError, ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        with LocalAws() as aws:
            aws.restore(state.moto)
            progress = None if args.json else (lambda event: _print_progress(event, out))
            engine = LocalCloudFormation(aws, state, progress)
            if args.command == "plan":
                plans = {stack.name: engine.plan(stack) for stack in stacks}
                _report_plan(plans, args.json, out)
                return 0
            results = (
                [engine.deploy(stack) for stack in stacks]
                if args.command == "deploy"
                else [engine.destroy(stack.name) for stack in reversed(stacks)]
            )
            state.moto = aws.snapshot()
            state.save()
            jobs = _describe_jobs(aws, results)
    _report_results(results, jobs, args.json, out)
    return 0 if all(result.ok for result in results) else 1


def _stacks(args: argparse.Namespace, outdir: Path, state: State) -> list[Stack]:
    if args.template is not None:
        stacks = [from_template(args.template, args.stack[0] if args.stack else None)]
    elif args.assembly is not None:
        stacks = from_assembly(args.assembly)
    elif args.command == "destroy" and args.app is None and not Path("cdk.json").exists():
        stacks = [Stack(name=name, outdir=outdir, template={}) for name in state.stacks]
    else:
        stacks = synthesize(args.app or app_command(Path.cwd()), outdir, Path.cwd())
    if args.stack and args.template is None:
        unknown = sorted(set(args.stack) - {stack.name for stack in stacks})
        if unknown:
            raise SynthError(f"no stack named {', '.join(unknown)} (have: {', '.join(s.name for s in stacks)})")
        stacks = [stack for stack in stacks if stack.name in args.stack]
    return stacks


def _job_id(resource: ResourceState) -> str | None:
    """The JobId a job resource's physical id (its ARN) names; ``None`` for an id that names no job."""
    return job_id_of(resource.physical_id)


def _describe_jobs(aws: LocalAws, results: list[StackResult]) -> dict[str, dict[str, object]]:
    """The jobs as IoT holds them after the run, by JobId."""
    found: dict[str, dict[str, object]] = {}
    for result in results:
        for resource in result.resources.values():
            job_id = _job_id(resource) if resource.type == IOT_JOB_TYPE else None
            described = aws.describe_job(resource.physical_id) if job_id is not None else None
            if job_id is None or described is None:
                continue
            job = described["job"]
            created = job.get("createdAt")
            found[job_id] = {
                "jobId": job_id,
                "jobArn": job.get("jobArn"),
                "status": job.get("status"),
                "createdAt": created.isoformat() if created is not None else None,
                "targets": job.get("targets", []),
                "documentSource": described.get("documentSource"),
                "presignedUrlConfig": job.get("presignedUrlConfig"),
                "jobTemplateArn": job.get("jobTemplateArn"),
            }
    return found


def _print_progress(event: Progress, out: TextIO) -> None:
    reason = f"  {event.reason}" if event.reason else ""
    line = f"  {event.stack:<20} {event.status:<30} {event.resource_type:<24} {event.logical_id}  {event.physical_id}"
    print(line + reason, file=out, flush=True)


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
        if index == 0:
            print("  ".join("-" * width for width in widths), file=out)


def _report_plan(plans: dict[str, list[PlannedChange]], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(
            {"plan": {name: [asdict(change) for change in changes] for name, changes in plans.items()}}, out, indent=2
        )
        print(file=out)
        return
    for name, changes in plans.items():
        print(f"\nStack {name}: what the next deploy does", file=out)
        shown = [change for change in changes if change.resource_type == IOT_JOB_TYPE or change.action != "no change"]
        rows = [["RESOURCE", "TYPE", "ACTION", "JOB ID", "PHYSICAL ID", "DETAIL"]]
        rows += [
            [c.logical_id, c.resource_type, c.action, c.job_id or "-", c.physical_id or "-", c.detail] for c in shown
        ]
        _table(rows, out)


def _report_results(results: list[StackResult], jobs: dict[str, dict[str, object]], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(
            {
                "stacks": [
                    {
                        "stack": result.stack,
                        "status": result.status,
                        "ok": result.ok,
                        "events": [asdict(event) for event in result.events],
                        "resources": {name: asdict(resource) for name, resource in result.resources.items()},
                        "outputs": result.outputs,
                        "jobs": {
                            name: jobs.get(_job_id(resource) or "")
                            for name, resource in result.resources.items()
                            if resource.type == IOT_JOB_TYPE
                        },
                    }
                    for result in results
                ]
            },
            out,
            indent=2,
        )
        print(file=out)
        return
    for result in results:
        print(f"\nStack {result.stack}: {result.status}", file=out)
        first: dict[str, Progress] = {}
        for event in result.events:
            first.setdefault(event.logical_id, event)
        job_resources = {name: res for name, res in result.resources.items() if res.type == IOT_JOB_TYPE}
        names = list(dict.fromkeys([*job_resources, *(n for n, e in first.items() if e.resource_type == IOT_JOB_TYPE)]))
        if names:
            _job_table(names, first, job_resources, jobs, result, out)
        for event in result.events:
            if event.reason and event.status.endswith("FAILED"):
                print(f"  {event.logical_id}: {event.reason}", file=out)
        if result.outputs:
            print("Outputs:", file=out)
            for name, value in result.outputs.items():
                print(f"  {name} = {value}", file=out)


def _job_table(
    names: list[str],
    first: dict[str, Progress],
    job_resources: dict[str, ResourceState],
    jobs: dict[str, dict[str, object]],
    result: StackResult,
    out: TextIO,
) -> None:
    rows = [["RESOURCE", "ACTION", "STATUS", "JOB ID", "JOB ARN", "TARGETS", "IOT STATUS"]]
    for name in names:
        found = first.get(name)
        resource = job_resources.get(name)
        job_id = _job_id(resource) if resource else None
        status = found.status if found else "UNCHANGED"
        if resource and any(
            e.logical_id == name and e.status == "DELETE_COMPLETE" and e.physical_id != resource.physical_id
            for e in result.events
        ):
            status += ", old job deleted"
        rows.append(
            [
                name,
                _action(found),
                status,
                job_id or (found.physical_id if found else "-"),
                resource.physical_id if job_id and resource else "-",
                *_job_columns(jobs.get(job_id) if job_id else None),
            ]
        )
    _table(rows, out)
    for name in names:
        resource = job_resources.get(name)
        job_id = _job_id(resource) if resource else None
        details = jobs.get(job_id) if job_id else None
        for label in ("documentSource", "presignedUrlConfig", "jobTemplateArn"):
            if details and details.get(label):
                print(f"  {name} {label}: {_compact(details[label])}", file=out)


def _compact(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in sorted(value.items()))
    return str(value)


def _job_columns(job: dict[str, object] | None) -> list[str]:
    if job is None:
        return ["-", "-"]
    targets = job.get("targets")
    return [", ".join(str(t) for t in targets) if isinstance(targets, list) else "-", str(job.get("status", "-"))]


def _action(event: Progress | None) -> str:
    if event is None:
        return "no change"
    if "replacement" in event.status:
        return "replace"
    return event.status.split("_")[0].lower()
