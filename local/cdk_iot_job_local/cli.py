"""``cdk-iot-job-local plan|deploy|destroy``: arguments and flow.

What a person reads is rendered by :mod:`.output`; ``--json`` prints one JSON
document on stdout and nothing else there. Run through
:mod:`.launcher`, which first checks that the ``local`` extra is installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import output
from .assembly import SynthError, app_command, from_assembly, from_template, synthesize
from .engine import IOT_JOB_TYPE, LocalCloudFormation, PlannedChange, StackResult
from .fleet import DEFAULT_FLEET, FleetPolicy
from .iot_fake import StrictIotFake
from .job_ids import job_id_of
from .resources import put_file
from .runtime import LocalAws
from .state import DEFAULT_STATE_FILE, ResourceState, State
from .template import Stack, UnsupportedTemplateError, with_parameters
from .validate import check_template
from .virtual_time import TimeScale

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DEFAULT_TIME_SCALE", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "main"]

EXIT_OK = 0
#: A plan row will fail, or a deploy or destroy failed.
EXIT_FAILED = 1
#: Refused before anything changed (argparse uses 2 for bad arguments too).
EXIT_BAD_INPUT = 2
#: Virtual seconds per real second of a local run (``--time-scale``): a minute per second.
DEFAULT_TIME_SCALE = 60.0

_DESCRIPTION = """\
Play CloudFormation's lifecycle for a CDK app (or a plain template) against
embedded moto, with the real Custom::IotJob provider: no AWS account needed.

verbs:
  plan      show what the next deploy does to each resource, with the
            provider's own update rules; changes nothing
  deploy    create or update the stacks in dependency order; a failing
            resource rolls its stack back, as CloudFormation does
  destroy   delete the stacks in reverse dependency order (DeletionPolicy
            Retain honoured); refused while another stack imports an export
  status    show the deployed stacks' IoT jobs: IoT status, progress and
            each rollout gate's verdict (status [STACK ...]); changes nothing
"""

_EPILOG = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_FAILED}  plan: a change will fail; deploy, destroy: a stack failed (and was
     rolled back); status: a rollout gate's verdict is FAIL
  {EXIT_BAD_INPUT}  bad input, refused before the stack changes: bad arguments, a
     failing synth, an unknown stack, an unreadable or unsupported template,
     or a custom resource the local engine cannot run (see --skip-unsupported)

examples:
  cdk-iot-job-local plan
  cdk-iot-job-local deploy --stack IotJobProviderStack
  cdk-iot-job-local deploy --template examples/cloudformation/iot-job.yaml \\
      --stack-name cfn-example
  cdk-iot-job-local deploy --template dist/cdk-iot-job-provider.template.yaml \\
      --stack-name cdk-iot-job-provider \\
      --upload dist/cdk-iot-job-provider-<version>.zip=s3://my-bucket/ \\
      --parameter CodeBucket=my-bucket \\
      --parameter CodeKey=cdk-iot-job-provider-<version>.zip
  cdk-iot-job-local destroy --json
  cdk-iot-job-local status CdkIotJobDemo --json
"""

#: What makes the input unusable: reported in one line, exit 2, nothing changed.
_BAD_INPUT = (SynthError, UnsupportedTemplateError, ValueError, OSError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdk-iot-job-local",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["plan", "deploy", "destroy", "status"], help="what to do (see verbs above)")
    parser.add_argument(
        "stacks", nargs="*", metavar="STACK", help="status: the stacks to show (default: every deployed stack)"
    )
    # Shown as its own section: where the stacks come from.
    group = parser.add_argument_group("stacks from (one of; default: synthesize cdk.json's app)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--app", metavar="CMD", help="command that synthesizes the CDK app, run as cdk synth runs it")
    source.add_argument(
        "--assembly", metavar="DIR", type=Path, help="an already synthesized cloud assembly (cdk synth --output DIR)"
    )
    source.add_argument("--template", metavar="FILE", type=Path, help="a plain CloudFormation template, JSON or YAML")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        action="append",
        default=[],
        help="only this stack of the app, assembly or state (repeatable)",
    )
    parser.add_argument(
        "--stack-name", metavar="NAME", help="the stack name of a --template (default: the file's name without suffix)"
    )
    parser.add_argument(
        "--parameter",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        type=_parameter,
        help="a parameter value of the --template for plan and deploy (repeatable); the others take their "
        "Default, as in CloudFormation (a CommaDelimitedList value is one comma-separated string)",
    )
    parser.add_argument(
        "--upload",
        metavar="FILE=s3://BUCKET/KEY",
        action="append",
        default=[],
        type=_upload,
        help="put a local file into the local S3 before a --template plan or deploy (repeatable), as "
        "`aws s3 cp FILE s3://BUCKET/KEY` would; a KEY ending in / takes the file's name (the bucket is "
        "made if new)",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        type=Path,
        default=DEFAULT_STATE_FILE,
        help=f"where deployed stacks and moto's data are kept between runs (default: {DEFAULT_STATE_FILE})",
    )
    parser.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="record custom resources the local engine cannot run as skipped instead of refusing the deploy",
    )
    # How the simulated devices answer job executions, and how fast local time runs: deploy (and plan).
    parser.add_argument(
        "--fleet",
        metavar="SPEC",
        type=_fleet,
        help="plan, deploy: how the simulated devices answer job executions, e.g. "
        "succeed=0.97,fail=0.03,delay=2..20s,seed=7 (fractions of succeed, fail, reject and silent summing "
        "to 1; delay: how long after its execution starts a device answers; default: every device succeeds "
        "1 to 10 s after start)",
    )
    parser.add_argument(
        "--fleet-thing",
        metavar="NAME=OUTCOME[@DELAY]",
        action="append",
        default=[],
        type=_fleet_thing,
        help="plan, deploy: what one thing does, whatever --fleet says (repeatable), e.g. Sensor-1=fail@5s; "
        "OUTCOME is succeed, fail, reject or silent",
    )
    parser.add_argument(
        "--time-scale",
        metavar="N",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        help="local only: N virtual seconds per real second; a 10-minute bake takes 10 s at 60; it has no "
        f"effect in Lambda (default: {DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of tables and event lines"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).
    out, err
        Where results and diagnostics go (default: stdout and stderr).

    Returns
    -------
    int
        The exit status: :data:`EXIT_OK`, :data:`EXIT_FAILED` or :data:`EXIT_BAD_INPUT`.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.stack_name is not None and args.template is None:
        parser.error("--stack-name names the stack of a --template; use --stack to pick stacks of an app")
    if (args.parameter or args.upload) and args.template is None:
        parser.error("--parameter and --upload go with a --template")
    if args.upload and args.command == "destroy":
        parser.error("--upload is for plan and deploy")
    if args.stacks and args.command != "status":
        parser.error("stacks are named with --stack, except for status")
    if (args.fleet or args.fleet_thing) and args.command not in ("plan", "deploy"):
        parser.error("--fleet and --fleet-thing are for plan and deploy")
    things = [name for name, _ in args.fleet_thing]
    if len(set(things)) != len(things):
        twice = sorted({name for name in things if things.count(name) > 1})
        parser.error(f"argument --fleet-thing: {', '.join(twice)} given more than once")
    out = out or sys.stdout
    err = err or sys.stderr
    if args.command == "status":
        return _status(args, out, err)
    with tempfile.TemporaryDirectory(prefix="cdk-iot-job-synth-") as outdir:
        try:
            state = State.load(args.state)
            for upload in args.upload:
                if not upload.file.is_file():
                    raise FileNotFoundError(f"--upload: {upload.file} is not a file")
            stacks = _stacks(args, Path(outdir), state, output.console(err))
            if args.command != "destroy":
                # As CloudFormation validates a template: before anything is planned or changed.
                for stack in stacks:
                    check_template(stack)
        except _BAD_INPUT as error:
            return _refuse(error, err)
        return _run(args, state, stacks, out, err)


def _refuse(error: Exception, err: TextIO) -> int:
    # A plain print, not the console: rich would wrap a long message at 80 columns.
    print(f"error: {error}", file=err)
    return EXIT_BAD_INPUT


def _stacks(args: argparse.Namespace, outdir: Path, state: State, status: Console) -> list[Stack]:
    if args.template is not None:
        stacks = [from_template(args.template, args.stack_name)]
    elif args.assembly is not None:
        stacks = from_assembly(args.assembly)
    elif args.command == "destroy" and args.app is None and not Path("cdk.json").exists():
        stacks = [Stack(name=name, outdir=outdir, template={}) for name in state.stacks]
    else:
        command = args.app or app_command(Path.cwd())
        stacks = output.synthesizing(status, command, partial(synthesize, command, outdir, Path.cwd()))
    stacks = _selected(stacks, args.stack)
    if args.command == "destroy":
        return stacks  # a deletion takes no parameters
    # As CloudFormation takes them: values or Defaults, constraints, then the Conditions.
    values = dict(args.parameter)
    return [with_parameters(stack, values) for stack in stacks]


@dataclass(frozen=True)
class _Upload:
    """``--upload FILE=s3://BUCKET/KEY``."""

    file: Path
    bucket: str
    key: str


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name, value


def _upload(text: str) -> _Upload:
    file, separator, url = text.partition("=s3://")
    bucket, _, key = url.partition("/")
    if not separator or not file or not bucket:
        raise argparse.ArgumentTypeError(f"{text!r} is not FILE=s3://BUCKET/KEY")
    path = Path(file)
    return _Upload(path, bucket, key if key and not key.endswith("/") else f"{key}{path.name}")


def _fleet(text: str) -> str:
    try:
        FleetPolicy.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("fleet: ")) from None
    return text


def _fleet_thing(text: str) -> tuple[str, str]:
    name, separator, answer = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=OUTCOME[@DELAY]")
    try:
        FleetPolicy.parse("succeed=1", {name: answer})
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("fleet: ")) from None
    return name, answer


def _time_scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        scale = float("nan")
    # Not nan, not inf: a finite number of virtual seconds per real second.
    if not 0 < scale < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of virtual seconds per real second")
    return scale


def _fleet_policy(args: argparse.Namespace) -> FleetPolicy:
    """``--fleet`` with the ``--fleet-thing`` overrides (the default fleet without ``--fleet``)."""
    overrides = dict(args.fleet_thing)
    if args.fleet is not None:
        return FleetPolicy.parse(args.fleet, overrides)
    return dataclasses.replace(DEFAULT_FLEET, overrides=FleetPolicy.parse("succeed=1", overrides).overrides)


def _local_aws(args: argparse.Namespace, state: State) -> LocalAws:
    """The embedded AWS of a run: the fleet answers jobs, and it and every provider share one clock.

    The clock goes on from the one the state's jobs ran on, and is saved with them.
    """
    scale = args.time_scale
    clock = TimeScale.continuing(scale, state.clock) if scale != 1.0 or state.clock else None
    state.clock = clock.to_json() if clock is not None else None
    fake = StrictIotFake(deletion_polls=1, check_targets=True, fleet=_fleet_policy(args), clock=clock)
    return LocalAws(fake=fake, time_scale=clock)


def _selected(stacks: list[Stack], names: list[str]) -> list[Stack]:
    """The stacks ``--stack`` names (all without it); an unknown name is bad input."""
    if not names:
        return stacks
    unknown = sorted(set(names) - {stack.name for stack in stacks})
    if unknown:
        raise SynthError(f"no stack named {', '.join(unknown)} (have: {', '.join(s.name for s in stacks)})")
    return [stack for stack in stacks if stack.name in names]


def _run(args: argparse.Namespace, state: State, stacks: list[Stack], out: TextIO, err: TextIO) -> int:
    screen = None if args.json else output.console(out)
    with _local_aws(args, state) as aws:
        aws.restore(state.moto)
        for upload in args.upload:
            # --upload goes with --template: one stack, deployed to its environment.
            put_file(aws, stacks[0].environment, upload.file, upload.bucket, upload.key)
        # --json: the events are in the document; nothing but it goes to stdout.
        progress = None if screen is None else partial(output.print_event, screen)
        # A live line while a rollout gate waits: on a terminal only (GateWatch checks).
        watcher = None if screen is None else output.GateWatch(screen, aws)
        engine = LocalCloudFormation(aws, state, progress, skip_unsupported=args.skip_unsupported, watcher=watcher)
        if args.command == "plan":
            try:
                plans = {stack.name: engine.plan(stack) for stack in stacks}
            except UnsupportedTemplateError as error:
                return _refuse(error, err)
            return _report_plan(plans, out, screen)
        timed, refused = _apply(args.command, engine, stacks, screen)
        if timed:
            # Even when a later stack was refused: the earlier ones did change.
            state.moto = aws.snapshot()
            state.save()
        jobs = _describe_jobs(aws, [result for result, _ in timed])
    if timed:
        _report_results(timed, jobs, refused, out, screen)
    if refused is not None:
        return _refuse(refused, err)
    return EXIT_OK if all(result.ok for result, _ in timed) else EXIT_FAILED


def _apply(
    command: str, engine: LocalCloudFormation, stacks: list[Stack], screen: Console | None
) -> tuple[list[tuple[StackResult, float]], UnsupportedTemplateError | None]:
    """Deploy or destroy each stack in turn; the results with their seconds, and a refusal that stopped it."""
    ordered = stacks if command == "deploy" else list(reversed(stacks))
    timed: list[tuple[StackResult, float]] = []
    if command == "deploy":
        try:
            # Every stack before any: a refused one leaves all of them unchanged.
            for stack in stacks:
                engine.check(stack)
        except UnsupportedTemplateError as error:
            return timed, error
    for stack in ordered:
        if screen is not None:
            output.print_stack_start(screen, "deploying" if command == "deploy" else "destroying", stack.name)
        started = time.monotonic()
        try:
            result = engine.deploy(stack) if command == "deploy" else engine.destroy(stack.name)
        except UnsupportedTemplateError as error:
            # Refused before changing this stack, e.g. by a provider an earlier stack just deployed.
            return timed, error
        timed.append((result, time.monotonic() - started))
    return timed, None


def _describe_jobs(aws: LocalAws, results: list[StackResult]) -> dict[str, dict[str, object]]:
    """The jobs as IoT holds them after the run, by JobId."""
    found: dict[str, dict[str, object]] = {}
    for result in results:
        for resource in result.resources.values():
            job_id = job_id_of(resource.physical_id) if resource.type == IOT_JOB_TYPE else None
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


def _report_plan(plans: dict[str, list[PlannedChange]], out: TextIO, screen: Console | None) -> int:
    fails = any(change.fails for changes in plans.values() for change in changes)
    if screen is None:
        document = {
            "plan": {name: [asdict(change) for change in changes] for name, changes in plans.items()},
            "ok": not fails,
        }
        _dump(document, out)
    else:
        for name, changes in plans.items():
            output.print_plan(screen, name, changes)
    return EXIT_FAILED if fails else EXIT_OK


def _report_results(
    timed: list[tuple[StackResult, float]],
    jobs: dict[str, dict[str, object]],
    refused: UnsupportedTemplateError | None,
    out: TextIO,
    screen: Console | None,
) -> None:
    if screen is not None:
        for result, seconds in timed:
            output.print_result(screen, result, jobs, seconds)
        return
    document: dict[str, Any] = {"stacks": [_result_json(result, jobs) for result, _ in timed]}
    if refused is not None:
        document["error"] = str(refused)
    _dump(document, out)


def _result_json(result: StackResult, jobs: dict[str, dict[str, object]]) -> dict[str, Any]:
    return {
        "stack": result.stack,
        "status": result.status,
        "ok": result.ok,
        "events": [asdict(event) for event in result.events],
        "resources": {name: asdict(resource) for name, resource in result.resources.items()},
        "outputs": result.outputs,
        "jobs": {
            name: _job_json(jobs.get(job_id_of(resource.physical_id) or ""), resource)
            for name, resource in result.resources.items()
            if resource.type == IOT_JOB_TYPE
        },
    }


def _job_json(described: dict[str, object] | None, resource: ResourceState) -> dict[str, object] | None:
    """A job of the ``--json`` document: as IoT holds it, and a gated job's final counts under ``gate``."""
    gate = output.gate_summary(resource)
    if described is None or gate is None:
        return described
    return {**described, "gate": gate}


def _dump(document: dict[str, Any], out: TextIO) -> None:
    json.dump(document, out, indent=2)
    print(file=out)


def _status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``status [STACK ...]``: the jobs of deployed stacks as their moto holds them; changes nothing."""
    from .status import collect_local, render, to_json
    from .virtual_time import REAL_TIME

    try:
        state = State.load(args.state)
        names = [*args.stacks, *args.stack] or list(state.stacks)
        unknown = [name for name in names if name not in state.stacks]
        if unknown:
            raise ValueError(
                f"no deployed stack named {', '.join(unknown)} (have: {', '.join(state.stacks) or 'none'})"
            )
    except _BAD_INPUT as error:
        return _refuse(error, err)
    # The clock the saved jobs ran on (and still run on, between runs).
    saved = state.clock
    clock = TimeScale.continuing(float(saved["scale"]), saved) if saved else REAL_TIME
    with LocalAws() as aws:
        aws.restore(state.moto)
        views = []
        for name in dict.fromkeys(names):
            stack = state.stacks[name]
            iot = aws.client("iot", account=stack.account, region=stack.region)
            views.append(collect_local(stack, iot, now=clock.now()))
    if args.json:
        _dump({"stacks": [to_json(view) for view in views]}, out)
    else:
        screen = output.console(out)
        if not views:
            screen.print(f"no deployed stacks in {args.state}", soft_wrap=True)
        for view in views:
            screen.print()
            screen.print(render(view, screen.width))
    return EXIT_FAILED if any(view.failed for view in views) else EXIT_OK
