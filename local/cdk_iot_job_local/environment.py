"""The account and region a stack is deployed to, as the cloud assembly names them.

A CDK stack with an explicit ``env`` is synthesized for one account and region
(``aws://111122223333/eu-west-1`` in ``manifest.json``); the local engine
deploys it there: pseudo parameters, the ARNs the engine makes, the moto
account and region resources land in, and the provider process's
``AWS_REGION`` and credentials all agree with the template.

An environment-agnostic stack (``aws://unknown-account/unknown-region``) gets
:data:`DEFAULT_ACCOUNT` and :data:`DEFAULT_REGION`, moto's own defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_PARTITION",
    "DEFAULT_REGION",
    "Environment",
]

#: The account of an environment-agnostic stack: moto's default account.
DEFAULT_ACCOUNT = "123456789012"
#: The region of an environment-agnostic stack.
DEFAULT_REGION = "us-east-1"
#: The partition of :data:`DEFAULT_REGION`.
DEFAULT_PARTITION = "aws"

_ACCOUNT = re.compile(r"^\d{12}\Z")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+\Z")
# What the CDK writes for an account or region it leaves to deploy time.
_UNKNOWN = ("unknown-account", "unknown-region")
# Region prefixes of the partitions other than "aws".
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"), ("us-isob-", "aws-iso-b"))
_URL_SUFFIXES = {"aws-cn": "amazonaws.com.cn", "aws-iso": "c2s.ic.gov", "aws-iso-b": "sc2s.sgov.gov"}


@dataclass(frozen=True)
class Environment:
    """One account and region.

    Parameters
    ----------
    account
        A 12-digit account id.
    region
        A region name such as ``eu-west-1``.

    Raises
    ------
    ValueError
        When the account is not 12 digits or the region is not a region name.
    """

    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION

    def __post_init__(self) -> None:
        if not _ACCOUNT.match(self.account):
            raise ValueError(f"account {self.account!r} must be 12 digits")
        if not _REGION.match(self.region):
            raise ValueError(f"region {self.region!r} is not a region name (like eu-west-1)")

    @classmethod
    def from_cdk(cls, text: str | None) -> Environment:
        """The environment of a cloud assembly artifact (``aws://<account>/<region>``).

        ``unknown-account`` and ``unknown-region`` (an environment-agnostic
        stack) and a missing environment give the defaults.

        Examples
        --------
        >>> Environment.from_cdk("aws://111122223333/eu-west-1")
        Environment(account='111122223333', region='eu-west-1')
        >>> Environment.from_cdk("aws://unknown-account/unknown-region")
        Environment(account='123456789012', region='us-east-1')
        """
        if not text:
            return cls()
        match = re.fullmatch(r"aws://([^/]+)/([^/]+)", text)
        if match is None:
            raise ValueError(f"environment {text!r} is not aws://<account>/<region>")
        account, region = match.groups()
        return cls(
            account=DEFAULT_ACCOUNT if account == _UNKNOWN[0] else account,
            region=DEFAULT_REGION if region == _UNKNOWN[1] else region,
        )

    @property
    def partition(self) -> str:
        """The region's partition (``aws``, ``aws-cn``, ...)."""
        for prefix, partition in _PARTITIONS:
            if self.region.startswith(prefix):
                return partition
        return DEFAULT_PARTITION

    @property
    def url_suffix(self) -> str:
        """``AWS::URLSuffix``: the partition's domain."""
        return _URL_SUFFIXES.get(self.partition, "amazonaws.com")

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        """An ARN of ``service`` in this environment; ``region``/``account`` override (``""`` for global ones)."""
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def __str__(self) -> str:
        return f"aws://{self.account}/{self.region}"


#: Where an environment-agnostic stack is deployed.
DEFAULT_ENVIRONMENT = Environment()
