"""``cdk-iot-job status``: how the IoT jobs of a deployed stack are rolling out, in a real account.

Reads the stack through CloudFormation and its jobs through IoT with boto3
(credentials, region and ``AWS_ENDPOINT_URL`` as boto3 finds them), then
prints one table (:mod:`.status` collects and renders it), or redraws it
with ``--watch`` until every job has ended. Imports only the standard library
until it knows that boto3, rich and PyYAML are installed, so that without
them the user reads how to install them instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from .status import AccountClients, StackView

__all__ = ["DEFAULT_INTERVAL", "EXIT_BAD_INPUT", "EXIT_GATE_FAILED", "EXIT_OK", "main"]

EXIT_OK = 0
#: A rollout gate's verdict is FAIL.
EXIT_GATE_FAILED = 1
#: Bad arguments, an unknown stack, no credentials or region (argparse uses 2 too).
EXIT_BAD_INPUT = 2
DEFAULT_INTERVAL = 30.0
_MIN_INTERVAL = 1.0
_NEEDED = ("boto3", "rich", "yaml")

_DESCRIPTION = """\
Show the IoT jobs of a deployed stack (Custom::IotJob and AWS::IoT::Job
resources): each job's IoT status, how many things succeeded, failed, are in
progress or queued, and the verdict of its rollout gate (PASS, FAIL, WAIT),
judged by the provider's own rules.

Uses boto3's credentials and region; AWS_ENDPOINT_URL points it elsewhere.
"""

_EPILOG = f"""\
exit codes:
  {EXIT_OK}  shown (with --watch: every job has ended, or Ctrl-C)
  {EXIT_GATE_FAILED}  a rollout gate's verdict is FAIL
  {EXIT_BAD_INPUT}  bad arguments, an unknown stack, no credentials or no region

examples:
  cdk-iot-job status --stack Firmware
  cdk-iot-job status --stack Firmware --watch --interval 10
  cdk-iot-job status --stack Firmware --json --region eu-west-1
"""


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= _MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"{text} is less than the minimum of {_MIN_INTERVAL:g} s")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdk-iot-job",
        description="Commands for IoT jobs deployed with cdk-iot-job.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="command", required=True, metavar="command")
    status = verbs.add_parser(
        "status",
        help="how the IoT jobs of a deployed stack are rolling out",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--stack", metavar="NAME", required=True, help="the stack's name or ARN")
    status.add_argument(
        "--watch", action="store_true", help="redraw every --interval seconds until every job has ended (or Ctrl-C)"
    )
    status.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_interval,
        default=DEFAULT_INTERVAL,
        help=f"seconds between two looks with --watch (default: {DEFAULT_INTERVAL:g}, at least {_MIN_INTERVAL:g})",
    )
    status.add_argument(
        "--json", action="store_true", help="print one JSON document instead of the table (with --watch: at the end)"
    )
    status.add_argument("--region", metavar="R", help="the stack's region (default: boto3's)")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clients: Callable[[str | None], AccountClients] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] | None = None,
) -> int:
    """Run ``cdk-iot-job status``.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).
    out, err
        Where results and diagnostics go (default: stdout and stderr).
    clients
        Makes the CloudFormation and IoT clients for a region (default: boto3's).
    sleep, now
        The waiting between two looks of ``--watch``, and the clock gates are judged by.

    Returns
    -------
    int
        :data:`EXIT_OK`, :data:`EXIT_GATE_FAILED` or :data:`EXIT_BAD_INPUT`.
    """
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    err = err or sys.stderr
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"cdk-iot-job status needs the 'local' extra (missing: {', '.join(missing)}): "
            "pip install 'cdk-iot-job[local]'",
            file=err,
        )
        return EXIT_BAD_INPUT
    return _run(args, out, err, clients or _boto3_clients, sleep, now or (lambda: datetime.now(UTC)))


def _boto3_clients(region: str | None) -> AccountClients:
    import boto3

    from .status import AccountClients

    # A session of its own: credentials and region as boto3 finds them now, not as an earlier client cached them.
    session = boto3.Session(region_name=region)
    make: Any = session.client  # boto3-stubs' overloads want a literal service name
    return AccountClients(make("cloudformation"), make("iot"))


def _run(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    clients: Callable[[str | None], AccountClients],
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from . import output
    from .status import GateMemory, StackNotFoundError, collect_stack

    memory: GateMemory = {}
    screen = None if args.json else output.console(out)
    try:
        made = clients(args.region)

        def look() -> StackView:
            return collect_stack(args.stack, made, now=now(), memory=memory)

        view = look()
        stopped = False
        if args.watch:
            view, stopped = _watch(view, look, args.interval, screen, sleep)
    except (StackNotFoundError, BotoCoreError, ClientError, ValueError) as error:
        # One line, no traceback: no credentials, no region, an unknown stack, a denied call.
        print(f"error: {error}", file=err)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_OK
    _show(view, screen, out)
    # Ctrl-C stops watching, which is not a failure, whatever the gates said.
    return EXIT_GATE_FAILED if view.failed and not stopped else EXIT_OK


def _watch(
    view: StackView,
    look: Callable[[], StackView],
    interval: float,
    screen: Console | None,
    sleep: Callable[[float], None],
) -> tuple[StackView, bool]:
    """Look again every ``interval`` seconds until every job has ended; the last view, and whether Ctrl-C ended it.

    On a terminal the table is redrawn in place; elsewhere (a log) it is
    printed again only when something changed; with ``--json`` nothing is
    printed until the end. Ctrl-C ends the watch with the last view.
    """
    from rich.live import Live

    from .status import render

    footer = f"every {interval:g} s until every job has ended; Ctrl-C to stop"
    live = Live(console=screen, auto_refresh=False) if screen is not None and screen.is_terminal else None
    try:
        if live is not None:
            live.start()
        shown = None
        while True:
            if screen is not None and not view.ended:
                if live is not None:
                    live.update(render(view, screen.width, footer=footer), refresh=True)
                elif view.jobs != shown:
                    screen.print(render(view, screen.width, footer=footer))
                    shown = view.jobs
            if view.ended:
                return view, False
            sleep(interval)
            view = look()
    except KeyboardInterrupt:
        return view, True
    finally:
        if live is not None:
            # The final table replaces the live one: _show prints it below.
            live.update("", refresh=True)
            live.stop()


def _show(view: StackView, screen: Console | None, out: TextIO) -> None:
    from .status import render, to_json

    if screen is None:
        json.dump(to_json(view), out, indent=2)
        print(file=out)
        return
    screen.print(render(view, screen.width))
