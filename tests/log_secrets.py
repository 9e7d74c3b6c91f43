"""Planted secrets, and every provider log line of the whole test run, to scan for them.

The sample events (``tests/events/create.json``) carry a secret in the job
document and in a tag value, and every response URL the test endpoints issue
has a random signature. :func:`start_capture` (called by ``conftest.py``
before any test runs) records:

* every log record at INFO or above from the loggers that run inside the
  provider (``cdk_iot_job_provider``, ``crhelper``, ``botocore``, ``boto3``,
  ``urllib3`` and the root logger), formatted with their arguments and
  tracebacks, the way Lambda would write them;
* every log a Lambda-like child process wrote during an invocation;
* the signature of every response URL issued.

``tests/system/test_log_secrets.py`` runs last and scans all of it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint
from cdk_iot_job_local.lambda_process import LambdaProcess

__all__ = ["PLANTED", "captured_lines", "issued_signatures", "start_capture"]

# Planted in tests/events/create.json: in the job document and in a tag value.
PLANTED = ("PLANTED-DOCUMENT-SECRET-5f1e0c", "PLANTED-TAG-SECRET-93b7aa")
_PROVIDER_LOGGERS = ("cdk_iot_job_provider", "crhelper", "botocore", "boto3", "urllib3", "root")

_lock = threading.Lock()
_lines: list[str] = []
_signatures: set[str] = set()


class _ProviderLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logging.Formatter("[%(levelname)s] %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _PROVIDER_LOGGERS:
            with _lock:
                _lines.append(self.format(record))


def start_capture() -> None:
    """Capture provider logs and issued signatures from now on (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(handler, _ProviderLogs) for handler in root.handlers):
        return
    root.addHandler(_ProviderLogs())

    issue = CloudFormationEndpoint.response_url
    invoke = LambdaProcess.invoke

    def response_url(self: CloudFormationEndpoint, name: str) -> str:
        url = issue(self, name)
        with _lock:
            _signatures.add(CloudFormationEndpoint.signature_of(url))
        return url

    def invoke_and_keep_logs(self: LambdaProcess, *args: Any, **kwargs: Any) -> dict[str, Any]:
        reply = invoke(self, *args, **kwargs)
        with _lock:
            _lines.extend(str(reply.get("logs", "")).splitlines())
        return reply

    CloudFormationEndpoint.response_url = response_url  # type: ignore[method-assign]
    LambdaProcess.invoke = invoke_and_keep_logs  # type: ignore[method-assign]


def captured_lines() -> list[str]:
    """Every provider log line captured so far."""
    with _lock:
        return list(_lines)


def issued_signatures() -> set[str]:
    """The signature of every response URL issued so far."""
    with _lock:
        return set(_signatures)


def leaks(lines: list[str], signatures: set[str]) -> list[str]:
    """The lines that hold a planted secret or a response URL signature."""
    return [line for line in lines if any(secret in line for secret in (*PLANTED, *signatures))]
