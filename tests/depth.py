"""How many examples the generated suites draw: all of them in ``make check``, a sample in ``make test``.

``make test`` sets ``CDK_IOT_JOB_TEST_DEPTH=fast``: every property-based test
still runs (its explicit ``@example`` cases included) with a tenth of its
generated examples. Unset, or ``full``, each test draws its whole count.
"""

from __future__ import annotations

import os

__all__ = ["FULL", "examples"]

FULL = os.environ.get("CDK_IOT_JOB_TEST_DEPTH", "full") != "fast"


def examples(full_count: int) -> int:
    """``full_count`` in a full run; a tenth of it (at least 3) in a fast one."""
    return full_count if FULL else max(3, full_count // 10)
