"""Which jobs belong to which resource: generated ids and ownership tags.

Every job the provider creates carries tags naming the stack, the logical id,
the request that created it, and a fingerprint of its create-only properties.
The provider only ever updates, cancels or deletes a job whose tags name the
same stack and logical id as the event in hand.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .schema import OWNERSHIP_TAG_PREFIX, is_valid

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "FINGERPRINT_TAG",
    "REPLACES_TAG",
    "REQUEST_TAG",
    "Owner",
    "generated_job_id",
    "is_job_id",
    "user_tags",
]

STACK_TAG = f"{OWNERSHIP_TAG_PREFIX}stack-id"
LOGICAL_ID_TAG = f"{OWNERSHIP_TAG_PREFIX}logical-id"
REQUEST_TAG = f"{OWNERSHIP_TAG_PREFIX}request-id"
FINGERPRINT_TAG = f"{OWNERSHIP_TAG_PREFIX}create-fingerprint"
# On a replacement: the job it replaced, so a rollback can return to that job.
REPLACES_TAG = f"{OWNERSHIP_TAG_PREFIX}replaces"

_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")


@dataclass(frozen=True)
class Owner:
    """The CloudFormation resource, and the request, acting on a job."""

    stack_id: str
    logical_id: str
    request_id: str

    def tags(self, fingerprint: str, replaces: str | None = None) -> dict[str, str]:
        """Ownership tags for a job this request creates (``replaces``: the job it replaces)."""
        tags = {
            STACK_TAG: self.stack_id,
            LOGICAL_ID_TAG: self.logical_id,
            REQUEST_TAG: self.request_id,
            FINGERPRINT_TAG: fingerprint,
        }
        if replaces:
            tags[REPLACES_TAG] = replaces
        return tags

    def owns(self, tags: Mapping[str, str]) -> bool:
        """Whether a job with these tags was created for this resource."""
        return tags.get(STACK_TAG) == self.stack_id and tags.get(LOGICAL_ID_TAG) == self.logical_id

    def created(self, tags: Mapping[str, str]) -> bool:
        """Whether a job with these tags was created by this very request."""
        return self.owns(tags) and tags.get(REQUEST_TAG) == self.request_id


def _generated_prefix(owner: Owner) -> str:
    stack_name = owner.stack_id.split("/")[1] if owner.stack_id.count("/") >= 2 else owner.stack_id
    stack_part = _UNSAFE.sub("", stack_name)[:20]
    logical_part = _UNSAFE.sub("", owner.logical_id)[:30]
    return "".join(f"{part}-" for part in (stack_part, logical_part) if part)


def generated_job_id(owner: Owner) -> str:
    """A job id for a resource without ``JobId``, like CloudFormation's names.

    ``<stack>-<logical id>-<hash>``, at most 64 characters of ``[a-zA-Z0-9_-]``.
    The hash covers the request, so a redelivered event maps to the same job
    and a replacement gets a new one.
    """
    digest = hashlib.sha256(f"{owner.stack_id}\n{owner.logical_id}\n{owner.request_id}".encode()).hexdigest()[:12]
    return _generated_prefix(owner) + digest


def is_job_id(value: object) -> bool:
    """Whether ``value`` could name an IoT job at all."""
    return is_valid("JobId", value)


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags that are not the provider's own."""
    return {key: value for key, value in tags.items() if not key.startswith(OWNERSHIP_TAG_PREFIX)}
