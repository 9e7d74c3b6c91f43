"""``IotJobChecks``: the cdk-nag pack of IoT Jobs rules (docs/nag-rules.md).

Used like cdk-nag's own packs::

    Validations.of(app).add_plugins(IotJobChecks(app))

It checks ``Custom::IotJob`` (``IotJob``) and ``AWS::IoT::Job``
(``aws_iot.CfnJob``) resources; findings go to the validation report as
``IotJob-R<n>`` and are acknowledged with
``Validations.of(scope).acknowledge(Acknowledgment(id="IotJob-R3", reason=...))``.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import CfnResource, Stack
from cdk_nag import IApplyRule, NagMessageLevel, NagPack, NagRuleCompliance
from constructs import IConstruct

from .abort_criteria import ABORT_CRITERIA
from .continuous_end import CONTINUOUS_END
from .document_urls import DOCUMENT_URLS
from .gate_abort import GATE_ABORT
from .gate_timeout import GATE_TIMEOUT
from .in_progress_timeout import IN_PROGRESS_TIMEOUT
from .job_properties import JobProperties, read_job, resource_types_of
from .presigned_url_expiry import PRESIGNED_URL_EXPIRY
from .rollout_rate import ROLLOUT_RATE
from .rule import Level, Rule, Verdict
from .timed_out_retry import TIMED_OUT_RETRY

__all__ = ["PACK_NAME", "RULES", "IotJobChecks"]

#: The prefix of every rule id, and the plugin's name in the validation report.
PACK_NAME = "IotJob"

#: Every rule, in id order.
RULES: tuple[Rule, ...] = (
    ROLLOUT_RATE,
    ABORT_CRITERIA,
    IN_PROGRESS_TIMEOUT,
    DOCUMENT_URLS,
    TIMED_OUT_RETRY,
    PRESIGNED_URL_EXPIRY,
    CONTINUOUS_END,
    GATE_ABORT,
    GATE_TIMEOUT,
)

_LEVELS = {Level.ERROR: NagMessageLevel.ERROR, Level.WARN: NagMessageLevel.WARN, Level.INFO: NagMessageLevel.INFO}
_COMPLIANCE = {
    Verdict.COMPLIANT: NagRuleCompliance.COMPLIANT,
    Verdict.NON_COMPLIANT: NagRuleCompliance.NON_COMPLIANT,
    Verdict.NOT_APPLICABLE: NagRuleCompliance.NOT_APPLICABLE,
}


class IotJobChecks(NagPack):
    """IoT Jobs rules for ``Custom::IotJob`` and ``AWS::IoT::Job`` resources, as a cdk-nag 3 pack.

    Parameters
    ----------
    scope
        The app (or any scope), as for cdk-nag's packs; needed only with
        ``write_suppressions_to_cloud_formation``. Default: none.
    verbose
        Add each rule's explanation and fix to its findings. Default: ``False``.
    write_suppressions_to_cloud_formation
        Also write acknowledgements into the resources' ``Metadata``
        (cdk-nag 2's ``cdk_nag.rules_to_suppress``). Default: ``False``.

    Examples
    --------
    >>> app = App()
    >>> Validations.of(app).add_plugins(IotJobChecks(app))
    """

    def __init__(
        self,
        scope: IConstruct | None = None,
        *,
        verbose: bool | None = None,
        write_suppressions_to_cloud_formation: bool | None = None,
    ) -> None:
        super().__init__(
            scope, verbose=verbose, write_suppressions_to_cloud_formation=write_suppressions_to_cloud_formation
        )
        self._pack_name = PACK_NAME
        # Logical id -> resource type, per stack: which Fn::GetAtt targets are thing groups.
        self._resource_types: dict[str, dict[str, str]] = {}

    @property
    def name(self) -> str:
        """The plugin's name in the validation report."""
        return PACK_NAME

    def _check_resource(self, node: CfnResource) -> None:
        # One jsii call for resources that are no job; a job's properties are read once for all rules.
        if node.cfn_resource_type not in ("Custom::IotJob", "AWS::IoT::Job"):
            return
        stack = Stack.of(node)
        key = stack.node.path
        if key not in self._resource_types:
            self._resource_types[key] = resource_types_of(stack)
        job = read_job(node, self._resource_types[key])
        if job is None:
            return
        for rule in RULES:
            if job.resource_type in rule.applies_to:
                applied = _AppliedRule(rule, node, _COMPLIANCE[_verdict(rule, job)])
                self._apply_rule(cast(IApplyRule, applied))  # jsii.implements: typed by protocol, read-only here


def _verdict(rule: Rule, job: JobProperties) -> Verdict:
    try:
        return rule.check(job)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        # A malformed value (a missing required member, a wrong type) is the schema's or
        # CloudFormation's to report; a rule that cannot read it does not guess.
        return Verdict.NOT_APPLICABLE


@jsii.implements(IApplyRule)
class _AppliedRule:
    """One rule applied to one resource, with its verdict already known (``IApplyRule``)."""

    def __init__(self, rule: Rule, node: CfnResource, compliance: NagRuleCompliance) -> None:
        self._rule = rule
        self._node = node
        self._compliance = compliance

    @property
    def rule_suffix_override(self) -> str:
        return self._rule.suffix

    @property
    def info(self) -> str:
        return self._rule.info

    @property
    def explanation(self) -> str:
        return self._rule.explanation

    @property
    def level(self) -> NagMessageLevel:
        return _LEVELS[self._rule.level]

    @property
    def node(self) -> CfnResource:
        return self._node

    def rule(self, node: CfnResource) -> NagRuleCompliance:
        return self._compliance
