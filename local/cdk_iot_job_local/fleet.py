"""How the simulated fleet answers IoT job executions: a seeded, per-thing policy.

moto has no devices, so the local engine's IoT fake (:mod:`.iot_fake`) asks a
:class:`FleetPolicy` what each targeted thing does with a job: succeed, fail,
reject, or stay silent (never answer), and how long after its execution
started (``IN_PROGRESS``) it answers. A spec string says it::

    FleetPolicy.parse("succeed=0.97,fail=0.03,delay=2..20s,seed=7", overrides={"Sensor-1": "fail@5s"})

The answer of a thing to a job comes from a stable hash of (seed, job id,
thing name), never from the order of calls, so the same deploy of the same
stacks meets the same fleet. This module knows nothing of moto or clocks: the
fake turns the answers into execution statuses on its own (virtual) clock.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_FLEET", "OUTCOMES", "OUTCOME_STATUS", "Answer", "FleetPolicy"]

#: The outcomes a device may choose, in the order the spec's fractions are laid out on [0, 1).
OUTCOMES = ("succeed", "fail", "reject", "silent")

#: The execution status each outcome ends in (``None``: the device never answers).
OUTCOME_STATUS: Mapping[str, str | None] = MappingProxyType(
    {"succeed": "SUCCEEDED", "fail": "FAILED", "reject": "REJECTED", "silent": None}
)

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>ms|s|m)?")
_KEYS = (*OUTCOMES, "delay", "seed")
# Fractions are written with a few decimals; float sums of them are off by far less than this.
_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Answer:
    """What one thing does with one job.

    Attributes
    ----------
    outcome
        One of :data:`OUTCOMES`.
    delay_seconds
        How long after its execution started the thing answers (meaningless
        for ``silent``, which never does).
    """

    outcome: str
    delay_seconds: float

    @property
    def status(self) -> str | None:
        """The execution's final status (``SUCCEEDED``, ``FAILED``, ``REJECTED``), ``None`` if silent."""
        return OUTCOME_STATUS[self.outcome]


@dataclass(frozen=True)
class _Override:
    outcome: str
    delay: tuple[float, float] | None  # None: the policy's delay range


@dataclass(frozen=True)
class FleetPolicy:
    """How simulated devices answer job executions.

    Build one with :meth:`parse`; ask it with :meth:`answer`.

    Attributes
    ----------
    fractions
        Share of things for each outcome, in :data:`OUTCOMES` order; they sum to 1.
    delay
        ``(low, high)`` seconds: a thing answers a uniformly drawn time in
        that range after its execution started.
    seed
        Mixed into every thing's hash: another seed, another fleet.
    overrides
        Per-thing outcome (and, optionally, delay range) that wins over the fractions.
    """

    fractions: tuple[float, float, float, float]
    delay: tuple[float, float]
    seed: int
    # Compared, not hashed (a mapping has no hash): equal policies still hash alike.
    overrides: Mapping[str, _Override] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def parse(cls, spec: str, overrides: Mapping[str, str] | None = None) -> FleetPolicy:
        """Read a fleet spec.

        Parameters
        ----------
        spec
            Comma-separated ``key=value`` items: the outcome fractions
            ``succeed``, ``fail``, ``reject`` and ``silent`` (0 to 1, summing
            to 1; omitted ones are 0, and with none given every thing
            succeeds), ``delay`` (``A..B`` or one value, each a number with a
            unit ``ms``, ``s`` or ``m``; ``2..20s`` puts the last unit on both;
            default ``1..10s``) and ``seed`` (an integer, default 0).
        overrides
            Thing name to an outcome, optionally with ``@<delay>`` in the same
            form as ``delay`` (``"fail"``, ``"fail@5s"``, ``"succeed@1..2m"``).

        Returns
        -------
        FleetPolicy
            The policy.

        Raises
        ------
        ValueError
            Naming the item at fault, e.g. ``fleet: succeed=0.9 and fail=0.2 sum to 1.1, not 1``.
        """
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError("fleet: the spec is empty (e.g. 'succeed=0.97,fail=0.03,delay=2..20s,seed=7')")
        items: dict[str, str] = {}
        for item in spec.split(","):
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or not key:
                raise ValueError(f"fleet: {item.strip()!r} is not key=value")
            if key not in _KEYS:
                raise ValueError(f"fleet: unknown key {key!r} (expected one of {', '.join(_KEYS)})")
            if key in items:
                raise ValueError(f"fleet: {key} is given twice")
            items[key] = value
        given = {name: _fraction(name, items[name]) for name in OUTCOMES if name in items}
        fractions = tuple(given.get(name, 0.0) for name in OUTCOMES) if given else (1.0, 0.0, 0.0, 0.0)
        total = sum(fractions)
        if abs(total - 1.0) > _SUM_TOLERANCE:
            terms = [f"{name}={items[name]}" for name in given]
            listed = terms[0] if len(terms) == 1 else f"{', '.join(terms[:-1])} and {terms[-1]}"
            verb = "is" if len(terms) == 1 else "sum to"
            raise ValueError(f"fleet: {listed} {verb} {round(total, 9):g}, not 1")
        delay = _delay_range("delay", items["delay"]) if "delay" in items else (1.0, 10.0)
        seed = _seed(items["seed"]) if "seed" in items else 0
        parsed = {thing: _override(thing, text) for thing, text in (overrides or {}).items()}
        return cls(
            fractions=(fractions[0], fractions[1], fractions[2], fractions[3]),
            delay=delay,
            seed=seed,
            overrides=MappingProxyType(parsed),
        )

    def answer(self, job_id: str, thing_name: str) -> Answer:
        """What ``thing_name`` does with job ``job_id``: the same every time it is asked.

        Parameters
        ----------
        job_id
            The job's id.
        thing_name
            The thing's name.

        Returns
        -------
        Answer
            The outcome and how long after the execution started it comes.
        """
        pick, when = _uniforms(self.seed, job_id, thing_name)
        override = self.overrides.get(thing_name)
        low, high = override.delay if override is not None and override.delay is not None else self.delay
        delay = low + when * (high - low)
        if override is not None:
            return Answer(override.outcome, delay)
        bound = 0.0
        for outcome, fraction in zip(OUTCOMES, self.fractions, strict=True):
            bound += fraction
            if fraction > 0 and pick < bound:
                return Answer(outcome, delay)
        # pick is just below 1 and the float sum of the fractions fell short: the last outcome that has a share.
        last = max(i for i, fraction in enumerate(self.fractions) if fraction > 0)
        return Answer(OUTCOMES[last], delay)

    def describe(self) -> str:
        """A one-line summary, e.g. ``fleet: 97% succeed, 3% fail; answers 2-20 s after start; seed 7``."""
        shares = ", ".join(
            f"{_number(fraction * 100)}% {outcome}"
            for outcome, fraction in zip(OUTCOMES, self.fractions, strict=True)
            if fraction > 0
        )
        low, high = self.delay
        when = f"{_seconds(low)} s" if low == high else f"{_seconds(low)}-{_seconds(high)} s"
        text = f"fleet: {shares}; answers {when} after start; seed {self.seed}"
        if self.overrides:
            named = ", ".join(f"{thing} {_rule(rule)}" for thing, rule in sorted(self.overrides.items()))
            text += f"; overrides: {named}"
        return text


# ------------------------------------------------------------------ parsing
def _fraction(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"fleet: {name}={text} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ValueError(f"fleet: {name}={text} must be a fraction from 0 to 1")
    return value


def _duration(where: str, text: str, unit: str | None) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"fleet: {where} {text!r} is not a duration such as 500ms, 2s or 1.5m")
    chosen = match.group("unit") or unit
    if chosen is None:
        raise ValueError(f"fleet: {where} {text!r} needs a unit (ms, s or m)")
    return float(match.group("number")) * _UNITS[chosen]


def _delay_range(where: str, text: str) -> tuple[float, float]:
    low_text, dots, high_text = text.partition("..")
    if not dots:
        value = _duration(where, text, None)
        return value, value
    last = _DURATION.fullmatch(high_text.strip())
    # "2..20s": the last end's unit is also the first's.
    unit = last.group("unit") if last is not None else None
    low, high = _duration(where, low_text, unit), _duration(where, high_text, None)
    if low > high:
        raise ValueError(f"fleet: {where} {text!r} ends before it starts")
    if math.isinf(high):
        raise ValueError(f"fleet: {where} {text!r} is not finite")
    return low, high


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"fleet: seed={text} is not an integer") from None


def _override(thing: str, text: str) -> _Override:
    if not isinstance(thing, str) or not thing:
        raise ValueError(f"fleet: override {thing!r} does not name a thing")
    outcome, at, delay = (part.strip() for part in str(text).partition("@"))
    if outcome not in OUTCOMES:
        raise ValueError(f"fleet: override {thing}={text!r}: the outcome must be one of {', '.join(OUTCOMES)}")
    return _Override(outcome, _delay_range(f"override {thing}", delay) if at else None)


# ------------------------------------------------------------------ drawing
def _uniforms(seed: int, job_id: str, thing_name: str) -> tuple[float, float]:
    """Two numbers in [0, 1) that depend only on (seed, job id, thing name)."""
    # A unit separator keeps ("a", "bc") and ("ab", "c") apart.
    digest = hashlib.sha256(f"{seed}\x1f{job_id}\x1f{thing_name}".encode()).digest()
    scale = float(2**64)
    return int.from_bytes(digest[:8], "big") / scale, int.from_bytes(digest[8:16], "big") / scale


def _rule(rule: _Override) -> str:
    if rule.delay is None:
        return rule.outcome
    low, high = rule.delay
    return f"{rule.outcome}@{_seconds(low)}s" if low == high else f"{rule.outcome}@{_seconds(low)}..{_seconds(high)}s"


def _number(value: float) -> str:
    return f"{round(value, 2):g}"


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}"


DEFAULT_FLEET = FleetPolicy.parse("succeed=1,delay=1..10s,seed=0")
"""The local engine's fleet when the user names none: every device succeeds within 1 to 10 seconds."""
