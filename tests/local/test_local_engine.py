"""The whole flow through the local CloudFormation engine, as ``deploy`` plays it.

GIVEN one embedded AWS (:class:`LocalAws`: moto with the strict IoT fake, the
HTTPS response endpoint and the provider running in a Lambda-like process) and
one :class:`State`, app versions of a ``FleetStack`` are synthesized
in-process and deployed one after the other with :class:`LocalCloudFormation`:

0. a job that is not the stack's is created directly in moto;
1. v1 is deployed (two jobs);
2. v2 changes ``Rollout``'s description (update in place);
3. v3 retargets ``Rollout`` to another thing group (replacement, then cleanup);
4. v4 changes the description again and adds a job that fails validation at
   deploy time (rollback restores v3);
5. v5 removes ``Reboot``;
6. the stack is destroyed.

The tests run in file order and share the module's engine: each one is one
transition, and each asserts the jobs as moto holds them, the plan that came
before, the events (also as delivered to the ``progress`` callback) and that
the foreign job was never touched. Two further stacks cover ``Retain`` and a
fixed ``JobId`` whose targets change.
"""

from __future__ import annotations

import datetime
import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iot_faults import FaultyIotFake

from cdk_iot_job_local.assembly import from_assembly
from cdk_iot_job_local.engine import (
    IOT_JOB_TYPE,
    LocalCloudFormation,
    PlannedChange,
    Progress,
    StackResult,
)
from cdk_iot_job_local.job_ids import job_id_of
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "FleetStack"
FOREIGN_JOB = "someone-elses-job"
FOREIGN_THING = "someone-elses-device"
FOREIGN_DOCUMENT = '{"operation":"not-yours"}'
MUTATING = ("CreateJob", "UpdateJob", "DeleteJob", "CancelJob", "TagResource", "UntagResource")

ROLLOUT_DOCUMENT = {"operation": "firmware-update", "version": "3.1.0", "url": "https://fw.example.com/3.1.0.bin"}
REBOOT_DOCUMENT = {"operation": "reboot", "delaySeconds": 5}
THROTTLED_DOCUMENT = {"operation": "inventory"}
DESCRIPTIONS = {
    1: "Firmware 3.1.0, first wave",
    2: "Firmware 3.1.0, second wave",
    3: "Firmware 3.1.0, second wave",
    4: "Firmware 3.1.0, third wave",
    5: "Firmware 3.1.0, second wave",
}


def arn(job_id: str) -> str:
    """The job's ARN: a ``Custom::IotJob``'s physical id (``Ref``)."""
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{job_id}"


def jid(physical_id: str) -> str:
    """The JobId of a physical id, which must be the job's ARN in the stack's account and region."""
    job_id = job_id_of(physical_id)
    assert job_id is not None and physical_id == arn(job_id), physical_id
    return job_id


ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def rendered(document: dict[str, Any]) -> str:
    """The document as the construct renders it (compact JSON, sorted keys)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------
# app versions, synthesized in-process
# --------------------------------------------------------------------------
def fleet_app(version: int, outdir: Path) -> Stack:
    """``FleetStack`` as app version ``version`` (1..5) writes it."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob, JobExecutionsRolloutConfig

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, STACK)
    fleet_a = iot.CfnThingGroup(stack, "FleetA", thing_group_name="fleet-a")
    device = iot.CfnThing(stack, "Device", thing_name="fleet-device-1")
    fleet_b = iot.CfnThingGroup(stack, "FleetB", thing_group_name="fleet-b") if version >= 3 else None
    IotJob(
        stack,
        "Rollout",
        targets=[(fleet_b or fleet_a).attr_arn],
        description=DESCRIPTIONS[version],
        document=ROLLOUT_DOCUMENT,
    )
    if version == 4:
        # Passes synth (a token), fails at deploy: MaximumPerMinute must be >= 1.
        rate = cdk.CfnParameter(stack, "ThrottleRate", type="Number", default=0)
        IotJob(
            stack,
            "Throttled",
            targets=[fleet_a.attr_arn],
            document=THROTTLED_DOCUMENT,
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=rate.value_as_number),
        )
    if version != 5:
        IotJob(stack, "Reboot", targets=[device.attr_arn], document=REBOOT_DOCUMENT)
    app.synth()
    return _only(from_assembly(outdir), STACK)


def retain_app(outdir: Path) -> Stack:
    """A job with ``RemovalPolicy.RETAIN`` next to an ordinary one."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "KeepStack")
    group = iot.CfnThingGroup(stack, "Group", thing_group_name="keep-group")
    IotJob(
        stack, "Kept", targets=[group.attr_arn], document={"operation": "keep"}, removal_policy=cdk.RemovalPolicy.RETAIN
    )
    IotJob(stack, "Dropped", targets=[group.attr_arn], document={"operation": "drop"})
    app.synth()
    return _only(from_assembly(outdir), "KeepStack")


def pinned_app(version: int, outdir: Path) -> Stack:
    """A job with a fixed ``JobId``; version 2 changes its (create-only) targets."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "PinnedStack")
    first = iot.CfnThing(stack, "First", thing_name="pinned-device-1")
    second = iot.CfnThing(stack, "Second", thing_name="pinned-device-2")
    IotJob(
        stack,
        "Pinned",
        job_id="fleet-pinned-job",
        targets=[(first if version == 1 else second).attr_arn],
        document={"operation": "pinned"},
        description="pinned job",
    )
    app.synth()
    return _only(from_assembly(outdir), "PinnedStack")


def _only(stacks: list[Stack], name: str) -> Stack:
    [stack] = [s for s in stacks if s.name == name]
    return stack


def job_logical_id(stack: Stack, construct_id: str) -> str:
    """The logical id CDK gave ``<construct_id>/Resource``."""
    [logical_id] = [name for name in stack.logical_ids(IOT_JOB_TYPE) if name.startswith(construct_id)]
    return logical_id


# --------------------------------------------------------------------------
# the shared engine
# --------------------------------------------------------------------------
@dataclass
class World:
    aws: LocalAws
    state: State
    engine: LocalCloudFormation
    tmp: Path
    progress: list[Progress] = field(default_factory=list)
    # Each job event as delivered, with the job ids moto held at that moment.
    live: list[tuple[Progress, set[str]]] = field(default_factory=list)
    foreign_arn: str = ""
    foreign_targets: list[str] = field(default_factory=list)
    # What earlier transitions left behind, for later ones.
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def iot(self) -> Any:
        return self.aws.client("iot")

    def synth(self, build: Any, *args: Any) -> Stack:
        outdir = self.tmp / f"cdk.out-{len(list(self.tmp.glob('cdk.out-*')))}"
        return build(*args, outdir)

    # ------------------------------------------------------------ operations
    def deploy(self, stack: Stack) -> tuple[StackResult, list[tuple[str, str | None]]]:
        """Deploy; returns the result and the mutating IoT calls it made."""
        mark, delivered = len(self.aws.fake.calls), len(self.progress)
        result = self.engine.deploy(stack)
        self._check_progress(result, delivered)
        return result, self.mutations_since(mark)

    def destroy(self, name: str) -> tuple[StackResult, list[tuple[str, str | None]]]:
        mark, delivered = len(self.aws.fake.calls), len(self.progress)
        result = self.engine.destroy(name)
        self._check_progress(result, delivered)
        return result, self.mutations_since(mark)

    def plan(self, stack: Stack) -> dict[str, PlannedChange]:
        mark = len(self.aws.fake.calls)
        changes = self.engine.plan(stack)
        assert self.mutations_since(mark) == [], "plan must change nothing"
        return {change.logical_id: change for change in changes}

    def _check_progress(self, result: StackResult, delivered: int) -> None:
        # Every event reached the callback as it completed, in the same order.
        assert self.progress[delivered:] == result.events
        assert result.events, "an operation that changes something reports events"

    def mutations_since(self, mark: int) -> list[tuple[str, str | None]]:
        return [call for call in self.aws.fake.calls[mark:] if call[0] in MUTATING]

    # ------------------------------------------------------------------ moto
    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.iot.describe_job(jobId=job_id)["job"]
        return job

    def document(self, job_id: str) -> str:
        return str(self.iot.get_job_document(jobId=job_id)["document"])

    def job_ids(self) -> set[str]:
        """Every job moto holds (none is left half-deleted)."""
        jobs = self.iot.list_jobs()["jobs"]
        assert all(job["status"] != "DELETION_IN_PROGRESS" for job in jobs), jobs
        return {job["jobId"] for job in jobs}

    def gone(self, job_id: str) -> bool:
        with pytest.raises(ClientError) as caught:
            self.iot.describe_job(jobId=job_id)
        return caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    def group_arn(self, name: str) -> str:
        return str(self.iot.describe_thing_group(thingGroupName=name)["thingGroupArn"])

    def thing_arn(self, name: str) -> str:
        return str(self.iot.describe_thing(thingName=name)["thingArn"])

    def assert_foreign_job_untouched(self) -> None:
        job = self.job(FOREIGN_JOB)
        assert job["status"] == "IN_PROGRESS"
        assert job["targets"] == self.foreign_targets
        assert self.document(FOREIGN_JOB) == FOREIGN_DOCUMENT
        touched = [(op, target) for op, target in self.aws.fake.calls if target in (FOREIGN_JOB, self.foreign_arn)]
        # Only the test's own CreateJob and reads.
        assert [call for call in touched if call[0] in MUTATING] == [("CreateJob", FOREIGN_JOB)]
        assert self.aws.fake.count("DeleteJob", FOREIGN_JOB) == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("local-engine")
    progress: list[Progress] = []
    live: list[tuple[Progress, set[str]]] = []
    # The engine's fake (LocalAws's defaults), with a call log.
    with LocalAws(fake=FaultyIotFake(deletion_polls=1, check_targets=True)) as aws:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        iot = aws.client("iot")

        def on_progress(event: Progress) -> None:
            # What moto holds when a job's event is delivered: proof it comes as the step completes.
            progress.append(event)
            if event.resource_type == IOT_JOB_TYPE:
                live.append((event, {job["jobId"] for job in iot.list_jobs()["jobs"]}))

        state = State(path=tmp / "state.json")
        engine = LocalCloudFormation(aws, state, on_progress)
        yield World(aws=aws, state=state, engine=engine, tmp=tmp, progress=progress, live=live)


def _statuses(result: StackResult, logical_id: str) -> list[str]:
    return [event.status for event in result.events if event.logical_id == logical_id]


# --------------------------------------------------------------------------
# 0. someone else's job
# --------------------------------------------------------------------------
def test_0_a_foreign_job_exists_before_the_stack(world: World) -> None:
    # GIVEN a device and a job that no stack owns
    world.foreign_targets = [world.iot.create_thing(thingName=FOREIGN_THING)["thingArn"]]
    created = world.iot.create_job(jobId=FOREIGN_JOB, targets=world.foreign_targets, document=FOREIGN_DOCUMENT)
    world.foreign_arn = created["jobArn"]

    # THEN it is the only job
    assert world.job_ids() == {FOREIGN_JOB}
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# 1. deploy
# --------------------------------------------------------------------------
def test_1_deploy_creates_both_jobs(world: World) -> None:
    # GIVEN v1, never deployed: the plan creates both jobs
    stack = world.synth(fleet_app, 1)
    rollout, reboot = job_logical_id(stack, "Rollout"), job_logical_id(stack, "Reboot")
    plan = world.plan(stack)
    assert plan[rollout].action == "create" and not plan[rollout].fails
    assert plan[reboot].action == "create" and not plan[reboot].fails

    # WHEN it is deployed
    result, mutations = world.deploy(stack)

    # THEN the stack is created with one CreateJob per job
    assert result.status == "CREATE_COMPLETE" and result.ok
    assert world.state.stacks[STACK].status == "CREATE_COMPLETE"
    rollout_id = jid(result.resources[rollout].physical_id)
    reboot_id = jid(result.resources[reboot].physical_id)
    assert sorted(mutations) == sorted([("CreateJob", rollout_id), ("CreateJob", reboot_id)]), (
        "a CreateJob per job, with its tags, and nothing else"
    )
    assert _statuses(result, rollout) == ["CREATE_COMPLETE"]
    assert _statuses(result, reboot) == ["CREATE_COMPLETE"]
    # ... the thing group and thing first: the jobs reference them
    order = [event.logical_id for event in result.events]
    assert order.index("FleetA") < order.index(rollout) and order.index("Device") < order.index(reboot)

    # ... the jobs exist in moto as declared, targeting the real resources
    assert world.job_ids() == {FOREIGN_JOB, rollout_id, reboot_id}
    job = world.job(rollout_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["targets"] == [world.group_arn("fleet-a")]
    assert job["description"] == DESCRIPTIONS[1]
    assert world.document(rollout_id) == rendered(ROLLOUT_DOCUMENT)
    job = world.job(reboot_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["targets"] == [world.thing_arn("fleet-device-1")]
    assert world.document(reboot_id) == rendered(REBOOT_DOCUMENT)
    # ... and Ref / GetAtt resolve to them: Ref is the ARN, the attributes are those of AWS::IoT::Job and JobId
    job_arn = arn(rollout_id)
    assert result.resources[rollout].physical_id == job_arn == world.job(rollout_id)["jobArn"]
    attributes = result.resources[rollout].attributes
    assert set(attributes) == {"Arn", "JobId", "CreatedAt"}
    assert attributes["Arn"] == job_arn and attributes["JobId"] == rollout_id
    assert re.fullmatch(ISO_MS, attributes["CreatedAt"]), attributes
    created = world.job(rollout_id)["createdAt"].astimezone(datetime.UTC)
    assert attributes["CreatedAt"] == created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
    world.assert_foreign_job_untouched()

    # WHEN the same version is planned again, THEN nothing changes
    plan = world.plan(world.synth(fleet_app, 1))
    assert plan[rollout].action == "no change" and plan[rollout].physical_id == arn(rollout_id)
    assert plan[rollout].job_id == rollout_id
    assert plan[reboot].action == "no change" and plan[reboot].physical_id == arn(reboot_id)
    assert all(change.action == "no change" for change in plan.values()), plan
    world.seen.update(rollout=rollout, reboot=reboot, rollout_v1=rollout_id, reboot_id=reboot_id)


# --------------------------------------------------------------------------
# 2. description changed: in place
# --------------------------------------------------------------------------
def test_2_description_change_updates_in_place(world: World) -> None:
    rollout, reboot = world.seen["rollout"], world.seen["reboot"]
    rollout_id, reboot_id = world.seen["rollout_v1"], world.seen["reboot_id"]

    # GIVEN v2: only Rollout's description differs
    stack = world.synth(fleet_app, 2)
    plan = world.plan(stack)
    assert plan[rollout].action == "update in place", plan[rollout]
    assert "Description" in plan[rollout].detail and not plan[rollout].fails
    assert plan[rollout].physical_id == arn(rollout_id) and plan[rollout].job_id == rollout_id
    assert plan[reboot].action == "no change"

    # WHEN it is deployed
    result, mutations = world.deploy(stack)

    # THEN Rollout is updated in place: same JobId, new description, one UpdateJob
    assert result.status == "UPDATE_COMPLETE" and result.ok
    assert result.resources[rollout].physical_id == arn(rollout_id)
    assert _statuses(result, rollout) == ["UPDATE_COMPLETE"]
    assert _statuses(result, reboot) == []
    assert mutations == [("UpdateJob", rollout_id)]
    assert world.aws.fake.count("CreateJob") == 3  # the foreign job and v1's two
    job = world.job(rollout_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["description"] == DESCRIPTIONS[2]
    assert job["targets"] == [world.group_arn("fleet-a")]
    assert world.document(rollout_id) == rendered(ROLLOUT_DOCUMENT)
    assert world.job_ids() == {FOREIGN_JOB, rollout_id, reboot_id}
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# 3. targets changed: replacement, then cleanup
# --------------------------------------------------------------------------
def test_3_targets_change_replaces_the_job(world: World) -> None:
    rollout, reboot = world.seen["rollout"], world.seen["reboot"]
    old_id, reboot_id = world.seen["rollout_v1"], world.seen["reboot_id"]

    # GIVEN v3: Rollout targets a new thing group
    stack = world.synth(fleet_app, 3)
    plan = world.plan(stack)
    assert plan["FleetB"].action == "create"
    assert plan[rollout].action == "replace", plan[rollout]
    assert "Targets" in plan[rollout].detail and not plan[rollout].fails
    assert plan[reboot].action == "no change"

    # WHEN it is deployed
    result, mutations = world.deploy(stack)

    # THEN Rollout has a new job targeting fleet-b ...
    assert result.status == "UPDATE_COMPLETE" and result.ok
    new_id = jid(result.resources[rollout].physical_id)
    assert new_id != old_id
    job = world.job(new_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["targets"] == [world.group_arn("fleet-b")]
    assert job["description"] == DESCRIPTIONS[3]
    assert world.document(new_id) == rendered(ROLLOUT_DOCUMENT)
    # ... the old job was deleted in the cleanup phase, after the replacement
    assert world.gone(old_id)
    events = [(event.status, jid(event.physical_id)) for event in result.events if event.logical_id == rollout]
    assert events == [("UPDATE_COMPLETE (replacement)", new_id), ("DELETE_COMPLETE", old_id)]
    # ... delivered as they happened: both jobs existed at the first, only the new one at the second
    delivered = {
        (event.status, jid(event.physical_id)): jobs for event, jobs in world.live if event.logical_id == rollout
    }
    assert {old_id, new_id} <= delivered[("UPDATE_COMPLETE (replacement)", new_id)]
    assert new_id in delivered[("DELETE_COMPLETE", old_id)] and old_id not in delivered[("DELETE_COMPLETE", old_id)]
    assert mutations == [("CreateJob", new_id), ("DeleteJob", old_id)]
    # ... and nothing else changed
    assert world.job_ids() == {FOREIGN_JOB, new_id, reboot_id}
    assert world.job(reboot_id)["status"] == "IN_PROGRESS"
    world.assert_foreign_job_untouched()
    world.seen.update(
        rollout_v3=new_id,
        state_v3={name: (res.physical_id, res.properties) for name, res in world.state.stacks[STACK].resources.items()},
    )


# --------------------------------------------------------------------------
# 4. a new job fails validation: rollback
# --------------------------------------------------------------------------
def test_4_failed_new_job_rolls_back_to_the_previous_version(world: World) -> None:
    rollout, reboot = world.seen["rollout"], world.seen["reboot"]
    rollout_id, reboot_id = world.seen["rollout_v3"], world.seen["reboot_id"]

    # GIVEN v4: Rollout's description changes, and a new job's MaximumPerMinute
    # comes from a parameter whose default (0) the provider rejects
    stack = world.synth(fleet_app, 4)
    assert "ThrottleRate" in stack.template.get("Parameters", {}), "the parameter is in the template"
    throttled = job_logical_id(stack, "Throttled")
    plan = world.plan(stack)
    assert plan[rollout].action == "update in place" and "Description" in plan[rollout].detail
    assert plan[throttled].action == "create" and plan[throttled].fails, plan[throttled]
    assert plan[throttled].detail.startswith("will fail:") and "MaximumPerMinute" in plan[throttled].detail
    assert plan[reboot].action == "no change"

    # WHEN it is deployed
    mark = len(world.aws.fake.calls)
    result, mutations = world.deploy(stack)

    # THEN the deploy fails and is rolled back
    assert result.status == "UPDATE_ROLLBACK_COMPLETE" and not result.ok
    failed = [event for event in result.events if event.status.endswith("_FAILED")]
    assert [(event.logical_id, event.status) for event in failed] == [(throttled, "CREATE_FAILED")]
    assert "MaximumPerMinute" in failed[0].reason
    # ... in CloudFormation's order: the update, the failure, then the rollback
    assert [(event.logical_id, event.status) for event in result.events] == [
        (rollout, "UPDATE_COMPLETE"),
        (throttled, "CREATE_FAILED"),
        (throttled, "DELETE_COMPLETE"),
        (rollout, "UPDATE_COMPLETE"),
    ]
    # ... Rollout was updated, then updated back (the rollback's swapped properties)
    assert _statuses(result, rollout) == ["UPDATE_COMPLETE", "UPDATE_COMPLETE"]
    assert mutations == [("UpdateJob", rollout_id), ("UpdateJob", rollout_id)]
    assert [call for call in world.aws.fake.calls[mark:] if call[0] == "CreateJob"] == []
    job = world.job(rollout_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["description"] == DESCRIPTIONS[3]
    assert job["targets"] == [world.group_arn("fleet-b")]
    assert world.document(rollout_id) == rendered(ROLLOUT_DOCUMENT)
    # ... no job is left for the failed resource
    assert world.job_ids() == {FOREIGN_JOB, rollout_id, reboot_id}
    # ... and the state still describes v3
    deployed = world.state.stacks[STACK]
    assert deployed.status == "UPDATE_ROLLBACK_COMPLETE"
    assert {name: (res.physical_id, res.properties) for name, res in deployed.resources.items()} == world.seen[
        "state_v3"
    ]
    assert throttled not in deployed.resources
    world.assert_foreign_job_untouched()

    # WHEN v3 is planned again, THEN nothing is left to do
    plan = world.plan(world.synth(fleet_app, 3))
    assert all(change.action == "no change" for change in plan.values()), plan


# --------------------------------------------------------------------------
# 5. a job removed from the app
# --------------------------------------------------------------------------
def test_5_removed_job_is_deleted(world: World) -> None:
    rollout, reboot = world.seen["rollout"], world.seen["reboot"]
    rollout_id, reboot_id = world.seen["rollout_v3"], world.seen["reboot_id"]

    # GIVEN v5: v3 without Reboot
    stack = world.synth(fleet_app, 5)
    plan = world.plan(stack)
    assert plan[reboot].action == "delete" and plan[reboot].physical_id == arn(reboot_id)
    assert plan[reboot].job_id == reboot_id
    assert plan[rollout].action == "no change"

    # WHEN it is deployed
    result, mutations = world.deploy(stack)

    # THEN Reboot's job is deleted and Rollout is untouched
    assert result.status == "UPDATE_COMPLETE" and result.ok
    assert [(e.logical_id, e.status, e.physical_id) for e in result.events] == [
        (reboot, "DELETE_COMPLETE", arn(reboot_id))
    ]
    assert mutations == [("DeleteJob", reboot_id)]
    assert world.gone(reboot_id)
    assert world.job_ids() == {FOREIGN_JOB, rollout_id}
    job = world.job(rollout_id)
    assert job["status"] == "IN_PROGRESS" and job["description"] == DESCRIPTIONS[5]
    assert reboot not in world.state.stacks[STACK].resources
    # the thing Reboot targeted is still part of the stack
    assert world.thing_arn("fleet-device-1")
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# 6. destroy
# --------------------------------------------------------------------------
def test_6_destroy_leaves_no_job_of_the_stack(world: World) -> None:
    rollout, rollout_id = world.seen["rollout"], world.seen["rollout_v3"]

    # WHEN the stack is destroyed
    result, mutations = world.destroy(STACK)

    # THEN every resource is deleted, the job before the group it targets
    assert result.status == "DELETE_COMPLETE" and result.ok
    assert all(event.status == "DELETE_COMPLETE" for event in result.events), result.events
    order = [event.logical_id for event in result.events]
    assert order.index(rollout) < order.index("FleetB")
    assert mutations == [("DeleteJob", rollout_id)]
    assert STACK not in world.state.stacks
    # ... only the foreign job is left, and the groups and the thing are gone
    assert world.job_ids() == {FOREIGN_JOB}
    groups = {group["groupName"] for group in world.iot.list_thing_groups()["thingGroups"]}
    assert groups.isdisjoint({"fleet-a", "fleet-b"})
    things = {thing["thingName"] for thing in world.iot.list_things()["things"]}
    assert things == {FOREIGN_THING}
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# Retain, and a fixed JobId
# --------------------------------------------------------------------------
def test_destroy_keeps_a_retained_job(world: World) -> None:
    # GIVEN a stack with a retained job and an ordinary one, deployed
    stack = world.synth(retain_app)
    kept, dropped = job_logical_id(stack, "Kept"), job_logical_id(stack, "Dropped")
    assert stack.resources[kept]["DeletionPolicy"] == "Retain"
    created, _ = world.deploy(stack)
    assert created.status == "CREATE_COMPLETE"
    kept_id, dropped_id = jid(created.resources[kept].physical_id), jid(created.resources[dropped].physical_id)

    # WHEN it is destroyed
    result, mutations = world.destroy("KeepStack")

    # THEN the retained job stays, the rest is deleted
    assert result.status == "DELETE_COMPLETE"
    assert _statuses(result, kept) == ["DELETE_SKIPPED"]
    assert _statuses(result, dropped) == ["DELETE_COMPLETE"]
    assert mutations == [("DeleteJob", dropped_id)]
    assert world.job(kept_id)["status"] == "IN_PROGRESS"
    assert world.gone(dropped_id)
    groups = {group["groupName"] for group in world.iot.list_thing_groups()["thingGroups"]}
    assert "keep-group" not in groups
    assert "KeepStack" not in world.state.stacks
    world.assert_foreign_job_untouched()


def test_fixed_job_id_with_new_targets_fails_and_keeps_the_job(world: World) -> None:
    # GIVEN a job with a fixed JobId, deployed
    first = world.synth(pinned_app, 1)
    pinned = job_logical_id(first, "Pinned")
    created, _ = world.deploy(first)
    assert created.status == "CREATE_COMPLETE"
    assert created.resources[pinned].physical_id == arn("fleet-pinned-job")
    targets = [world.thing_arn("pinned-device-1")]
    assert world.job("fleet-pinned-job")["targets"] == targets

    # WHEN its targets change
    second = world.synth(pinned_app, 2)
    plan = world.plan(second)

    # THEN the plan says the update fails ...
    assert plan[pinned].action == "update fails" and plan[pinned].fails, plan[pinned]
    assert "Targets" in plan[pinned].detail and "fleet-pinned-job" in plan[pinned].detail

    # ... and the deploy fails and rolls back without touching the job
    result, mutations = world.deploy(second)
    assert result.status == "UPDATE_ROLLBACK_COMPLETE" and not result.ok
    assert next(e.status for e in result.events if e.logical_id == pinned) == "UPDATE_FAILED"
    assert mutations == []
    job = world.job("fleet-pinned-job")
    assert job["status"] == "IN_PROGRESS" and job["targets"] == targets
    assert world.document("fleet-pinned-job") == rendered({"operation": "pinned"})
    assert world.state.stacks["PinnedStack"].resources[pinned].properties["Targets"] == targets

    # Cleanup: destroy deletes it
    result, _ = world.destroy("PinnedStack")
    assert result.status == "DELETE_COMPLETE"
    assert world.gone("fleet-pinned-job")
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# a replacement rolled back
# --------------------------------------------------------------------------
def swap_app(version: int, mode: str, outdir: Path) -> Stack:
    """Version 2 replaces Job (and, for generated ids, group B), then adds a failing job.

    ``mode``: ``generated`` retargets Job from group A to a renamed group B;
    ``fixed`` changes Job's fixed JobId from ``swap-fixed-a`` to ``swap-fixed-b``;
    ``retained`` is ``fixed`` with Job made ``RemovalPolicy.RETAIN`` in version 2.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob, JobExecutionsRolloutConfig

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, f"Swap-{mode}")
    group_a = iot.CfnThingGroup(stack, "GroupA", thing_group_name=f"swap-{mode}-a")
    group_b = iot.CfnThingGroup(stack, "GroupB", thing_group_name=f"swap-{mode}-b" + ("2" if version == 2 else ""))
    generated = mode == "generated"
    IotJob(
        stack,
        "Job",
        job_id=None if generated else f"swap-{mode}-{'a' if version == 1 else 'b'}",
        targets=[(group_b if generated and version == 2 else group_a).attr_arn],
        document={"operation": "swap"},
        description="swap job",
        removal_policy=cdk.RemovalPolicy.RETAIN if mode == "retained" and version == 2 else None,
    )
    if version == 2:
        rate = cdk.CfnParameter(stack, "Rate", type="Number", default=0)
        IotJob(
            stack,
            "Bad",
            targets=[group_a.attr_arn],
            document={"operation": "bad"},
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=rate.value_as_number),
        )
    app.synth()
    return _only(from_assembly(outdir), f"Swap-{mode}")


@pytest.mark.parametrize("mode", ["generated", "fixed", "retained"])
def test_rollback_of_a_replacement_converges_on_the_old_job_and_deletes_the_new_one(
    world: World, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployed job X targeting group A
    first = world.synth(swap_app, 1, mode)
    name = first.name
    job = job_logical_id(first, "Job")
    created, _ = world.deploy(first)
    assert created.status == "CREATE_COMPLETE"
    old_arn = created.resources[job].physical_id
    old_id = jid(old_arn)
    old_attributes = dict(created.resources[job].attributes)
    before = world.job(old_id)
    old_tags = world.iot.list_tags_for_resource(resourceArn=old_arn)["tags"]

    # WHEN an update replaces the job (X -> Y) and a later job fails; the events sent are recorded
    sent: list[dict[str, Any]] = []
    send = world.engine._send

    def recording_send(ctx: Any, request_type: str, logical_id: str, *args: Any, **kwargs: Any) -> Any:
        response = send(ctx, request_type, logical_id, *args, **kwargs)
        sent.append({"type": request_type, "logical_id": logical_id, "props": args[1], **kwargs, "answer": response})
        return response

    monkeypatch.setattr(world.engine, "_send", recording_send)
    second = world.synth(swap_app, 2, mode)
    bad = job_logical_id(second, "Bad")
    result, mutations = world.deploy(second)
    monkeypatch.undo()

    # THEN the stack is rolled back ...
    assert result.status == "UPDATE_ROLLBACK_COMPLETE" and not result.ok
    new_arn = next(e.physical_id for e in result.events if e.logical_id == job and "replacement" in e.status)
    new_id = jid(new_arn)
    assert new_id != old_id
    if mode != "generated":
        assert (old_id, new_id) == (f"swap-{mode}-a", f"swap-{mode}-b")
    # ... as CloudFormation plays it: the rollback Update goes to Y with X's properties, answers X,
    # and Y is deleted in the cleanup after it (or kept, when Retain)
    [bad_failed] = [e for e in result.events if e.logical_id == bad and e.status == "CREATE_FAILED"]
    assert job_id_of(bad_failed.physical_id) is None, "a failed Create answers an id that names no job"
    cleanup = (job, "DELETE_SKIPPED", new_arn) if mode == "retained" else (job, "DELETE_COMPLETE", new_arn)
    assert [(e.logical_id, e.status, e.physical_id) for e in result.events if e.logical_id in (job, bad)] == [
        (job, "UPDATE_COMPLETE (replacement)", new_arn),
        (bad, "CREATE_FAILED", bad_failed.physical_id),
        (bad, "DELETE_COMPLETE", bad_failed.physical_id),
        (job, "UPDATE_COMPLETE", old_arn),
        cleanup,
    ]
    updates = [event for event in sent if event["logical_id"] == job and event["type"] == "Update"]
    assert len(updates) == 2
    forward, rollback = updates
    assert forward["physical_id"] == old_arn and forward["answer"].physical_id == new_arn
    assert rollback["physical_id"] == new_arn, "the rollback Update is addressed to the new job"
    assert rollback["props"] == forward["old"] and rollback["old"] == forward["props"]
    assert rollback["answer"].physical_id == old_arn
    deletes = [(event["logical_id"], event["physical_id"]) for event in sent if event["type"] == "Delete"]
    assert deletes == [(bad, bad_failed.physical_id)] + ([] if mode == "retained" else [(job, new_arn)])

    # ... so exactly X is live, unchanged, and Y is gone (or retained, untouched)
    expected = [("CreateJob", new_id)] + ([] if mode == "retained" else [("DeleteJob", new_id)])
    assert mutations == expected
    assert world.job(old_id) == before
    assert world.iot.list_tags_for_resource(resourceArn=old_arn)["tags"] == old_tags
    if mode == "retained":
        assert world.job(new_id)["status"] == "IN_PROGRESS"
        world.iot.delete_job(jobId=new_id, force=True)  # the test's own cleanup
        assert world.job(new_id)["status"] == "DELETION_IN_PROGRESS"  # this DescribeJob finishes it
        assert world.gone(new_id)
    else:
        assert world.gone(new_id)
    stack_jobs = {
        job_id
        for job_id in world.job_ids()
        if job_id in (old_id, new_id) or job_id.startswith(name) or job_id.startswith("swap-")
    }
    assert stack_jobs == {old_id}
    groups = {group["groupName"] for group in world.iot.list_thing_groups()["thingGroups"]}
    assert {f"swap-{mode}-a", f"swap-{mode}-b"} <= groups and f"swap-{mode}-b2" not in groups
    # ... and the state is the previous version's: X with its attributes
    deployed = world.state.stacks[name]
    assert deployed.status == "UPDATE_ROLLBACK_COMPLETE"
    assert deployed.resources[job].physical_id == old_arn
    assert deployed.resources[job].attributes == old_attributes
    assert deployed.resources["GroupB"].physical_id == f"swap-{mode}-b"
    assert bad not in deployed.resources

    # WHEN the first version is planned again, THEN nothing is left to do
    plan = world.plan(world.synth(swap_app, 1, mode))
    assert all(change.action == "no change" for change in plan.values()), plan

    # Cleanup
    result, _ = world.destroy(name)
    assert result.status == "DELETE_COMPLETE" and world.gone(old_id)
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# jobs deleted outside the stack
# --------------------------------------------------------------------------
def outside_app(version: int, outdir: Path) -> Stack:
    """Three jobs; version 2 changes Described's description (in place) and Moved's targets (replace)."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "OutsideStack")
    first = iot.CfnThingGroup(stack, "First", thing_group_name="outside-1")
    second = iot.CfnThingGroup(stack, "Second", thing_group_name="outside-2")
    IotJob(stack, "Described", targets=[first.attr_arn], document={"op": "d"}, description=f"v{version}")
    IotJob(stack, "Moved", targets=[(first if version == 1 else second).attr_arn], document={"op": "m"})
    IotJob(stack, "Same", targets=[first.attr_arn], document={"op": "s"})
    app.synth()
    return _only(from_assembly(outdir), "OutsideStack")


def test_a_job_deleted_outside_the_stack_is_not_created_again(world: World) -> None:
    # GIVEN three deployed jobs
    first = world.synth(outside_app, 1)
    described, moved, same = (job_logical_id(first, name) for name in ("Described", "Moved", "Same"))
    created, _ = world.deploy(first)
    assert created.status == "CREATE_COMPLETE"
    arns = {name: created.resources[name].physical_id for name in (described, moved, same)}
    ids = {name: jid(physical_id) for name, physical_id in arns.items()}

    # WHEN all three are deleted directly in IoT: Described is still being deleted, the others are gone
    for job_id in ids.values():
        world.iot.delete_job(jobId=job_id, force=True)
    for name in (moved, same):
        assert world.job(ids[name])["status"] == "DELETION_IN_PROGRESS"  # this DescribeJob finishes it
        assert world.gone(ids[name])

    # THEN the plan says the in-place and unchanged ones are skipped, not created again; the replacement stays
    second = world.synth(outside_app, 2)
    plan = world.plan(second)
    assert plan[described].action == "skip (deleted outside the stack)", plan[described]
    assert "being deleted" in plan[described].detail and "not" in plan[described].detail
    assert "created again" in plan[described].detail and "Description" in plan[described].detail
    assert plan[described].job_id == ids[described] and plan[described].physical_id == arns[described]
    assert plan[same].action == "skip (deleted outside the stack)", plan[same]
    assert "no longer exists" in plan[same].detail and "created again" in plan[same].detail
    assert plan[moved].action == "replace" and "Targets" in plan[moved].detail, plan[moved]
    assert not any(change.fails for change in plan.values())
    # ... the plan's look did not finish Described's deletion
    assert [j["status"] for j in world.iot.list_jobs()["jobs"] if j["jobId"] == ids[described]] == [
        "DELETION_IN_PROGRESS"
    ]

    # WHEN version 2 is deployed
    result, mutations = world.deploy(second)

    # THEN it succeeds: only Moved gets a new job; Described keeps its physical id and is not created again
    assert result.status == "UPDATE_COMPLETE" and result.ok, result.events
    new_moved = jid(result.resources[moved].physical_id)
    assert new_moved != ids[moved]
    assert [call for call in mutations if call[0] in ("CreateJob", "UpdateJob", "TagResource")] == [
        ("CreateJob", new_moved)
    ]
    assert result.resources[described].physical_id == arns[described]
    assert result.resources[same].physical_id == arns[same]
    assert _statuses(result, described) == ["UPDATE_COMPLETE"]
    assert _statuses(result, same) == []
    assert world.job(new_moved)["targets"] == [world.group_arn("outside-2")]
    live = {j["jobId"]: j["status"] for j in world.iot.list_jobs()["jobs"]}
    assert new_moved in live and not {ids[same], ids[moved]} & set(live)
    assert live.get(ids[described], "DELETION_IN_PROGRESS") == "DELETION_IN_PROGRESS", "not created again"

    # Cleanup: Deletes of the jobs that are gone succeed
    result, _ = world.destroy("OutsideStack")
    assert result.status == "DELETE_COMPLETE", result.events
    assert world.gone(new_moved)
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# plain CloudFormation: the example template and the provider stack's export
# --------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cloudformation" / "iot-job.yaml"
EXPORT = "cdk-iot-job-ServiceToken"


def provider_app(outdir: Path) -> Stack:
    import aws_cdk as cdk

    from cdk_iot_job import IotJobProviderStack

    app = cdk.App(outdir=str(outdir))
    IotJobProviderStack(app, "IotJobProviderStack")
    app.synth()
    return _only(from_assembly(outdir), "IotJobProviderStack")


def test_plain_cloudformation_example_deploys_through_the_exported_provider(world: World) -> None:
    from cdk_iot_job_local.assembly import from_template

    # GIVEN the provider stack, exporting the service token
    provider, _ = world.deploy(world.synth(provider_app))
    assert provider.status == "CREATE_COMPLETE"
    assert EXPORT in world.state.stacks["IotJobProviderStack"].exports

    # WHEN the example template is planned and deployed
    template = from_template(EXAMPLE, "ExampleStack")
    plan = world.plan(template)
    assert plan["Job"].action == "create" and not plan["Job"].fails
    result, mutations = world.deploy(template)

    # THEN its job exists as declared, through the imported provider
    assert result.status == "CREATE_COMPLETE", result.events
    job_id = jid(result.resources["Job"].physical_id)
    assert mutations == [("CreateJob", job_id)]
    job = world.job(job_id)
    assert job["status"] == "IN_PROGRESS"
    assert job["targets"] == [world.group_arn("cfn-example-sensors")]
    assert job["targetSelection"] == "CONTINUOUS"
    assert job["description"] == "Firmware 1.0.0 for the example sensors"
    assert json.loads(world.document(job_id)) == {"operation": "firmware-update", "version": "1.0.0"}
    # ... and its Outputs: Ref and GetAtt Arn are the ARN, CreatedAt an ISO 8601 UTC timestamp
    assert result.outputs == {
        "JobRef": arn(job_id),
        "JobArn": arn(job_id),
        "JobId": job_id,
        "CreatedAt": result.resources["Job"].attributes["CreatedAt"],
    }
    assert re.fullmatch(ISO_MS, result.outputs["CreatedAt"]), result.outputs
    assert world.state.stacks["ExampleStack"].outputs == result.outputs
    assert world.state.stacks["ExampleStack"].imports == [EXPORT]
    world.seen["example_job"] = job_id
    world.assert_foreign_job_untouched()


def test_provider_stack_is_not_destroyed_while_its_export_is_imported(world: World) -> None:
    assert "ExampleStack" in world.state.stacks, "needs the previous test"
    mark, delivered = len(world.aws.fake.calls), len(world.progress)

    # WHEN the provider stack is destroyed while ExampleStack imports its export
    result = world.engine.destroy("IotJobProviderStack")

    # THEN it fails, names the export and its importer, and deletes nothing
    assert result.status == "DELETE_FAILED" and not result.ok
    reasons = " ".join(event.reason for event in result.events)
    assert EXPORT in reasons and "ExampleStack" in reasons, result.events
    assert world.mutations_since(mark) == []
    assert "IotJobProviderStack" in world.state.stacks
    assert world.job(world.seen["example_job"])["status"] == "IN_PROGRESS"
    # ... and that event reached the progress callback like every other one
    assert world.progress[delivered:] == result.events


def test_plain_cloudformation_example_is_destroyed_before_the_provider(world: World) -> None:
    job_id = world.seen["example_job"]
    result, mutations = world.destroy("ExampleStack")
    assert result.status == "DELETE_COMPLETE"
    assert mutations == [("DeleteJob", job_id)] and world.gone(job_id)
    result, _ = world.destroy("IotJobProviderStack")
    assert result.status == "DELETE_COMPLETE"
    assert world.state.stacks == {}, "every stack of this module is destroyed"
    world.assert_foreign_job_untouched()


# --------------------------------------------------------------------------
# a rolled-back update keeps the previous DeletionPolicy
# --------------------------------------------------------------------------
def policy_app(version: int, outdir: Path) -> Stack:
    """Version 2 only adds ``Retain`` to Guarded, and a job that fails after it."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob, JobExecutionsRolloutConfig

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "PolicyStack")
    group = iot.CfnThingGroup(stack, "Group", thing_group_name="policy-group")
    IotJob(
        stack,
        "Guarded",
        targets=[group.attr_arn],
        document={"operation": "guarded"},
        removal_policy=cdk.RemovalPolicy.RETAIN if version == 2 else None,
    )
    if version == 2:
        rate = cdk.CfnParameter(stack, "Rate", type="Number", default=0)
        IotJob(
            stack,
            "Bad",
            targets=[group.attr_arn],
            document={"operation": "bad"},
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=rate.value_as_number),
        )
    app.synth()
    return _only(from_assembly(outdir), "PolicyStack")


def test_rollback_restores_the_previous_deletion_policy(world: World) -> None:
    # GIVEN a deployed job with the default DeletionPolicy (Delete)
    first = world.synth(policy_app, 1)
    guarded = job_logical_id(first, "Guarded")
    created, _ = world.deploy(first)
    assert created.status == "CREATE_COMPLETE"
    job_id = jid(created.resources[guarded].physical_id)
    assert world.state.stacks["PolicyStack"].resources[guarded].deletion_policy == "Delete"

    # WHEN an update that would make it Retain fails and is rolled back
    second = world.synth(policy_app, 2)
    assert second.resources[guarded]["DeletionPolicy"] == "Retain"
    result, _ = world.deploy(second)
    assert result.status == "UPDATE_ROLLBACK_COMPLETE"

    # THEN the stack is as before the update: the job is not retained ...
    assert world.state.stacks["PolicyStack"].resources[guarded].deletion_policy == "Delete"
    # ... so destroying the stack deletes it
    result, _ = world.destroy("PolicyStack")
    assert result.status == "DELETE_COMPLETE"
    assert _statuses(result, guarded) == ["DELETE_COMPLETE"]
    assert world.gone(job_id)
