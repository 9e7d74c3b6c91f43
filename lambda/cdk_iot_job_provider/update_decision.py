"""Whether an Update changes nothing, updates the job in place, replaces it or is refused.

Pure, and importing nothing beyond the schema module: the provider decides with
it at deploy time, and the local engine's ``plan`` decides the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import schema

__all__ = ["UpdateDecision", "decide_update"]


@dataclass(frozen=True)
class UpdateDecision:
    """What an Update does to the job, by the provider's rules.

    ``action`` is ``none`` (nothing to do), ``update`` (in place),
    ``replace`` (a new job; ``new_job_id`` is the fixed id, or ``None`` for a
    generated one) or ``refuse`` (a replacement is needed but ``JobId`` is
    fixed and unchanged). ``changed`` names the properties that differ.
    """

    action: str
    reason: str
    changed: tuple[str, ...] = ()
    new_job_id: str | None = None


def decide_update(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    physical_id: str,
    *,
    old_job_id: Any = None,
    job_fingerprint: str | None = None,
) -> UpdateDecision:
    """Decide between no-op, in-place update, replacement and refusal.

    Pure: the provider calls it with the job's recorded fingerprint, and
    ``cdk-iot-job-local plan`` calls it with the previous properties.

    Parameters
    ----------
    new, old
        Parsed new and previous properties (``old`` is ``None`` when absent or
        invalid, as in a rollback of a failed update).
    physical_id
        The job's current id.
    old_job_id
        The raw ``JobId`` of the previous properties, if any.
    job_fingerprint
        The create-only fingerprint recorded on the job; by default the one of
        ``old``.
    """
    wanted_id = new.get("JobId")
    if wanted_id is not None and wanted_id != physical_id:
        return UpdateDecision("replace", f"JobId changed from {physical_id} to {wanted_id}", ("JobId",), wanted_id)
    if wanted_id is None and old_job_id is not None and old_job_id == physical_id:
        return UpdateDecision("replace", "JobId removed: the provider generates a new one", ("JobId",))
    actual = job_fingerprint
    if actual is None and old is not None:
        actual = schema.create_only_fingerprint(old)
    if actual != schema.create_only_fingerprint(new):
        changed = _changed(new, old, schema.CREATE_ONLY_PROPERTIES - {"JobId"})
        # No property differs from the previous ones, yet the job was created with others
        # (its recorded fingerprint differs): say so rather than name nothing.
        what = (
            f"create-only {', '.join(changed)}" if changed else "the job's create-only properties (as recorded on it)"
        )
        if wanted_id is not None:
            return UpdateDecision(
                "refuse",
                f"{what} cannot change in place, and JobId '{physical_id}' is fixed: "
                "give the job a new JobId (or remove JobId to let the provider generate one) to replace it",
                changed,
            )
        return UpdateDecision("replace", f"{what} changed", changed)
    changed = _changed(new, old, frozenset(schema.UPDATABLE_PROPERTIES))
    if old is not None and not changed:
        return UpdateDecision("none", "no property of the job changed")
    return UpdateDecision("update", "updatable " + (", ".join(changed) or "properties") + " changed", changed)


def _changed(new: Mapping[str, Any], old: Mapping[str, Any] | None, names: frozenset[str]) -> tuple[str, ...]:
    if old is None:
        return tuple(sorted(name for name in names if name in new))
    return tuple(sorted(name for name in names if new.get(name) != old.get(name)))
