"""Keep secret property values out of Reasons and log lines.

Tag values, document parameters and job documents may carry secrets, and a
Reason is readable by anyone allowed ``DescribeStackEvents``. The schema never
quotes them in its own messages; this module is the second line for text the
provider does not write itself (an IoT error message, crhelper's log of an
exception and its traceback): every occurrence of such a value is replaced.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MASK", "install", "redact", "secret_values", "set_secrets"]

MASK = "***"
# Shorter strings would mask ordinary words of a message; the provider's own
# messages never quote these values at any length.
_MIN_LENGTH = 4

_secrets: tuple[str, ...] = ()


def secret_values(properties: Any) -> set[str]:
    """The strings of ``Tags`` values, ``DocumentParameters`` values and ``Document``.

    Any shape is searched (a map of tags, ``"k=v"`` strings), since an
    invalid value is exactly what an error message might quote.
    """
    if not isinstance(properties, Mapping):
        return set()
    found: set[str] = set()
    tags = properties.get("Tags")
    if isinstance(tags, Sequence) and not isinstance(tags, str):
        for tag in tags:
            _collect(tag.get("Value") if isinstance(tag, Mapping) and "Key" in tag else tag, found)
    else:
        _collect(tags, found)
    parameters = properties.get("DocumentParameters")
    _collect(list(parameters.values()) if isinstance(parameters, Mapping) else parameters, found)
    document = properties.get("Document")
    _collect(document, found)
    if isinstance(document, str):
        with contextlib.suppress(ValueError, RecursionError):
            _collect(json.loads(document), found)
    # JSON-escaped forms too: an error may quote a value inside JSON text.
    found |= {json.dumps(value)[1:-1] for value in found}
    return {value for value in found if len(value) >= _MIN_LENGTH}


def _collect(value: Any, found: set[str], depth: int = 0) -> None:
    if depth > 50:
        return
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found, depth + 1)
    elif isinstance(value, Sequence):
        for item in value:
            _collect(item, found, depth + 1)


def set_secrets(values: set[str]) -> None:
    """The values to mask from now on (the current event's)."""
    global _secrets
    # Longest first, so a value containing another is masked whole.
    _secrets = tuple(sorted(values, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every current secret value masked."""
    for value in _secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _redacting_factory(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        if _secrets:
            record.msg, record.args = redact(record.getMessage()), None
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    make.redacting = True  # type: ignore[attr-defined]
    return make


def install() -> None:
    """Mask secrets in every log record of the process, whichever logger or handler writes it."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
