"""Child-process side of :class:`cdk_iot_job_local.lambda_process.LambdaProcess`.

Run as ``python -S -P -B lambda_bootstrap.py --handler pkg.mod.func ...`` with
``PYTHONPATH=<asset dir>:<runtime dir>``; it must therefore use the standard
library only.  It mimics the AWS Lambda Python runtime closely enough for
handler tests:

* the handler module is imported once, at start-up (cold start);
* the root logger gets a Lambda-style handler writing to stderr;
* anything printed (``sys.stdout`` *and* file descriptor 1) goes to stderr,
  so the real stdout carries only protocol lines.

Protocol (one JSON object per line):

* child -> parent, once: ``{"ready": true, "init_error": str|null,
  "init_duration_ms": float}``
* parent -> child: ``{"seq": int, "request_id": str, "event": {...}}``
* child -> parent: ``{"seq": int, "ok": bool, "error": str|null,
  "duration_ms": float, "result": any}``
* after each reply the child writes ``MARKER <seq>`` on its own line to stderr
  so the parent knows it has seen all log output of that invocation.

An event ``{"__harness__": "introspect", "importable": [names...]}`` is not
passed to the handler; the reply's ``result`` describes the interpreter
(``sys_path``, loaded top-level ``modules``, their ``module_files``, an
``importable`` map for the requested names, ``env_keys``, ``flags``,
``time_scale``: the scale of the clock the bootstrap gave the handler, ``1.0``
in real time, and ``handler``: its type and, for a handler with
``dependencies`` (our provider's), what each of them is).

Local time scale
    When the parent sets :mod:`.virtual_time`'s variables, the context's
    remaining time counts down in virtual time, and our own provider's handler
    (:data:`PROVIDER_HANDLER`) is built by its ``make_handler`` with scaled
    clocks and waits instead of the module's ``handler``. The shipped provider
    never reads those variables: only this harness does. ``virtual_time.py``
    (standard library only) is loaded from next to this file under a private
    name, so the handler still cannot import ``cdk_iot_job_local``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

MARKER = "\x1e__harness_end__"
#: The provider's Lambda entry point; under a time scale it is rebuilt with scaled Dependencies.
PROVIDER_HANDLER = "cdk_iot_job_provider.handler.handler"
# A name no asset can shadow: the clock module is loaded by path, never from sys.path.
_CLOCK_MODULE = "_cdk_iot_job_local_virtual_time"
#: ``virtual_time.ENV_SCALE``, read before loading that module: real time loads nothing more than before.
SCALE_VARIABLE = "CDK_IOT_JOB_LOCAL_TIME_SCALE"


class LambdaContext:
    """Subset of the Lambda context object.

    Parameters
    ----------
    request_id : str
        Value of ``aws_request_id``.
    timeout_s : float
        Configured function timeout; ``get_remaining_time_in_millis`` counts
        down from it starting at construction (invocation start).
    account_id : str
        Account used in ``invoked_function_arn``.
    monotonic : Callable[[], float]
        The clock the remaining time is read on (a virtual one under a local
        time scale); ``time.monotonic`` by default.
    function_arn : str, optional
        ``invoked_function_arn``, when the parent knows the function's ARN;
        otherwise built from ``AWS_REGION``, ``account_id`` and the function name.
    """

    def __init__(
        self,
        request_id: str,
        timeout_s: float,
        account_id: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        function_arn: str | None = None,
    ) -> None:
        env = os.environ
        self._monotonic = monotonic
        self._deadline = monotonic() + timeout_s
        self.aws_request_id = request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "harness-function")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "harness/[$LATEST]0")
        region = env.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = (
            function_arn or f"arn:aws:lambda:{region}:{account_id}:function:{self.function_name}"
        )
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out (never negative)."""
        return max(0, int((self._deadline - self._monotonic()) * 1000))


class _RequestIdFilter(logging.Filter):
    """Adds ``aws_request_id`` to every record, like the Lambda runtime."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _setup_logging(stream: TextIO) -> _RequestIdFilter:
    # The Lambda runtime installs one root handler with this format; without
    # it, INFO records would be silently dropped and log-leak tests would
    # pass vacuously.
    rid = _RequestIdFilter()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(rid)
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel(level.upper())
    return rid


def _describe(value: Any) -> str:
    """A dependency by name: ``module.qualname`` of a callable, ``Type(field=...)`` of a dataclass."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(f"{f.name}={_describe(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__qualname__}({fields})"
    qualname = getattr(value, "__qualname__", None)
    if qualname is None:
        return repr(value)
    return f"{getattr(value, '__module__', None) or ''}.{qualname}".lstrip(".")


def _describe_handler(handler: Any) -> dict[str, Any] | None:
    if handler is None:
        return None
    import dataclasses

    described: dict[str, Any] = {"type": type(handler).__qualname__}
    dependencies = getattr(handler, "dependencies", None)
    if dataclasses.is_dataclass(dependencies) and not isinstance(dependencies, type):
        fields = dataclasses.fields(dependencies)
        described["dependencies"] = {f.name: _describe(getattr(dependencies, f.name)) for f in fields}
    return described


def _introspect(request: dict[str, Any], time_scale: Any, handler: Any) -> dict[str, Any]:
    importable: dict[str, bool] = {}
    for name in request.get("importable", []):
        try:
            importable[name] = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            importable[name] = False
    tops = sorted({name.partition(".")[0] for name in sys.modules})
    files = {}
    for name in tops:
        mod = sys.modules.get(name)
        files[name] = getattr(mod, "__file__", None) if mod is not None else None
    return {
        "sys_path": list(sys.path),
        "modules": tops,
        "module_files": files,
        "importable": importable,
        "env_keys": sorted(os.environ),
        "executable": sys.executable,
        "flags": {"no_site": sys.flags.no_site, "safe_path": sys.flags.safe_path},
        "time_scale": time_scale.scale if time_scale is not None else 1.0,
        "handler": _describe_handler(handler),
    }


def _time_scale() -> Any:
    """The parent's :class:`~.virtual_time.TimeScale`, or ``None`` in real time."""
    if SCALE_VARIABLE not in os.environ:
        return None
    spec = importlib.util.spec_from_file_location(_CLOCK_MODULE, Path(__file__).with_name("virtual_time.py"))
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships next to this one
        raise ImportError("virtual_time.py is missing next to the bootstrap")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_CLOCK_MODULE] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.TimeScale.from_environment(os.environ)


def _load_handler(dotted: str, time_scale: Any = None) -> Any:
    module_name, _, func_name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    if time_scale is not None and dotted == PROVIDER_HANDLER:
        # The provider's waits and deadlines on the shared virtual clock; every other
        # Dependencies field keeps its production default.
        from cdk_iot_job_provider.response import ResponseSender

        dependencies = module.Dependencies(
            sleep=time_scale.sleep,
            monotonic=time_scale.monotonic,
            clock=time_scale.now,
            send_response=ResponseSender(sleep=time_scale.sleep),
        )
        return module.make_handler(dependencies)
    return getattr(module, func_name)


def main(argv: list[str]) -> None:
    """Import the handler, announce readiness, then serve invocations until stdin closes.

    Never returns: the process ends with ``os._exit(0)``.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--handler", required=True)
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--function-arn", default=None)
    args = parser.parse_args(argv)

    # Keep private copies of the protocol pipes, then point fd 0/1 elsewhere
    # so nothing the handler (or a C library) does can corrupt the protocol.
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        proto_out.write(json.dumps(obj, default=repr) + "\n")
        proto_out.flush()

    rid = _setup_logging(sys.stderr)

    handler = None
    init_error = None
    t0 = time.perf_counter()
    time_scale = _time_scale()
    monotonic = time_scale.monotonic if time_scale is not None else time.monotonic
    try:
        handler = _load_handler(args.handler, time_scale)
    except Exception as exc:
        init_error = f"Runtime.ImportModuleError: {type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    init_ms = (time.perf_counter() - t0) * 1000
    sys.stderr.flush()
    send({"ready": True, "init_error": init_error, "init_duration_ms": init_ms})

    for line in proto_in:
        if not line.strip():
            continue
        request = json.loads(line)
        seq = request["seq"]
        event = request["event"]
        rid.request_id = request["request_id"]
        reply: dict[str, Any] = {"seq": seq, "ok": True, "error": None, "result": None}
        start = time.perf_counter()
        try:
            if isinstance(event, dict) and event.get("__harness__") == "introspect":
                reply["result"] = _introspect(event, time_scale, handler)
            elif handler is None:
                reply.update(ok=False, error=init_error)
            else:
                context = LambdaContext(
                    request["request_id"],
                    args.timeout_s,
                    args.account_id,
                    monotonic=monotonic,
                    function_arn=args.function_arn,
                )
                result = handler(event, context)
                try:
                    json.dumps(result)
                    reply["result"] = result
                except (TypeError, ValueError) as exc:
                    reply.update(ok=False, error=f"Runtime.MarshalError: {exc}")
        except BaseException as exc:
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            logging.getLogger().error("%s: %s", type(exc).__name__, exc, exc_info=True)
        reply["duration_ms"] = (time.perf_counter() - start) * 1000
        sys.stderr.flush()
        send(reply)
        sys.stderr.write(f"{MARKER} {seq}\n")
        sys.stderr.flush()

    # stdin closed: the sandbox is torn down.  os._exit because handler code
    # may have left non-daemon threads (crhelper's timer) behind.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
