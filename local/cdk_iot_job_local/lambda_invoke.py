"""Lambda's asynchronous ``Invoke``, for the functions the local engine runs.

moto cannot run a function here (it needs Docker), and does not know the
engine's functions anyway: they run from their asset folders in Lambda-like
processes (:mod:`.lambda_process`). A provider that hands work over to a new
invocation of itself (``lambda.invoke(FunctionName=context.invoked_function_arn,
InvocationType="Event", ...)``) reaches the embedded moto server, so
:class:`AsyncInvoke` patches moto's ``LambdaResponse.invoke`` on the server
side while installed:

* ``InvocationType=Event`` of a function it knows answers 202 at once and
  hands the payload to a callback that runs it on another thread, as Lambda's
  asynchronous invoke does (payloads over :data:`MAX_ASYNC_PAYLOAD_BYTES`:
  ``RequestTooLargeException``; a payload that is not JSON:
  ``InvalidRequestContentException``);
* ``DryRun`` of a function it knows answers 204;
* ``RequestResponse`` of a function it knows is refused with
  ``InvalidParameterValueException``: a synchronous answer is not supported
  locally;
* any other function is moto's: an unknown one answers
  ``ResourceNotFoundException``.

Lambda retries an asynchronous invocation whose function failed; here it runs
once. Several :class:`AsyncInvoke` may be installed at once (one per
:class:`~.runtime.LocalAws`): a request goes to the first that knows the
function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moto.awslambda.responses import LambdaResponse
from moto.core.exceptions import JsonRESTError

from cdk_iot_job_provider.gate_api import MAX_ASYNC_PAYLOAD_BYTES

__all__ = ["MAX_ASYNC_PAYLOAD_BYTES", "AsyncInvoke", "LocalFunction", "SharedPatch", "function_address"]

#: Lambda's quota on an asynchronous invocation's payload (1 MB).


@dataclass(frozen=True)
class LocalFunction:
    """How to run one function locally: also the key of its Lambda-like processes.

    ``arn`` is the deployed function's ``Arn`` attribute, ``""`` for a
    function known only by its folder (it cannot be invoked through the API).
    """

    asset_dir: Path
    handler: str
    timeout: float
    account: str
    region: str
    variables: tuple[tuple[str, str], ...] = ()
    arn: str = ""

    @property
    def name(self) -> str:
        """The function's name (``AWS_LAMBDA_FUNCTION_NAME``), ``""`` without an ARN."""
        return function_address(self.arn)[2] if self.arn else ""


def function_address(name_or_arn: str, account: str = "", region: str = "") -> tuple[str, str, str, str | None]:
    """Account, region, name and qualifier of a ``FunctionName`` as Invoke takes it.

    A name, a partial ARN (``123456789012:function:name``) or an ARN, each
    with an optional ``:qualifier``; ``account`` and ``region`` (the
    caller's) fill in what the name does not say.
    """
    parts = name_or_arn.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        return parts[4], parts[3], parts[6], parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":
        return parts[0], region, parts[2], parts[3] if len(parts) > 3 else None
    return account, region, parts[0], parts[1] if len(parts) > 1 else None


class _RequestTooLarge(JsonRESTError):
    code = 413


class SharedPatch:
    """One attribute of a moto class replaced while any of its owners is installed.

    The replacement sees the installed owners, most recent first; the
    original is restored when the last one leaves.
    """

    def __init__(self, cls: type, name: str, make: Callable[[Any, SharedPatch], Any]) -> None:
        self._cls = cls
        self._name = name
        self._make = make
        self._lock = threading.Lock()
        self._owners: list[Any] = []
        self.original: Any = None

    def add(self, owner: Any) -> None:
        """Install for ``owner`` (a no-op when it already is)."""
        with self._lock:
            if owner in self._owners:
                return
            if not self._owners:
                self.original = self._cls.__dict__[self._name]
                setattr(self._cls, self._name, self._make(self.original, self))
            self._owners.insert(0, owner)

    def remove(self, owner: Any) -> None:
        """Uninstall for ``owner``; the last one out restores moto's attribute."""
        with self._lock:
            if owner not in self._owners:
                return
            self._owners.remove(owner)
            if not self._owners:
                setattr(self._cls, self._name, self.original)
                self.original = None

    def owners(self) -> list[Any]:
        """The installed owners, most recent first."""
        with self._lock:
            return list(self._owners)


def _patched_invoke(original: Callable[[LambdaResponse], Any], patch: SharedPatch) -> Callable[[LambdaResponse], Any]:
    def invoke(response: LambdaResponse) -> Any:
        # As moto reads it: the (URL-encoded) name or ARN before /invocations.
        requested = unquote(response.path.rsplit("/", 2)[-2])
        qualifier = response._get_param("qualifier")
        for owner in patch.owners():
            function = owner.find(requested, response.current_account, response.region, qualifier)
            if function is not None:
                return owner.answer(function, response)
        return original(response)

    invoke.__name__ = "invoke"
    return invoke


_INVOKE = SharedPatch(LambdaResponse, "invoke", _patched_invoke)


class AsyncInvoke:
    """The functions one local engine runs, reachable through Lambda's ``Invoke`` while installed.

    Parameters
    ----------
    start
        Called on the moto server's request thread with the function and the
        decoded payload of each accepted ``Event`` invoke, before the 202 is
        answered; it must return at once (start a thread) and be thread-safe.
    """

    def __init__(self, start: Callable[[LocalFunction, Any], None]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._functions: dict[tuple[str, str, str], LocalFunction] = {}

    def register(self, function: LocalFunction) -> None:
        """Make ``function`` invocable by its ARN (the latest registration of an ARN wins)."""
        if not function.arn:
            return
        account, region, name, _qualifier = function_address(function.arn)
        with self._lock:
            self._functions[(account, region, name)] = function

    def find(self, requested: str, account: str, region: str, qualifier: str | None = None) -> LocalFunction | None:
        """The registered function a ``FunctionName`` names for a caller in ``account`` and ``region``."""
        account, region, name, in_name = function_address(requested, account, region)
        if (qualifier or in_name) not in (None, "$LATEST"):
            return None  # versions and aliases are not modelled: moto answers
        with self._lock:
            return self._functions.get((account, region, name))

    def answer(self, function: LocalFunction, response: LambdaResponse) -> tuple[int, dict[str, str], str]:
        """Lambda's answer to an ``Invoke`` of ``function``; an accepted ``Event`` is started."""
        invocation_type = response.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return 204, {"status": "204"}, ""
        if invocation_type != "Event":
            raise JsonRESTError(
                "InvalidParameterValueException",
                f"InvocationType {invocation_type} of {function.arn} is not supported locally: "
                "the local engine runs functions asynchronously only (InvocationType=Event)",
            )
        body = response.body if isinstance(response.body, bytes) else str(response.body or "").encode()
        if len(body) > MAX_ASYNC_PAYLOAD_BYTES:
            raise _RequestTooLarge(
                "RequestTooLargeException",
                f"{len(body)} byte payload is over the {MAX_ASYNC_PAYLOAD_BYTES} bytes of an asynchronous invoke",
            )
        try:
            payload = json.loads(body) if body else {}
        except ValueError as error:
            raise JsonRESTError("InvalidRequestContentException", f"could not parse the payload: {error}") from error
        self._start(function, payload)
        return 202, {"status": "202", "content-type": "application/json"}, ""

    def install(self) -> AsyncInvoke:
        """Route ``Invoke`` requests for the registered functions here."""
        _INVOKE.add(self)
        return self

    def uninstall(self) -> None:
        """Stop routing; moto's own ``Invoke`` returns when no engine is left."""
        _INVOKE.remove(self)
