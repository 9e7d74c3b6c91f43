"""Local time that runs faster than real time, so a 10-minute bake takes seconds.

One :class:`TimeScale` is shared by the local engine's process (the fleet
simulator in the IoT fake) and every provider process it starts (through the
environment variables of :meth:`TimeScale.environment`), so both see the same
virtual clock: ``origin + (real - epoch) * scale``. The state file keeps it
(:meth:`TimeScale.to_json`), so virtual time never runs backwards from one
run to the next: jobs saved by a run carry virtual timestamps. It exists only in the local
engine: the shipped provider never reads these variables; the Lambda-like
bootstrap gives the handler scaled clocks instead (:mod:`.lambda_bootstrap`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["ENV_EPOCH", "ENV_ORIGIN", "ENV_SCALE", "REAL_TIME", "TimeScale"]

ENV_SCALE = "CDK_IOT_JOB_LOCAL_TIME_SCALE"
ENV_EPOCH = "CDK_IOT_JOB_LOCAL_TIME_EPOCH"
ENV_ORIGIN = "CDK_IOT_JOB_LOCAL_TIME_ORIGIN"


@dataclass(frozen=True)
class TimeScale:
    """A virtual clock ``scale`` times faster than the wall clock, anchored at ``epoch``.

    Parameters
    ----------
    scale
        Virtual seconds per real second (1: real time). At 60, a minute passes
        in a second.
    epoch
        The real ``time.time()`` at which virtual time was ``origin``.
    origin
        The virtual time at ``epoch`` (default: ``epoch``, so the two agree then).
    """

    scale: float = 1.0
    epoch: float = field(default_factory=time.time)
    origin: float | None = None
    # This process's monotonic reading at ``epoch``: monotonic clocks are per process.
    _monotonic_epoch: float = field(default_factory=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"the time scale must be a positive number, not {self.scale}")

    def time(self) -> float:
        """Virtual seconds since the Unix epoch."""
        origin = self.epoch if self.origin is None else self.origin
        return origin + (time.time() - self.epoch) * self.scale

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
        origin = self.epoch if self.origin is None else self.origin
        return {ENV_SCALE: repr(self.scale), ENV_EPOCH: repr(self.epoch), ENV_ORIGIN: repr(origin)}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TimeScale | None:
        """The clock :meth:`environment` described, or ``None`` for real time."""
        scale = environ.get(ENV_SCALE)
        if scale is None or float(scale) == 1.0:
            return None
        epoch = float(environ.get(ENV_EPOCH, time.time()))
        return cls(float(scale), epoch, float(environ.get(ENV_ORIGIN, epoch)))

    def to_json(self) -> dict[str, float]:
        """The clock, for the state file."""
        return {"scale": self.scale, "epoch": self.epoch, "origin": self.epoch if self.origin is None else self.origin}

    @classmethod
    def continuing(cls, scale: float, saved: Mapping[str, float] | None) -> TimeScale:
        """A clock at ``scale`` that goes on from a saved one (:meth:`to_json`) without running backwards.

        The same scale keeps the saved clock as it was (virtual time passed
        between the runs too); another scale starts from the saved clock's
        "now", or from real time if that is later.
        """
        if saved:
            previous = cls(float(saved["scale"]), float(saved["epoch"]), float(saved["origin"]))
            if previous.scale == scale:
                return previous
            now = time.time()
            return cls(scale, now, max(now, previous.time()))
        return cls(scale)


REAL_TIME = TimeScale(1.0, 0.0)
"""Real time: the wall clock itself."""
