"""Run a Lambda handler from a synthesized CDK asset folder "the way Lambda does".

:func:`lambda_runtime_path` builds a directory exposing only boto3 and its
runtime dependencies (what the Lambda Python runtime ships), and
:class:`LambdaProcess` runs one long-lived child interpreter with::

    python -S -P -B lambda_bootstrap.py      # no site-packages, no script dir
    PYTHONPATH=<asset dir>:<runtime dir>     # so sys.path = those two + stdlib

The handler module is imported once (cold start) and then invoked once per
:meth:`LambdaProcess.invoke`, with a Lambda-like context object.  The child's
stderr (handler logs, prints) is collected by a reader thread and available
through :meth:`LambdaProcess.logs`.

Under a local :class:`~.virtual_time.TimeScale` the child's context counts the
function timeout down in virtual time, while the parent still kills a child
that overruns it on the wall clock: after the timeout's real duration (never
less than :data:`MIN_REAL_TIMEOUT_S`) plus a grace.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from .lambda_bootstrap import MARKER
from .virtual_time import TimeScale

__all__ = [
    "DEFAULT_HANDLER",
    "MIN_REAL_TIMEOUT_S",
    "RUNTIME_ROOT_DISTRIBUTIONS",
    "LambdaPool",
    "LambdaProcess",
    "lambda_runtime_path",
    "runtime_distributions",
]

DEFAULT_HANDLER = "cdk_iot_job_provider.handler.handler"
#: Distributions the Lambda Python runtime provides; their dependency
#: closure (botocore, s3transfer, jmespath, python-dateutil, urllib3, six)
#: is added automatically.
RUNTIME_ROOT_DISTRIBUTIONS: tuple[str, ...] = ("boto3",)
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
# Slack on top of the function timeout before the parent declares the
# invocation timed out: the child needs a moment to write its reply.
_TIMEOUT_GRACE_S = 1.0
#: Under a time scale, the least real time an invocation gets before it is killed:
#: a 3 s function at scale 60 lasts 0.05 s on the wall clock, less than a cold boto3 call.
MIN_REAL_TIMEOUT_S = 5.0


# --------------------------------------------------------------------------
# runtime directory
# --------------------------------------------------------------------------
def _requirement_names(dist: metadata.Distribution) -> list[str]:
    """Names of the non-extra requirements of ``dist`` whose markers hold."""
    names = []
    for spec in dist.requires or []:
        try:
            from packaging.requirements import Requirement

            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            names.append(req.name)
        except ImportError:  # pragma: no cover - packaging ships with pytest
            if "extra ==" in spec:
                continue
            match = re.match(r"\s*([A-Za-z0-9._-]+)", spec)
            if match:
                names.append(match.group(1))
    return names


def runtime_distributions(
    roots: Iterable[str] = RUNTIME_ROOT_DISTRIBUTIONS,
) -> list[metadata.Distribution]:
    """Installed distributions forming the dependency closure of ``roots``.

    Parameters
    ----------
    roots : Iterable[str]
        Distribution names to start from (default: ``boto3``).

    Returns
    -------
    list[importlib.metadata.Distribution]
        Each distribution once, in discovery order.
    """
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop(0)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        todo.extend(_requirement_names(dist))
    return list(seen.values())


def _top_level_entries(dist: metadata.Distribution) -> set[str]:
    """First path components a distribution installed into site-packages."""
    entries = set()
    for file in dist.files or []:
        top = file.parts[0]
        # '..' = console scripts in bin/; __pycache__ holds single-module pycs.
        if top in ("..", "__pycache__") or top.endswith(".pth"):
            continue
        entries.add(top)
    return entries


def lambda_runtime_path(tmp_dir: Path | str) -> Path:
    """Build a directory that exposes only what the Lambda Python runtime ships.

    Entries are symlinks into the current interpreter's site-packages (no
    copies): the packages/modules *and* ``.dist-info`` folders of boto3 and its
    runtime dependency closure.  Nothing else (crhelper, moto, aws_cdk, jsii,
    ...) is reachable through it.

    Parameters
    ----------
    tmp_dir : Path or str
        Existing scratch directory; ``<tmp_dir>/lambda-runtime`` is (re)built.

    Returns
    -------
    Path
        The runtime directory, to be placed on the child's ``PYTHONPATH``.
    """
    runtime = Path(tmp_dir) / "lambda-runtime"
    if runtime.exists():
        shutil.rmtree(runtime)
    runtime.mkdir(parents=True)
    for dist in runtime_distributions():
        for entry in sorted(_top_level_entries(dist)):
            target = Path(str(dist.locate_file(entry))).resolve()
            if target.exists():
                (runtime / entry).symlink_to(target, target_is_directory=target.is_dir())
    return runtime


# --------------------------------------------------------------------------
# child process
# --------------------------------------------------------------------------
class LambdaProcess:
    """One long-lived child interpreter running a handler like Lambda would.

    Parameters
    ----------
    asset_dir : Path
        Synthesized asset folder (e.g. ``cdk.out/asset.<hash>``); it becomes
        the first ``sys.path`` entry and the child's working directory.
    handler : str
        Dotted ``module.function`` path, imported once at start-up.
    env : Mapping[str, str], optional
        Variables for the child on top of a minimal base (``PATH``, ``HOME``,
        ``LANG``) and Lambda-like defaults (``AWS_LAMBDA_FUNCTION_NAME``,
        ``LAMBDA_TASK_ROOT``, ``TZ``, AWS config files set to /dev/null, ...).
        Supply ``AWS_ENDPOINT_URL``, ``AWS_REGION``, credentials and
        ``SSL_CERT_FILE`` here.  ``PYTHONPATH`` is always set by the harness.
    runtime_path : Path, optional
        Directory from :func:`lambda_runtime_path`; built in a private temp
        dir (removed on :meth:`stop`) if omitted.
    function_timeout : float
        The function's configured timeout in seconds: the context counts down
        from it and an invocation still running after it (plus 1 s grace) is
        killed and reported as ``"Task timed out"``, like Lambda does.
    python : str, optional
        Interpreter to run (default: ``sys.executable``, i.e. the venv's).
    startup_timeout : float
        Seconds to wait for the child's cold start.
    account_id : str
        Account used in ``context.invoked_function_arn``.
    function_arn : str, optional
        ``context.invoked_function_arn`` (the deployed function's ARN); by
        default built from the region, ``account_id`` and the function name.
    time_scale : TimeScale, optional
        The local virtual clock the child shares (its variables are added to
        the environment); ``None``: real time.

    Notes
    -----
    After a timeout or a crash of the child, the next :meth:`invoke` starts a
    fresh child (a new cold start, counted in :attr:`cold_starts`).
    """

    def __init__(
        self,
        asset_dir: Path | str,
        handler: str = DEFAULT_HANDLER,
        env: Mapping[str, str] | None = None,
        *,
        runtime_path: Path | str | None = None,
        function_timeout: float = 60.0,
        python: str | None = None,
        startup_timeout: float = 30.0,
        account_id: str = "123456789012",
        function_arn: str | None = None,
        time_scale: TimeScale | None = None,
    ) -> None:
        self.asset_dir = Path(asset_dir).resolve()
        self.handler = handler
        self.function_timeout = float(function_timeout)
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.account_id = account_id
        self.function_arn = function_arn
        self.time_scale = time_scale
        self._extra_env = dict(env or {}) | (time_scale.environment() if time_scale is not None else {})
        self._runtime_path = Path(runtime_path).resolve() if runtime_path else None
        self._owned_tmp: str | None = None

        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self._log_cond = threading.Condition()
        self._lines: list[str] = []
        self._marker_seq = 0
        self._stderr_eof = True
        self._invoke_lock = threading.Lock()
        self._seq = 0
        self._started = False
        self.cold_starts = 0
        self.init_error: str | None = None
        self.init_duration_ms: float | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def runtime_path(self) -> Path:
        """The boto3-only runtime directory on the child's ``PYTHONPATH``."""
        if self._runtime_path is None:
            self._owned_tmp = tempfile.mkdtemp(prefix="lambda-runtime-")
            self._runtime_path = lambda_runtime_path(self._owned_tmp)
        return self._runtime_path

    @property
    def env(self) -> dict[str, str]:
        """The complete environment the child is started with."""
        base = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": "cdk-iot-job-provider",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(self.asset_dir),
            "LAMBDA_RUNTIME_DIR": str(self.runtime_path),
            "_HANDLER": self.handler,
            # Never let a developer's ~/.aws or an instance role leak in.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        base.update(self._extra_env)
        name = base["AWS_LAMBDA_FUNCTION_NAME"]
        base.setdefault("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}")
        base.setdefault("AWS_LAMBDA_LOG_STREAM_NAME", "2024/01/01/[$LATEST]harness")
        base["PYTHONPATH"] = os.pathsep.join([str(self.asset_dir), str(self.runtime_path)])
        return base

    def start(self) -> LambdaProcess:
        """Start the child and wait for its cold start to finish.

        Returns
        -------
        LambdaProcess
            ``self``.

        Raises
        ------
        RuntimeError
            If the child does not report readiness within ``startup_timeout``.
            (A handler import error does *not* raise: like Lambda, every
            invocation then fails with ``Runtime.ImportModuleError``; see
            :attr:`init_error`.)
        """
        self._started = True
        if not self.alive:
            self._spawn()
        return self

    def stop(self) -> None:
        """Close the child's stdin, wait for it (kill after 5 s) and clean up."""
        self._started = False
        self._terminate(graceful=True)
        if self._owned_tmp is not None:
            shutil.rmtree(self._owned_tmp, ignore_errors=True)
            self._owned_tmp = None
            self._runtime_path = None

    def __enter__(self) -> LambdaProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the child process is running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def kill_after(self) -> float:
        """Real seconds after which a running invocation is killed as timed out."""
        scale = self.time_scale.scale if self.time_scale is not None else 1.0
        if scale == 1.0:
            return self.function_timeout + _TIMEOUT_GRACE_S
        return max(self.function_timeout / scale, MIN_REAL_TIMEOUT_S) + _TIMEOUT_GRACE_S

    @property
    def pid(self) -> int | None:
        """Process id of the current child, if any."""
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> None:
        self._terminate(graceful=False)
        cmd = [
            self.python,
            "-S",  # no site: no site-packages, no .pth files
            "-P",  # no script dir / cwd on sys.path
            "-B",  # the asset folder is read-only on Lambda: no __pycache__
            str(BOOTSTRAP),
            "--handler",
            self.handler,
            "--timeout-s",
            repr(self.function_timeout),
            "--account-id",
            self.account_id,
            *(["--function-arn", self.function_arn] if self.function_arn else []),
        ]
        self._replies = queue.Queue()
        with self._log_cond:
            self._stderr_eof = False
            self._marker_seq = self._seq
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.asset_dir,
            close_fds=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._read_stdout,
                args=(self._proc.stdout, self._replies),
                daemon=True,
                name=f"lambda-stdout-{self._proc.pid}",
            ),
            threading.Thread(
                target=self._read_stderr,
                args=(self._proc.stderr,),
                daemon=True,
                name=f"lambda-stderr-{self._proc.pid}",
            ),
        ]
        for t in self._readers:
            t.start()
        self.cold_starts += 1
        try:
            ready = self._replies.get(timeout=self.startup_timeout)
        except queue.Empty:
            ready = None
        if not ready or not ready.get("ready"):
            self._terminate(graceful=False)
            raise RuntimeError(f"Lambda child failed to start; logs:\n{self.logs()}")
        self.init_error = ready.get("init_error")
        self.init_duration_ms = ready.get("init_duration_ms")

    def _terminate(self, *, graceful: bool) -> None:
        proc = self._proc
        if proc is None:
            return
        if graceful and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()  # bootstrap exits on EOF
            except OSError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for t in self._readers:
            t.join(timeout=5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._readers = []
        self._proc = None

    # -- reader threads ----------------------------------------------------
    def _read_stdout(self, stream: IO[bytes], replies: queue.Queue[dict[str, Any] | None]) -> None:
        # The queue is passed in so a late EOF from a killed child can never
        # land in the queue of its replacement.
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace")
            try:
                replies.put(json.loads(text))
            except ValueError:
                self._append_log(f"[harness: stray stdout] {text.rstrip()}")
        replies.put(None)  # EOF: the child is gone

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            pos = line.find(MARKER)
            if pos < 0:
                self._append_log(line)
                continue
            if line[:pos].strip():  # a partial line glued before the marker
                self._append_log(line[:pos])
            with self._log_cond:
                self._marker_seq = int(line[pos + len(MARKER) :].strip())
                self._log_cond.notify_all()
        with self._log_cond:
            self._stderr_eof = True
            self._log_cond.notify_all()

    def _append_log(self, line: str) -> None:
        with self._log_cond:
            self._lines.append(line)

    def _wait_logs(self, seq: int | None, timeout: float) -> None:
        """Wait until stderr output up to invocation ``seq`` (or EOF) was read."""
        deadline = time.monotonic() + timeout
        with self._log_cond:
            while not self._stderr_eof and (seq is None or self._marker_seq < seq):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._log_cond.wait(left)

    # -- invocation --------------------------------------------------------
    def invoke(self, event: Mapping[str, Any], timeout: float = 60.0, request_id: str | None = None) -> dict[str, Any]:
        """Invoke the handler once with ``event`` and wait for it to return.

        Parameters
        ----------
        event : Mapping[str, Any]
            JSON-serializable event (e.g. a CloudFormation custom-resource
            request).
        timeout : float
            Harness safety bound in real seconds.  If it is shorter than
            :attr:`kill_after` and expires, the child is killed and
            ``TimeoutError`` raised.
        request_id : str, optional
            ``context.aws_request_id``; a random UUID by default.

        Returns
        -------
        dict
            ``ok`` (bool), ``error`` (``"Type: message"`` or None),
            ``duration_ms`` (float), ``result`` (handler return value),
            ``request_id``, ``timed_out`` (bool) and ``logs`` (stderr text
            written during this invocation).  Timeouts are reported as
            ``error="Task timed out after N seconds"``; a child that died as
            ``"Runtime.ExitError: ..."``.

        Raises
        ------
        TimeoutError
            If ``timeout`` expired before the function timeout did.
        """
        with self._invoke_lock:
            if not self._started:
                raise RuntimeError("LambdaProcess not started")
            if not self.alive:
                self._spawn()  # Lambda replaces a dead sandbox: new cold start
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            self._seq += 1
            seq = self._seq
            request_id = request_id or str(uuid.uuid4())
            with self._log_cond:
                first_line = len(self._lines)
            started = time.perf_counter()
            try:
                proc.stdin.write(
                    (json.dumps({"seq": seq, "request_id": request_id, "event": event}) + "\n").encode("utf-8")
                )
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the child died; the stdout reader reports EOF below

            limit = self.kill_after
            wait = min(timeout, limit)
            reply: dict[str, Any] | None
            try:
                reply = self._replies.get(timeout=wait)
            except queue.Empty:
                self._terminate(graceful=False)
                if timeout < limit:
                    raise TimeoutError(
                        f"handler did not return within {timeout}s; logs:\n" + self._logs_since(first_line)
                    ) from None
                reply = {
                    "ok": False,
                    "error": f"Task timed out after {self.function_timeout:.2f} seconds",
                    "result": None,
                    "timed_out": True,
                    "duration_ms": (time.perf_counter() - started) * 1000,
                }
            if reply is None:
                rc = proc.wait()
                self._terminate(graceful=False)
                reply = {
                    "ok": False,
                    "error": f"Runtime.ExitError: child exited with status {rc}",
                    "result": None,
                    "duration_ms": (time.perf_counter() - started) * 1000,
                }
            else:
                self._wait_logs(seq, timeout=5)
            reply.pop("seq", None)
            reply.setdefault("timed_out", False)
            reply["request_id"] = request_id
            reply["logs"] = self._logs_since(first_line)
            return reply

    def introspect(self, importable: Iterable[str] = ()) -> dict[str, Any]:
        """Describe the child interpreter (does not call the handler).

        Parameters
        ----------
        importable : Iterable[str]
            Module names to probe with ``importlib.util.find_spec`` in the
            child (nothing is imported).

        Returns
        -------
        dict
            ``sys_path`` (list), ``modules`` (sorted loaded top-level names),
            ``module_files`` (top-level name -> ``__file__``), ``importable``
            (name -> bool), ``env_keys``, ``executable``, ``flags``.
        """
        reply = self.invoke({"__harness__": "introspect", "importable": list(importable)})
        if not reply["ok"]:
            raise RuntimeError(f"introspection failed: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    # -- logs --------------------------------------------------------------
    def log_lines(self) -> list[str]:
        """All stderr lines of all children so far (harness markers removed)."""
        with self._log_cond:
            return list(self._lines)

    def logs(self) -> str:
        """All stderr output so far as one string (see :meth:`log_lines`)."""
        return "\n".join(self.log_lines())

    def clear_logs(self) -> None:
        """Forget the collected log lines (call between invocations)."""
        with self._log_cond:
            self._lines.clear()

    def _logs_since(self, index: int) -> str:
        with self._log_cond:
            return "\n".join(self._lines[index:])


# --------------------------------------------------------------------------
# concurrent invocations
# --------------------------------------------------------------------------
class LambdaPool:
    """The execution environments of one function, as Lambda keeps them.

    Lambda runs concurrent invocations in separate environments and reuses a
    warm one when it is idle: :meth:`invoke` takes an idle
    :class:`LambdaProcess` (the oldest) or starts another, so an
    asynchronous hand-over, a second delivery of an event or a Delete runs
    while an earlier invocation is still running. Thread-safe.

    Parameters
    ----------
    start
        Builds and starts one more process (a cold start).
    """

    def __init__(self, start: Callable[[], LambdaProcess]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._processes: list[LambdaProcess] = []
        self._idle: list[LambdaProcess] = []
        self._stopped = threading.Event()

    @property
    def processes(self) -> list[LambdaProcess]:
        """Every process started so far, oldest first."""
        with self._lock:
            return list(self._processes)

    def primary(self) -> LambdaProcess:
        """The oldest process (started now if there is none): the one sequential invocations use."""
        with self._lock:
            if self._processes:
                return self._processes[0]
        process = self._take()
        self._give_back(process)
        return process

    def invoke(self, event: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Invoke in an idle environment (or a new one); :meth:`LambdaProcess.invoke`'s reply.

        ``timeout`` is the harness bound in real seconds; by default 30 s
        past the point where the process kills the invocation.
        """
        process = self._take()
        try:
            return process.invoke(event, timeout=timeout if timeout is not None else process.kill_after + 30)
        finally:
            self._give_back(process)

    def stop(self) -> None:
        """Stop every process; a running invocation ends as if its child died."""
        with self._lock:
            self._stopped.set()
            processes, self._processes, self._idle = self._processes, [], []
        for process in processes:
            process.stop()

    def _take(self) -> LambdaProcess:
        with self._lock:
            if self._stopped.is_set():
                raise RuntimeError("the function's environments are stopped")
            if self._idle:
                process = min(self._idle, key=self._processes.index)
                self._idle.remove(process)
                return process
        # A cold start takes a while: outside the lock, so other invocations go on meanwhile.
        process = self._start()
        with self._lock:
            if self._stopped.is_set():
                process.stop()
                raise RuntimeError("the function's environments are stopped")
            self._processes.append(process)
        return process

    def _give_back(self, process: LambdaProcess) -> None:
        with self._lock:
            if process in self._processes and process not in self._idle:
                self._idle.append(process)
