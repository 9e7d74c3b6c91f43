"""``rollout_gate``: the RolloutGate property, the gated job's ServiceTimeout and the gate's grants.

The stacks are synthesized once per module; validation cases build one job in
a fresh stack and need no synth.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import itertools
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aws_cdk import App, CfnParameter, CfnResource, Duration, Stack, Tags
from aws_cdk import aws_iot as iot
from aws_cdk.assertions import Template

from cdk_iot_job import (
    GateFailureAction,
    InvalidPropertyError,
    IotJob,
    IotJobProviderStack,
    JobEndBehavior,
    JobExecutionFailureType,
    JobTarget,
    RolloutGate,
)
from cdk_iot_job.config import to_cfn
from cdk_iot_job.provider_template import provider_template
from cdk_iot_job_provider import schema

THING_ARN = "arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"
GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sensors"
CUSTOM_TYPE = "Custom::IotJob"
DOCUMENT = {"operation": "firmware-update"}
INVOKE = "lambda:InvokeFunction"
DESCRIBE_STACKS = "cloudformation:DescribeStacks"
LIST_MEMBERS = "iot:ListThingsInThingGroup"
STACK_PREFIX = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
IOT_PREFIX = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}"

FULL_GATE = RolloutGate(
    min_succeeded_percent=95,
    max_failed_percent=2.5,
    failure_types=[JobExecutionFailureType.FAILED, "TIMED_OUT"],
    bake_time=Duration.minutes(10),
    timeout=Duration.minutes(45),
    expected_targets=250,
    on_failure=GateFailureAction.DELETE,
)


# ---------------------------------------------------------------------------
# The stacks under test
# ---------------------------------------------------------------------------


@dataclass
class Synthesized:
    stack: Stack
    template: Template
    jobs: dict[str, IotJob]

    def logical_id(self, name: str) -> str:
        return self.stack.get_logical_id(cast(CfnResource, self.jobs[name].resource.node.default_child))

    def job(self, name: str) -> dict[str, Any]:
        return dict(self.template.find_resources(CUSTOM_TYPE)[self.logical_id(name)])

    def resources(self, kind: str) -> dict[str, Any]:
        return dict(self.template.find_resources(kind))

    def function_id(self) -> str:
        [function_id] = self.resources("AWS::Lambda::Function")
        return function_id

    def policies(self) -> dict[str, Any]:
        return self.resources("AWS::IAM::Policy")

    def gate_policy_id(self) -> str:
        [policy_id] = [name for name in self.policies() if name.startswith("CdkIotJobProviderGatePolicy")]
        return policy_id

    def statements(self, policy_id: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = self.policies()[policy_id]["Properties"]["PolicyDocument"]["Statement"]
        return statements

    def granted(self, action: str) -> list[tuple[str, Any]]:
        """(policy, resource) for every resource of every statement granting ``action``."""
        return [
            (policy_id, resource)
            for policy_id in self.policies()
            for statement in self.statements(policy_id)
            if action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def arn_text(resource: Any) -> str:
    """A literal ARN, or a Fn::Join of literals and pseudo parameters as ``${AWS::X}`` text."""
    if isinstance(resource, str):
        return resource
    if set(resource) == {"Fn::Join"}:
        separator, parts = resource["Fn::Join"]
        return str(separator).join(arn_text(part) for part in parts)
    if set(resource) == {"Ref"}:
        return f"${{{resource['Ref']}}}"
    return repr(resource)


def build_gated(app: App) -> tuple[Stack, dict[str, IotJob]]:
    """Two gated jobs (group targets in every form) and more gates for ServiceTimeout, beside an ungated job."""
    stack = Stack(app, "Gated")
    fleet = iot.CfnThingGroup(stack, "Fleet", thing_group_name="sensors")
    device = iot.CfnThing(stack, "Device", thing_name="sensor-002")
    jobs = {
        "Full": IotJob(
            stack,
            "Full",
            targets=[fleet, GROUP_ARN, THING_ARN, device, JobTarget.thing_group("gateways"), JobTarget.thing("t-1")],
            document=DOCUMENT,
            rollout_gate=FULL_GATE,
        ),
        "Defaults": IotJob(
            stack,
            "Defaults",
            targets=[GROUP_ARN],
            document=DOCUMENT,
            rollout_gate=RolloutGate(min_succeeded_percent=90),
        ),
        "Short": IotJob(
            stack,
            "Short",
            targets=[THING_ARN],
            document=DOCUMENT,
            rollout_gate=RolloutGate(min_succeeded_percent=100, timeout=Duration.minutes(1)),
        ),
        "Longest": IotJob(
            stack,
            "Longest",
            targets=[THING_ARN],
            document=DOCUMENT,
            rollout_gate=RolloutGate(min_succeeded_percent=100, timeout=Duration.minutes(55)),
        ),
        "Ungated": IotJob(stack, "Ungated", targets=[fleet], document=DOCUMENT),
    }
    return stack, jobs


def build_ungated(app: App) -> tuple[Stack, dict[str, IotJob]]:
    stack = Stack(app, "Ungated")
    return stack, {"Reboot": IotJob(stack, "Reboot", targets=[GROUP_ARN], document=DOCUMENT)}


def build_deploy_time(app: App) -> tuple[Stack, dict[str, IotJob]]:
    """Targets and the gate's timeout known only at deploy time (parameters)."""
    stack = Stack(app, "DeployTime")
    targets = CfnParameter(stack, "Targets", type="CommaDelimitedList")
    minutes = CfnParameter(stack, "GateMinutes", type="Number")
    jobs = {
        "FromParameters": IotJob(
            stack,
            "FromParameters",
            targets=targets.value_as_list,
            document=DOCUMENT,
            rollout_gate=RolloutGate(min_succeeded_percent=80, timeout=Duration.minutes(minutes.value_as_number)),
        )
    }
    return stack, jobs


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    # Every stack is built before the first synth: the tree cannot change afterwards.
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    built = {"Gated": build_gated(app), "Ungated": build_ungated(app), "DeployTime": build_deploy_time(app)}
    return {name: Synthesized(stack, Template.from_stack(stack), jobs) for name, (stack, jobs) in built.items()}


@pytest.fixture(scope="module")
def gated(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["Gated"]


@pytest.fixture(scope="module")
def ungated(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["Ungated"]


@pytest.fixture(scope="module")
def deploy_time(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["DeployTime"]


@pytest.fixture(scope="module")
def exported() -> dict[str, Any]:
    """The exported provider as ``make provider-template`` writes it."""
    return provider_template()


_stack_ids = itertools.count()


def fresh_stack() -> Stack:
    return Stack(App(), f"Case{next(_stack_ids)}")


def gate_error(**gate: Any) -> str:
    with pytest.raises(InvalidPropertyError) as caught:
        props: dict[str, Any] = {"min_succeeded_percent": 95, **gate}
        IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document=DOCUMENT, rollout_gate=RolloutGate(**props))
    return str(caught.value)


# ---------------------------------------------------------------------------
# The property
# ---------------------------------------------------------------------------


def test_every_field_renders_under_its_rollout_gate_name(gated: Synthesized) -> None:
    assert gated.job("Full")["Properties"]["RolloutGate"] == {
        "MinSucceededPercent": 95,
        "MaxFailedPercent": 2.5,
        "FailureTypes": ["FAILED", "TIMED_OUT"],
        "BakeTimeInMinutes": 10,
        "TimeoutInMinutes": 45,
        "ExpectedTargets": 250,
        "OnFailure": "DELETE",
    }


def test_a_gate_with_only_its_threshold_leaves_the_defaults_to_the_provider(gated: Synthesized) -> None:
    assert gated.job("Defaults")["Properties"]["RolloutGate"] == {"MinSucceededPercent": 90}


def test_an_ungated_job_has_no_rollout_gate_property(gated: Synthesized) -> None:
    assert "RolloutGate" not in gated.job("Ungated")["Properties"]


def test_to_cfn_renders_the_strings_a_user_may_give() -> None:
    gate = RolloutGate(min_succeeded_percent=99.5, failure_types=["REJECTED"], on_failure="CANCEL_FORCE")
    assert to_cfn(gate) == {"MinSucceededPercent": 99.5, "FailureTypes": ["REJECTED"], "OnFailure": "CANCEL_FORCE"}


def test_the_rendered_gate_is_what_the_provider_parses(gated: Synthesized) -> None:
    # As CloudFormation delivers it: every scalar a string.
    delivered = {
        name: [str(item) for item in value] if isinstance(value, list) else str(value)
        for name, value in gated.job("Full")["Properties"]["RolloutGate"].items()
    }
    properties = {"Targets": [THING_ARN], "Document": "{}", "RolloutGate": delivered}
    assert schema.parse_properties(properties)["RolloutGate"] == {
        "MinSucceededPercent": 95.0,
        "MaxFailedPercent": 2.5,
        "FailureTypes": ["FAILED", "TIMED_OUT"],
        "BakeTimeInMinutes": 10,
        "TimeoutInMinutes": 45,
        "ExpectedTargets": 250,
        "OnFailure": "DELETE",
    }


# ---------------------------------------------------------------------------
# ServiceTimeout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "seconds"),
    [
        ("Ungated", 600),  # no gate: the provider's usual 10 minutes
        ("Short", 600),  # a 1-minute gate plus the 5-minute margin is less than that
        ("Defaults", 30 * 60 + 300),  # the default 30-minute gate
        ("Full", 45 * 60 + 300),
        ("Longest", 3600),  # 55 minutes plus the margin: CloudFormation's maximum
    ],
)
def test_service_timeout_is_the_gate_timeout_plus_the_margin_and_never_below_ten_minutes(
    gated: Synthesized, job: str, seconds: int
) -> None:
    assert int(gated.job(job)["Properties"]["ServiceTimeout"]) == seconds


def test_a_gate_timeout_from_a_parameter_gets_cloudformations_maximum_wait(deploy_time: Synthesized) -> None:
    properties = deploy_time.job("FromParameters")["Properties"]
    assert properties["RolloutGate"]["TimeoutInMinutes"] == {"Ref": "GateMinutes"}
    assert int(properties["ServiceTimeout"]) == schema.MAX_SERVICE_TIMEOUT_SECONDS


# ---------------------------------------------------------------------------
# Rejected while the job is built
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [56, 58, 120])
def test_a_gate_timeout_that_does_not_fit_cloudformations_wait_is_rejected_naming_keyword_and_limit(
    minutes: int,
) -> None:
    assert gate_error(timeout=Duration.minutes(minutes)) == (
        f"rollout_gate.timeout (RolloutGate.TimeoutInMinutes) {minutes} min does not fit CloudFormation's 3600 s "
        "wait for a custom resource with the provider's 5 min margin: at most 55 min"
    )


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (
            {"bake_time": Duration.minutes(30)},
            "rollout_gate.bake_time (RolloutGate.BakeTimeInMinutes) 30 must be less than",
        ),
        (
            {"bake_time": Duration.minutes(10), "timeout": Duration.minutes(10)},
            "rollout_gate.bake_time (RolloutGate.BakeTimeInMinutes) 10 must be less than "
            "rollout_gate.timeout (RolloutGate.TimeoutInMinutes) 10",
        ),
    ],
    ids=["bake-equals-default-timeout", "bake-equals-timeout"],
)
def test_a_bake_time_not_shorter_than_the_timeout_is_rejected(gate: dict[str, Any], expected: str) -> None:
    assert expected in gate_error(**gate)


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (
            {"bake_time": Duration.seconds(90)},
            "rollout_gate.bake_time (RolloutGate.BakeTimeInMinutes) 1 minute 30 seconds must be a whole number of "
            "minutes",
        ),
        (
            {"timeout": Duration.seconds(150)},
            "rollout_gate.timeout (RolloutGate.TimeoutInMinutes) 2 minutes 30 seconds must be a whole number",
        ),
    ],
    ids=["bake-time", "timeout"],
)
def test_a_duration_that_is_not_whole_minutes_is_rejected_naming_the_keyword(
    gate: dict[str, Any], expected: str
) -> None:
    assert expected in gate_error(**gate)


def test_minutes_given_as_a_number_are_refused_asking_for_a_duration() -> None:
    assert (
        gate_error(bake_time=10) == "rollout_gate.bake_time (RolloutGate.BakeTimeInMinutes) must be a Duration, not int"
    )


def test_a_duration_token_must_be_given_in_minutes() -> None:
    stack = fresh_stack()
    seconds = CfnParameter(stack, "GateSeconds", type="Number").value_as_number
    with pytest.raises(
        InvalidPropertyError, match=r"^rollout_gate.timeout \(RolloutGate.TimeoutInMinutes\) from a token"
    ):
        RolloutGate(min_succeeded_percent=95, timeout=Duration.seconds(seconds))


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (
            {"min_succeeded_percent": 101},
            "rollout_gate.min_succeeded_percent (RolloutGate.MinSucceededPercent) 101 must be at most 100",
        ),
        (
            {"min_succeeded_percent": 99.999},
            "rollout_gate.min_succeeded_percent (RolloutGate.MinSucceededPercent) 99.999 must have at most 2 digit",
        ),
        (
            {"max_failed_percent": -1},
            "rollout_gate.max_failed_percent (RolloutGate.MaxFailedPercent) -1 must be at least 0",
        ),
        ({"expected_targets": 0}, "rollout_gate.expected_targets (RolloutGate.ExpectedTargets) 0 must be at least 1"),
        (
            {"failure_types": ["ALL"]},
            "rollout_gate.failure_types[0] (RolloutGate.FailureTypes[0]) 'ALL' "
            "must be one of FAILED, REJECTED, TIMED_OUT",
        ),
        (
            {"failure_types": ["FAILED", "FAILED"]},
            "rollout_gate.failure_types (RolloutGate.FailureTypes) must not repeat a failure type",
        ),
        (
            {"on_failure": "ROLLBACK"},
            "rollout_gate.on_failure (RolloutGate.OnFailure) 'ROLLBACK' must be one of CANCEL, CANCEL_FORCE, DELETE",
        ),
    ],
    ids=["min-101", "min-3-decimals", "max-negative", "no-targets", "all", "repeated", "unknown-action"],
)
def test_values_breaking_the_schema_are_rejected_naming_the_property(gate: dict[str, Any], expected: str) -> None:
    assert expected in gate_error(**gate)


@pytest.mark.parametrize("on_failure", [JobEndBehavior.CANCEL, 1], ids=["another-enum", "int"])
def test_on_failure_must_be_a_gate_failure_action_or_its_string(on_failure: Any) -> None:
    assert gate_error(on_failure=on_failure).startswith(
        f"rollout_gate.on_failure (RolloutGate.OnFailure) {on_failure!r} must be a GateFailureAction"
    )


def test_the_longest_gate_that_fits_is_accepted() -> None:
    gate = RolloutGate(min_succeeded_percent=100, bake_time=Duration.minutes(54), timeout=Duration.minutes(55))
    IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document=DOCUMENT, rollout_gate=gate)


def test_a_gated_job_has_room_for_one_tag_fewer() -> None:
    tags = {f"k{index}": "v" for index in range(schema.MAX_USER_TAGS)}
    IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document=DOCUMENT, tags=tags)  # fits without a gate

    with pytest.raises(
        InvalidPropertyError, match=r"at most 44 item\(s\) on a job with a rollout_gate \(RolloutGate\) \(got 45\)"
    ):
        IotJob(
            fresh_stack(),
            "Job",
            targets=[GROUP_ARN],
            document=DOCUMENT,
            tags=tags,
            rollout_gate=RolloutGate(min_succeeded_percent=95),
        )


def test_tags_of_filling_a_gated_jobs_last_tag_is_rejected_at_synth() -> None:
    # GIVEN a gated job and an ungated one, each given one tag fewer than IoT leaves for user tags
    app = App()
    stack = Stack(app, "TaggedLater")
    tags = {f"k{index}": "v" for index in range(schema.MAX_USER_TAGS - 1)}
    gate = RolloutGate(min_succeeded_percent=95)
    IotJob(stack, "Gated", targets=[GROUP_ARN], document=DOCUMENT, tags=tags, rollout_gate=gate)
    IotJob(stack, "Ungated", targets=[GROUP_ARN], document=DOCUMENT, tags=tags)

    # WHEN Tags.of adds one more to both
    Tags.of(stack).add("team", "fw")

    # THEN synth fails for the gated job only
    with pytest.raises(Exception, match=r"TaggedLater/Gated: Tags must have at most 44") as caught:
        app.synth()
    assert "TaggedLater/Ungated" not in str(caught.value)


# ---------------------------------------------------------------------------
# The gate's grants
# ---------------------------------------------------------------------------


def test_the_self_invoke_grant_names_the_provider_function_in_a_policy_of_its_own(gated: Synthesized) -> None:
    assert gated.granted(INVOKE) == [(gated.gate_policy_id(), {"Fn::GetAtt": [gated.function_id(), "Arn"]})]


def test_the_gate_policy_is_attached_to_the_provider_role_not_its_default_policy(gated: Synthesized) -> None:
    policy = gated.policies()[gated.gate_policy_id()]["Properties"]
    role = gated.resources("AWS::Lambda::Function")[gated.function_id()]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert policy["Roles"] == [{"Ref": role}]
    assert "DefaultPolicy" not in gated.gate_policy_id()


def test_a_stack_without_gates_has_no_gate_grants(ungated: Synthesized) -> None:
    assert [name for name in ungated.policies() if "GatePolicy" in name] == []
    for action in (INVOKE, DESCRIBE_STACKS, LIST_MEMBERS):
        assert ungated.granted(action) == [], action
    assert ungated.jobs["Reboot"].provider.gate_policy is None


def test_gated_jobs_depend_on_the_gate_policy_and_ungated_ones_do_not(gated: Synthesized) -> None:
    policy_id = gated.gate_policy_id()
    for name in ("Full", "Defaults", "Short", "Longest"):
        assert policy_id in gated.job(name).get("DependsOn", []), name
    assert policy_id not in gated.job("Ungated").get("DependsOn", [])


def test_two_gated_jobs_and_an_ungated_one_synthesize_without_a_dependency_cycle(gated: Synthesized) -> None:
    # Template.from_stack (the fixture) refuses a template with a cycle. The gate policy names the
    # function, so the function must not wait for it, as it waits for the role's default policy.
    function = gated.resources("AWS::Lambda::Function")[gated.function_id()]
    assert gated.gate_policy_id() not in function.get("DependsOn", [])
    assert any("DefaultPolicy" in dependency for dependency in function["DependsOn"])


def test_describe_stacks_is_granted_on_this_stack_only(gated: Synthesized) -> None:
    assert gated.granted(DESCRIBE_STACKS) == [(gated.gate_policy_id(), {"Ref": "AWS::StackId"})]


def test_group_members_are_listable_for_the_gated_jobs_group_targets_only(gated: Synthesized) -> None:
    fleet_id = gated.stack.get_logical_id(cast(CfnResource, gated.stack.node.find_child("Fleet")))
    resources = [resource for _, resource in gated.granted(LIST_MEMBERS)]
    # The group construct, the literal ARN and JobTarget.thing_group; no thing, and the
    # ungated job's fleet target adds nothing.
    assert resources == [{"Fn::GetAtt": [fleet_id, "Arn"]}, GROUP_ARN, {"Fn::Join": resources[2]["Fn::Join"]}]
    assert arn_text(resources[2]) == f"{IOT_PREFIX}:thinggroup/gateways"
    assert {policy for policy, _ in gated.granted(LIST_MEMBERS)} == {gated.gate_policy_id()}


def test_targets_known_only_at_deploy_time_may_list_every_thing_group(deploy_time: Synthesized) -> None:
    assert [arn_text(resource) for _, resource in deploy_time.granted(LIST_MEMBERS)] == [f"{IOT_PREFIX}:thinggroup/*"]


def test_a_wildcard_in_a_literal_group_target_is_refused() -> None:
    # No group name holds '*' ([a-zA-Z0-9:_-]+), so the gate's grant could never become a wildcard.
    wildcard = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sens*"
    with pytest.raises(InvalidPropertyError, match=r"targets\[0\] \(Targets\[0\]\) .*must match"):
        IotJob(
            fresh_stack(),
            "Job",
            targets=[wildcard],
            document=DOCUMENT,
            rollout_gate=RolloutGate(min_succeeded_percent=95),
        )


# ---------------------------------------------------------------------------
# The exported provider
# ---------------------------------------------------------------------------


def test_the_exported_provider_template_always_carries_the_gate_grants(exported: dict[str, Any]) -> None:
    resources = exported["Resources"]
    [function_id] = [name for name, resource in resources.items() if resource["Type"] == "AWS::Lambda::Function"]
    [policy] = [
        resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Policy" and name.startswith("CdkIotJobProviderGatePolicy")
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # Unconditional (no Fn::If): a template's gated jobs need no grant parameter.
    assert [statement["Action"] for statement in statements] == [INVOKE, DESCRIBE_STACKS, LIST_MEMBERS]
    invoke, describe, members = statements
    assert invoke["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert arn_text(describe["Resource"]) == f"{STACK_PREFIX}:stack/*/*"
    assert arn_text(members["Resource"]) == f"{IOT_PREFIX}:thinggroup/*"


def test_the_exported_provider_stack_carries_the_gate_grants_without_any_job() -> None:
    stack = IotJobProviderStack(App(), "Exported")
    assert stack.provider.gate_policy is not None
    statements = stack.resolve(stack.provider.gate_policy.document.to_json())["Statement"]
    assert [statement["Action"] for statement in statements] == [INVOKE, DESCRIBE_STACKS, LIST_MEMBERS]
