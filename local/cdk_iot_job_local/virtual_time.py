"""Local time that runs faster than real time, so a 10-minute bake takes seconds.

One :class:`TimeScale` is shared by the local engine's process (the fleet
simulator in the IoT fake) and every provider process it starts (through the
environment variables of :meth:`TimeScale.environment`), so both see the same
virtual clock: ``epoch + (real - epoch) * scale``. It exists only in the local
engine: the shipped provider never reads these variables; the Lambda-like
bootstrap gives the handler scaled clocks instead (:mod:`.lambda_bootstrap`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["ENV_EPOCH", "ENV_SCALE", "REAL_TIME", "TimeScale"]

ENV_SCALE = "CDK_IOT_JOB_LOCAL_TIME_SCALE"
ENV_EPOCH = "CDK_IOT_JOB_LOCAL_TIME_EPOCH"


@dataclass(frozen=True)
class TimeScale:
    """A virtual clock ``scale`` times faster than the wall clock, anchored at ``epoch``.

    Parameters
    ----------
    scale
        Virtual seconds per real second (1: real time). At 60, a minute passes
        in a second.
    epoch
        The real ``time.time()`` at which virtual and real time agree.
    """

    scale: float = 1.0
    epoch: float = field(default_factory=time.time)
    # This process's monotonic reading at ``epoch``: monotonic clocks are per process.
    _monotonic_epoch: float = field(default_factory=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"the time scale must be a positive number, not {self.scale}")

    def time(self) -> float:
        """Virtual seconds since the Unix epoch."""
        return self.epoch + (time.time() - self.epoch) * self.scale

    def now(self) -> datetime:
        """Virtual now, in UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    def monotonic(self) -> float:
        """A virtual monotonic clock (for deadlines)."""
        return self._monotonic_epoch + (time.monotonic() - self._monotonic_epoch) * self.scale

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        if seconds > 0:
            time.sleep(seconds / self.scale)

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long ``virtual_seconds`` take in real time."""
        return virtual_seconds / self.scale

    def environment(self) -> dict[str, str]:
        """The variables with which a provider process shares this clock."""
        return {ENV_SCALE: repr(self.scale), ENV_EPOCH: repr(self.epoch)}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TimeScale | None:
        """The clock :meth:`environment` described, or ``None`` for real time."""
        scale = environ.get(ENV_SCALE)
        if scale is None or float(scale) == 1.0:
            return None
        return cls(float(scale), float(environ.get(ENV_EPOCH, time.time())))


REAL_TIME = TimeScale(1.0, 0.0)
"""Real time: the wall clock itself."""
