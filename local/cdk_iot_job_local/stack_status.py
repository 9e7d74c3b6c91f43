"""CloudFormation's ``DescribeStacks`` for the stacks the local engine deploys.

A provider that waits (a rollout gate) asks ``DescribeStacks`` whether its
stack is still ``CREATE_IN_PROGRESS`` or ``UPDATE_IN_PROGRESS``, so that it
stops waiting on a cancel or a rollback. The engine's stacks are not moto's,
and moto's CloudFormation backend does not even load here (its ``[server]``
dependencies are left out, see ``requirements.txt``). So, while installed,
:class:`StackStatuses` answers on the moto server itself, before moto picks a
backend: a ``DescribeStacks`` request (signed for ``cloudformation``) naming a
stack in its registry (stack ARN -> status, which the engine keeps as it
deploys) gets that stack's ``StackId``, ``StackName``, ``StackStatus`` and
``CreationTime`` (when the registry first answered it). As in CloudFormation,
a stack is found by its ARN, or by its name unless it was deleted, and only
by a caller in its own account and region.

Any other request is moto's. A ``DescribeStacks`` of a stack the registry does
not hold is too, when moto's CloudFormation backend loads; otherwise it is
answered as CloudFormation answers an unknown stack (``ValidationError``:
``Stack with id ... does not exist``) rather than by moto's HTTP 500.
"""

from __future__ import annotations

import importlib
import io
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.iam.models import get_account_id_from
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from .lambda_invoke import SharedPatch

__all__ = ["StackStatuses", "stack_address"]

_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
# A Query request body is small; never read more (a large body is not DescribeStacks).
_MAX_BODY = 64 * 1024
_moto_cloudformation: bool | None = None
_moto_cloudformation_lock = threading.Lock()


def stack_address(stack_id: str) -> tuple[str, str, str] | None:
    """Account, region and name of a stack ARN; ``None`` for anything else."""
    parts = stack_id.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "cloudformation":
        return None
    kind, _, rest = parts[5].partition("/")
    name = rest.split("/")[0]
    if kind != "stack" or not name:
        return None
    return parts[4], parts[3], name


def _moto_answers_cloudformation() -> bool:
    """Whether moto's CloudFormation backend loads (it needs moto's ``[cloudformation]`` extra)."""
    global _moto_cloudformation
    with _moto_cloudformation_lock:
        if _moto_cloudformation is None:
            try:
                importlib.import_module("moto.cloudformation.responses")
                _moto_cloudformation = True
            except ImportError:
                _moto_cloudformation = False
        return _moto_cloudformation


def _scope(environ: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """Access key, region and service of a SigV4-signed request."""
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    credential = auth.partition("Credential=")[2].split(",")[0]
    parts = credential.split("/")
    return (parts[0], parts[2], parts[3]) if len(parts) >= 5 else None


def _describe_stacks_request(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(StackName, account, region)`` of a DescribeStacks naming a stack; the body is left readable."""
    scope = _scope(environ)
    if scope is None or scope[2] != "cloudformation" or environ.get("REQUEST_METHOD") != "POST":
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= _MAX_BODY:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again when the request is its own
    params = parse_qs(body.decode("utf-8", "replace"))
    if params.get("Action") != ["DescribeStacks"] or not params.get("StackName"):
        return None
    access_key, region, _service = scope
    return params["StackName"][0], get_account_id_from(access_key), region


def _xml(status: str, body: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
    data = body.encode()
    headers = [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


def _stacks_xml(stack: Mapping[str, str]) -> str:
    members = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in stack.items())
    return (
        f'<DescribeStacksResponse xmlns="{_NAMESPACE}"><DescribeStacksResult><Stacks><member>{members}</member>'
        f"</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        "</ResponseMetadata></DescribeStacksResponse>"
    )


def _not_found_xml(requested: str) -> str:
    return (
        f'<ErrorResponse xmlns="{_NAMESPACE}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
        f"<Message>Stack with id {escape(requested)} does not exist</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def _patched_call(original: Callable[..., Any], patch: SharedPatch) -> Callable[..., Any]:
    def __call__(app: DomainDispatcherApplication, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        owners = patch.owners()
        request = _describe_stacks_request(environ) if owners else None
        if request is not None:
            requested, account, region = request
            for owner in owners:
                found = owner.find(requested, account, region)
                if found is not None:
                    return _xml("200 OK", _stacks_xml(found), start_response)
            if not _moto_answers_cloudformation():
                return _xml("400 Bad Request", _not_found_xml(requested), start_response)
        return original(app, environ, start_response)

    return __call__


_DESCRIBE_STACKS = SharedPatch(DomainDispatcherApplication, "__call__", _patched_call)


class StackStatuses:
    """Answers ``DescribeStacks`` from ``statuses`` (stack ARN -> status) while installed.

    Parameters
    ----------
    statuses
        The registry, read on every request: the engine (or a test) changes
        it in place.
    """

    def __init__(self, statuses: Mapping[str, str]) -> None:
        self.statuses = statuses
        self._created: dict[str, str] = {}

    def find(self, requested: str, account: str, region: str) -> dict[str, str] | None:
        """The stack ``requested`` (an ARN or a name) names for a caller in ``account`` and ``region``."""
        for stack_id, status in list(self.statuses.items()):
            address = stack_address(stack_id)
            if address is None or address[:2] != (account, region):
                continue
            # A deleted stack is only found by its ARN, as in CloudFormation.
            if requested == stack_id or (requested == address[2] and status != "DELETE_COMPLETE"):
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                created = self._created.setdefault(stack_id, now)
                return {"StackId": stack_id, "StackName": address[2], "CreationTime": created, "StackStatus": status}
        return None

    def install(self) -> StackStatuses:
        """Answer the registry's stacks from now on."""
        _DESCRIBE_STACKS.add(self)
        return self

    def uninstall(self) -> None:
        """Stop answering; moto answers every request again when no engine is left."""
        _DESCRIBE_STACKS.remove(self)
