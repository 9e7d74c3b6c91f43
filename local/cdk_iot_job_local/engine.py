"""CloudFormation's stack lifecycle, played locally against embedded moto.

Resources are created in dependency order; an update sends custom resources
an Update with ``OldResourceProperties``, treats a new physical id as a
replacement, and deletes replaced and removed resources in the cleanup phase.
When a resource fails, the rollback is played as CloudFormation plays it:
rollback Updates with the properties swapped back, and Deletes of whatever the
failed attempt created.

A ``Custom::IotJob``'s physical id is its job's ARN (:mod:`.job_ids`); the plan
reads the JobId out of it to look the job up in moto, and says when a job was
deleted outside the stack, which the provider does not create again.

A replacement rolled back is played as CloudFormation plays it: the rollback
Update, carrying the old properties, goes to the *new* physical id; an answer
naming another id (the old job) is a replacement back, and the new one is
deleted in the rollback cleanup, after every rollback Update. An Update that
fails naming another physical id than the resource's (a gated replacement
whose new job failed: ``<job ARN>?request-id=<RequestId>``) gets the same
treatment: that id is deleted in the rollback cleanup, after the rollback
Update, as CloudFormation deletes the ids it no longer points at.

The stack's status, as the engine moves through these phases, is what
``DescribeStacks`` answers for it (:attr:`.LocalAws.stack_status`): a provider
that waits stops when its stack is no longer in progress.

Each stack is deployed to its own account and region (:mod:`.environment`).
How each custom resource runs is :mod:`.support`'s decision: a stack with one
the engine cannot run is refused before anything changes, or, with
``skip_unsupported``, the resource is recorded without being created.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.update_decision import decide_update

from . import resources
from .delivery import Watcher, deliver
from .environment import Environment
from .events import custom_resource_event
from .job_ids import job_id_of
from .runtime import CustomResourceResponse, LocalAws
from .state import ResourceState, StackState, State
from .support import (
    NOT_SUPPORTED,
    SKIP_FLAG,
    SKIP_NOT_SUPPORTED,
    Handling,
    Support,
    check_supported,
    handling_of_deployed,
    is_custom,
    support_of,
)
from .template import IOT_JOB_TYPE, Stack, TemplateResolver, UnsupportedTemplateError
from .validate import check_template

__all__ = [
    "IOT_JOB_TYPE",
    "NOT_SUPPORTED",
    "SKIP_NOT_SUPPORTED",
    "LocalCloudFormation",
    "PlannedChange",
    "Progress",
    "StackResult",
    "is_custom",
]

_UNKNOWN = "<known after deploy: {}>"
_DELETING = "DELETION_IN_PROGRESS"
#: The plan's action for a job deleted outside the stack that the deploy leaves deleted.
SKIP_DELETED = "skip (deleted outside the stack)"
#: The physical id of a resource recorded without being created.
_SKIPPED_ID = "{stack}-{logical_id}-skipped-locally"


@dataclass(frozen=True)
class Progress:
    """One resource event, as CloudFormation's event log shows it."""

    stack: str
    logical_id: str
    resource_type: str
    status: str
    physical_id: str = ""
    reason: str = ""


@dataclass
class StackResult:
    """How a deploy or destroy of one stack ended."""

    stack: str
    status: str
    events: list[Progress] = field(default_factory=list)
    resources: dict[str, ResourceState] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the stack reached the state that was asked for."""
        return self.status in {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "NO_CHANGES"}


@dataclass(frozen=True)
class PlannedChange:
    """What the next deploy does to one resource."""

    logical_id: str
    resource_type: str
    action: str
    detail: str = ""
    physical_id: str = ""
    fails: bool = False
    #: A ``Custom::IotJob``'s JobId: the deployed one (from its ARN) or a fixed one to be created.
    job_id: str = ""


class _StepFailed(Exception):
    """A resource operation failed; ``undo`` rolls back what it left behind."""

    def __init__(self, reason: str, undo: Callable[[], None] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.undo = undo


@dataclass
class _Step:
    """A completed operation, kept so a rollback can revert it."""

    logical_id: str
    undo: Callable[[], None]


class LocalCloudFormation:
    """Deploys, updates, destroys and plans stacks against a :class:`LocalAws`.

    Parameters
    ----------
    aws
        The embedded AWS.
    state
        What earlier runs deployed; updated in place (the caller saves it).
    progress
        Called as each resource event completes.
    skip_unsupported
        Record custom resources the engine cannot run (:mod:`.support`)
        without creating them, instead of refusing the stack.
    watcher
        What to run while a provider function keeps a resource in progress
        (:data:`.delivery.Watcher`), e.g. a live view of a rollout gate.
    """

    def __init__(
        self,
        aws: LocalAws,
        state: State,
        progress: Callable[[Progress], None] | None = None,
        *,
        skip_unsupported: bool = False,
        watcher: Watcher | None = None,
    ) -> None:
        self.aws = aws
        self.state = state
        self.skip_unsupported = skip_unsupported
        self.watcher = watcher
        self._progress = progress or (lambda _event: None)
        self._events: list[Progress] = []
        # How each custom resource of the stack being deployed or planned runs.
        self._supports: dict[str, Support] = {}
        # Resources of the stack being deployed, for providers defined in it.
        self._current: dict[str, ResourceState] = {}
        # Rollback bookkeeping: deletes run after every rollback Update, and
        # the resources a rollback Update left under another physical id.
        self._rollback_cleanup: list[Callable[[], None]] = []
        self._restored: dict[str, ResourceState] = {}

    # ----------------------------------------------------------------- deploy
    def check(self, stack: Stack) -> None:
        """Refuse, before anything changes, a stack :meth:`deploy` cannot deploy.

        Call it for every stack before deploying any, to change nothing when one is refused.

        Raises
        ------
        UnsupportedTemplateError
            The template uses an intrinsic or an ``Fn::GetAtt`` attribute the
            engine does not model, or the stack is deployed to another account
            or region.
        UnsupportedCustomResourceError
            A custom resource cannot run locally and ``skip_unsupported`` is off.
        """
        check_template(stack)
        previous = self.state.stacks.get(stack.name)
        if previous is not None and previous.resources and previous.environment != stack.environment:
            raise UnsupportedTemplateError(
                f"stack {stack.name} is deployed to {previous.environment}, this template to {stack.environment}: "
                "destroy it first"
            )
        self._supports = self._support_of(stack)
        if not self.skip_unsupported:
            check_supported(stack, self._supports)

    def deploy(self, stack: Stack) -> StackResult:
        """Create the stack, or update it to ``stack``'s template, in the stack's account and region.

        Raises
        ------
        UnsupportedTemplateError
            Before anything changes: see :meth:`check`.
        """
        self.check(stack)
        self._events = []
        self._current = {}
        previous = self.state.stacks.get(stack.name)
        creating = previous is None or previous.status in {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}
        stack_id = previous.stack_id if previous is not None and not creating else self._new_stack_id(stack)
        self._set_status(stack_id, "CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS")
        old = {} if creating or previous is None else dict(previous.resources)
        resolver = TemplateResolver(stack, stack_id, imports=self.state.exports(excluding=stack.name))
        ctx = resources.ResourceContext(self.aws, stack, stack_id, self.state.assets_dir)
        resources.upload_file_assets(ctx)
        deployed: dict[str, ResourceState] = {}
        done: list[_Step] = []
        cleanup: list[tuple[str, ResourceState]] = []
        changed = False

        try:
            for logical_id in stack.creation_order():
                current, step, replaced = self._deploy_resource(ctx, resolver, stack, logical_id, old.get(logical_id))
                deployed[logical_id] = current
                _record(resolver, logical_id, current)
                if step is not None:
                    done.append(step)
                    changed = True
                if replaced is not None:
                    cleanup.append((logical_id, replaced))
            # Outputs are resolved before the cleanup phase: one that fails fails the stack.
            outputs, exports = self._outputs(stack, resolver, creating)
        except _StepFailed as failure:
            return self._roll_back(stack, stack_id, previous, creating, failure, done)

        removed = [name for name in reversed(self._order_of(old)) if name not in stack.resources]
        changed = changed or bool(removed)
        if cleanup or removed:
            self._set_status(stack_id, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        # UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: replaced resources, dependents first.
        for logical_id, replaced in reversed(cleanup):
            self._remove(ctx, logical_id, replaced, policy=replaced.update_replace_policy)
        for logical_id in removed:
            self._remove(ctx, logical_id, old[logical_id], policy=old[logical_id].deletion_policy)

        status = "CREATE_COMPLETE" if creating else ("UPDATE_COMPLETE" if changed else "NO_CHANGES")
        recorded = "UPDATE_COMPLETE" if status == "NO_CHANGES" else status
        self._set_status(stack_id, recorded)
        self.state.stacks[stack.name] = StackState(
            name=stack.name,
            stack_id=stack_id,
            status=recorded,
            resources=deployed,
            outputs=outputs,
            exports=exports,
            imports=sorted(resolver.used_imports),
            account=stack.environment.account,
            region=stack.environment.region,
        )
        return StackResult(stack.name, status, list(self._events), deployed, outputs)

    def _deploy_resource(
        self,
        ctx: resources.ResourceContext,
        resolver: TemplateResolver,
        stack: Stack,
        logical_id: str,
        previous: ResourceState | None,
    ) -> tuple[ResourceState, _Step | None, ResourceState | None]:
        """Create, update or keep one resource; returns its state, the undo step and what it replaced."""
        template = stack.resources[logical_id]
        resource_type = str(template["Type"])
        try:
            props = resolver.resolve(template.get("Properties", {}))
        except UnsupportedTemplateError as error:
            self._emit(
                stack.name,
                logical_id,
                resource_type,
                "CREATE_FAILED" if previous is None else "UPDATE_FAILED",
                reason=str(error),
            )
            raise _StepFailed(str(error)) from error

        support = self._supports.get(logical_id)
        if support is not None and not support.supported:
            return self._skip(ctx, stack, logical_id, resource_type, props, previous, support)
        if previous is not None and previous.handling == Handling.SKIPPED:
            previous = None  # never created: now it is
        if previous is None or previous.type != resource_type:
            created = self._create(ctx, logical_id, resource_type, props)
            current = self._with_template_settings(created, stack, logical_id)
            return current, _Step(logical_id, lambda: self._undo_create(ctx, logical_id, current)), previous
        if props == previous.properties:
            kept = self._with_template_settings(previous, stack, logical_id)
            return kept, None, None
        updated, replaced = self._update(ctx, logical_id, previous, props)
        current = self._with_template_settings(updated, stack, logical_id)
        if replaced:
            return current, _Step(logical_id, lambda: self._undo_replace(ctx, logical_id, current, previous)), previous
        return current, _Step(logical_id, lambda: self._undo_update(ctx, logical_id, current, previous)), None

    def _skip(
        self,
        ctx: resources.ResourceContext,
        stack: Stack,
        logical_id: str,
        resource_type: str,
        props: dict[str, Any],
        previous: ResourceState | None,
        support: Support,
    ) -> tuple[ResourceState, _Step | None, ResourceState | None]:
        """Record a custom resource the engine cannot run, without creating it."""
        reason = f"{NOT_SUPPORTED}: {support.detail}"
        if previous is not None and previous.handling != Handling.SKIPPED:
            # Created by an earlier deploy: kept as it is rather than deleted by surprise.
            kept = self._with_template_settings(previous, stack, logical_id)
            self._emit(ctx.stack.name, logical_id, resource_type, "UPDATE_SKIPPED", previous.physical_id, reason)
            return kept, None, None
        if previous is not None and props == previous.properties:
            return self._with_template_settings(previous, stack, logical_id), None, None
        physical_id = _SKIPPED_ID.format(stack=stack.name, logical_id=logical_id)
        skipped = ResourceState(resource_type, physical_id, props, handling=Handling.SKIPPED.value)
        current = self._with_template_settings(skipped, stack, logical_id)
        status = "CREATE_SKIPPED" if previous is None else "UPDATE_SKIPPED"
        self._emit(ctx.stack.name, logical_id, resource_type, status, physical_id, reason)
        return current, _Step(logical_id, lambda: None), None

    def _create(
        self, ctx: resources.ResourceContext, logical_id: str, resource_type: str, props: dict[str, Any]
    ) -> ResourceState:
        if is_custom(resource_type):
            handling = self._supports[logical_id].handling.value
            response = self._send(ctx, "Create", logical_id, resource_type, props, handling=handling)
            if not response.ok:
                failed = ResourceState(resource_type, response.physical_id, props, handling=handling)
                self._emit(
                    ctx.stack.name, logical_id, resource_type, "CREATE_FAILED", response.physical_id, response.reason
                )
                raise _StepFailed(response.reason, lambda: self._undo_create(ctx, logical_id, failed))
            state = ResourceState(resource_type, response.physical_id, props, _attributes(response), handling=handling)
        else:
            try:
                state = resources.create(ctx, logical_id, resource_type, props)
            except Exception as error:
                self._emit(ctx.stack.name, logical_id, resource_type, "CREATE_FAILED", reason=str(error))
                raise _StepFailed(str(error)) from error
        self._emit(ctx.stack.name, logical_id, resource_type, "CREATE_COMPLETE", state.physical_id)
        return state

    def _update(
        self, ctx: resources.ResourceContext, logical_id: str, previous: ResourceState, props: dict[str, Any]
    ) -> tuple[ResourceState, bool]:
        """Update in place or replace; returns the new state and whether it is a replacement."""
        resource_type = previous.type
        if is_custom(resource_type):
            handling = self._supports[logical_id].handling.value
            response = self._send(
                ctx,
                "Update",
                logical_id,
                resource_type,
                props,
                physical_id=previous.physical_id,
                old=previous.properties,
                handling=handling,
            )
            if not response.ok:
                self._emit(
                    ctx.stack.name, logical_id, resource_type, "UPDATE_FAILED", previous.physical_id, response.reason
                )
                failed = ResourceState(**{**previous.__dict__, "properties": props})
                # A failed replacement may name what it created: deleted in the rollback cleanup.
                orphan = (
                    dataclasses.replace(failed, physical_id=response.physical_id)
                    if response.physical_id and response.physical_id != previous.physical_id
                    else None
                )
                raise _StepFailed(
                    response.reason, lambda: self._undo_failed_update(ctx, logical_id, failed, previous, orphan)
                )
            state = ResourceState(
                **{**previous.__dict__, "physical_id": response.physical_id, "properties": props, "handling": handling}
            )
            state.attributes = _attributes(response)
            replaced = response.physical_id != previous.physical_id
        else:
            try:
                replaced = resources.replacement_reason(previous, props) is not None
                if replaced:
                    state = resources.create(ctx, logical_id, resource_type, props)
                else:
                    state = resources.update(ctx, logical_id, previous, props)
            except Exception as error:
                self._emit(ctx.stack.name, logical_id, resource_type, "UPDATE_FAILED", previous.physical_id, str(error))
                raise _StepFailed(str(error)) from error
        self._emit(
            ctx.stack.name,
            logical_id,
            resource_type,
            "UPDATE_COMPLETE" + (" (replacement)" if replaced else ""),
            state.physical_id,
        )
        return state, replaced

    # --------------------------------------------------------------- rollback
    def _roll_back(
        self,
        stack: Stack,
        stack_id: str,
        previous: StackState | None,
        creating: bool,
        failure: _StepFailed,
        done: list[_Step],
    ) -> StackResult:
        undo = ([failure.undo] if failure.undo is not None else []) + [step.undo for step in reversed(done)]
        self._rollback_cleanup, self._restored = [], {}
        prefix = "ROLLBACK" if creating else "UPDATE_ROLLBACK"
        self._set_status(stack_id, f"{prefix}_IN_PROGRESS")
        failed = False
        for action in undo:
            try:
                action()
            except _StepFailed:
                failed = True
        # UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS: what the failed update created goes last.
        if self._rollback_cleanup and not creating:
            self._set_status(stack_id, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        for action in self._rollback_cleanup:
            try:
                action()
            except _StepFailed:
                failed = True
        status = f"{prefix}_{'FAILED' if failed else 'COMPLETE'}"
        self._set_status(stack_id, status)
        if creating:
            where = stack.environment
            self.state.stacks[stack.name] = StackState(
                name=stack.name, stack_id=stack_id, status=status, account=where.account, region=where.region
            )
            return StackResult(stack.name, status, list(self._events))
        assert previous is not None
        previous.status = status
        previous.resources.update(self._restored)
        return StackResult(stack.name, status, list(self._events), dict(previous.resources), dict(previous.outputs))

    def _undo_create(self, ctx: resources.ResourceContext, logical_id: str, created: ResourceState) -> None:
        self._delete(ctx, logical_id, created)

    def _undo_replace(
        self, ctx: resources.ResourceContext, logical_id: str, current: ResourceState, previous: ResourceState
    ) -> None:
        """Roll back a replacement ``previous`` -> ``current``.

        A custom resource gets CloudFormation's rollback Update: the old
        properties, addressed to the new physical id. Other types need no call:
        the old resource is still there. Either way the new resource is deleted
        in the rollback cleanup, unless the rollback Update kept it.
        """
        if is_custom(current.type):
            self._rollback_update(ctx, logical_id, current, previous, addressed=current)
            return
        self._queue_cleanup(ctx, logical_id, current)

    def _undo_failed_update(
        self,
        ctx: resources.ResourceContext,
        logical_id: str,
        failed: ResourceState,
        previous: ResourceState,
        orphan: ResourceState | None,
    ) -> None:
        """Roll back an Update that failed: the rollback Update, then the failed attempt's own resource.

        ``orphan`` is the physical id the FAILED answer named, when it is not
        the resource's: CloudFormation no longer points at it, so it is
        deleted in the rollback cleanup (after every rollback Update).
        """
        try:
            self._undo_update(ctx, logical_id, failed, previous)
        finally:
            if orphan is not None:
                self._queue_cleanup(ctx, logical_id, orphan)

    def _undo_update(
        self, ctx: resources.ResourceContext, logical_id: str, current: ResourceState, previous: ResourceState
    ) -> None:
        if is_custom(current.type):
            # CloudFormation's rollback Update: the properties swapped back.
            self._rollback_update(ctx, logical_id, current, previous, addressed=previous)
            return
        resources.update(ctx, logical_id, current, previous.properties)
        self._emit(ctx.stack.name, logical_id, current.type, "UPDATE_COMPLETE", previous.physical_id)

    def _rollback_update(
        self,
        ctx: resources.ResourceContext,
        logical_id: str,
        current: ResourceState,
        previous: ResourceState,
        *,
        addressed: ResourceState,
    ) -> None:
        """Send the rollback Update to ``addressed``'s physical id with ``previous``'s properties.

        An answer naming another physical id is a replacement (back): the
        resource becomes that id and ``addressed`` is deleted in the cleanup.
        """
        response = self._send(
            ctx,
            "Update",
            logical_id,
            current.type,
            previous.properties,
            physical_id=addressed.physical_id,
            old=current.properties,
            handling=handling_of_deployed(current),
        )
        status = "UPDATE_COMPLETE" if response.ok else "UPDATE_FAILED"
        self._emit(ctx.stack.name, logical_id, current.type, status, response.physical_id, response.reason)
        if not response.ok:
            raise _StepFailed(response.reason)
        if response.physical_id != previous.physical_id or response.data:
            # The stack now points at what the rollback Update answered, with its attributes.
            restored = dataclasses.replace(previous, physical_id=response.physical_id)
            restored.attributes = _attributes(response) or dict(previous.attributes)
            self._restored[logical_id] = restored
        if response.physical_id != addressed.physical_id:
            self._queue_cleanup(ctx, logical_id, addressed)

    def _queue_cleanup(self, ctx: resources.ResourceContext, logical_id: str, created: ResourceState) -> None:
        # What the failed update created goes in the rollback cleanup; Retain keeps it.
        retain = "Retain" in (created.update_replace_policy, created.deletion_policy)
        policy = "Retain" if retain else "Delete"
        self._rollback_cleanup.append(lambda: self._remove(ctx, logical_id, created, policy=policy, strict=True))

    # ----------------------------------------------------------------- delete
    def destroy(self, stack_name: str) -> StackResult:
        """Delete a deployed stack, in reverse dependency order, honouring ``Retain``."""
        self._events = []
        deployed = self.state.stacks.get(stack_name)
        if deployed is None:
            return StackResult(stack_name, "DELETE_COMPLETE")
        importers = self.state.importers(set(deployed.exports), excluding=stack_name)
        if importers:
            users = "; ".join(f"{name} imports {', '.join(names)}" for name, names in sorted(importers.items()))
            self._emit(
                stack_name, stack_name, "AWS::CloudFormation::Stack", "DELETE_FAILED", reason=f"exports in use: {users}"
            )
            return StackResult(stack_name, "DELETE_FAILED", list(self._events), dict(deployed.resources))
        stack = Stack(
            name=stack_name,
            outdir=self.state.assets_dir,
            template={"Resources": {}},
            environment=deployed.environment,
        )
        ctx = resources.ResourceContext(self.aws, stack, deployed.stack_id, self.state.assets_dir)
        self._set_status(deployed.stack_id, "DELETE_IN_PROGRESS")
        failed = False
        for logical_id in reversed(self._order_of(deployed.resources)):
            resource = deployed.resources[logical_id]
            try:
                self._remove(ctx, logical_id, resource, policy=resource.deletion_policy, strict=True)
            except _StepFailed:
                failed = True
                continue
            del deployed.resources[logical_id]
        if failed:
            deployed.status = "DELETE_FAILED"
            self._set_status(deployed.stack_id, "DELETE_FAILED")
            return StackResult(stack_name, "DELETE_FAILED", list(self._events), dict(deployed.resources))
        self._set_status(deployed.stack_id, "DELETE_COMPLETE")
        del self.state.stacks[stack_name]
        return StackResult(stack_name, "DELETE_COMPLETE", list(self._events))

    def _remove(
        self,
        ctx: resources.ResourceContext,
        logical_id: str,
        resource: ResourceState,
        *,
        policy: str,
        strict: bool = False,
    ) -> None:
        """Delete in a cleanup phase or a stack deletion; ``Retain`` keeps the resource."""
        if policy == "Retain":
            self._emit(ctx.stack.name, logical_id, resource.type, "DELETE_SKIPPED", resource.physical_id, "Retain")
            return
        try:
            self._delete(ctx, logical_id, resource)
        except _StepFailed:
            # A failed cleanup delete leaves the stack updated; a stack deletion fails.
            if strict:
                raise

    def _delete(self, ctx: resources.ResourceContext, logical_id: str, resource: ResourceState) -> None:
        handling = handling_of_deployed(resource) if is_custom(resource.type) else None
        if handling is Handling.SKIPPED:
            reason = "never created: it was skipped (not supported locally)"
            self._emit(ctx.stack.name, logical_id, resource.type, "DELETE_SKIPPED", resource.physical_id, reason)
            return
        if handling is not None:
            response = self._send(
                ctx,
                "Delete",
                logical_id,
                resource.type,
                resource.properties,
                physical_id=resource.physical_id,
                handling=handling,
            )
            if not response.ok:
                self._emit(
                    ctx.stack.name, logical_id, resource.type, "DELETE_FAILED", resource.physical_id, response.reason
                )
                raise _StepFailed(response.reason)
        else:
            try:
                resources.delete(ctx, resource)
            except Exception as error:
                self._emit(ctx.stack.name, logical_id, resource.type, "DELETE_FAILED", resource.physical_id, str(error))
                raise _StepFailed(str(error)) from error
        self._emit(ctx.stack.name, logical_id, resource.type, "DELETE_COMPLETE", resource.physical_id)

    # ------------------------------------------------------------------- plan
    def plan(self, stack: Stack) -> list[PlannedChange]:
        """What :meth:`deploy` would do to each resource; changes nothing.

        A custom resource the engine cannot run is ``not supported locally``
        (it fails the deploy), or ``skip (not supported locally)`` when the
        engine skips those.
        """
        previous = self.state.stacks.get(stack.name)
        old = {} if previous is None or previous.status.startswith("ROLLBACK") else previous.resources
        resolver = TemplateResolver(
            stack,
            previous.stack_id if previous else self._new_stack_id(stack),
            imports=self.state.exports(excluding=stack.name),
            unknown=_UNKNOWN.format,
        )
        for logical_id, resource in old.items():
            _record(resolver, logical_id, resource)
        check_template(stack)
        supports = self._support_of(stack)
        live = _LiveJobs(self.aws, stack.environment)
        changes = []
        for logical_id in stack.creation_order():
            template = stack.resources[logical_id]
            resource_type = str(template["Type"])
            try:
                props = resolver.resolve(template.get("Properties", {}))
            except UnsupportedTemplateError as error:
                changes.append(PlannedChange(logical_id, resource_type, "fail", str(error), fails=True))
                continue
            support = supports.get(logical_id)
            if support is not None and not support.supported:
                change = self._plan_unsupported(stack, logical_id, resource_type, old.get(logical_id), support)
                if change.action == SKIP_NOT_SUPPORTED:
                    resolver.record_skipped(logical_id, change.physical_id, NOT_SUPPORTED)
                else:
                    resolver.forget(logical_id)
                changes.append(change)
                continue
            deployed = old.get(logical_id)
            if deployed is not None and deployed.handling == Handling.SKIPPED:
                deployed = None  # recorded, never created: the deploy creates it
            change = _plan_resource(logical_id, resource_type, props, deployed, live, support)
            if change.action in {"create", "replace"}:
                resolver.forget(logical_id)  # its Ref and attributes are only known after the deploy
            changes.append(change)
        for logical_id in old:
            if logical_id not in stack.resources:
                resource = old[logical_id]
                action = "retain" if resource.deletion_policy == "Retain" else "delete"
                job_id = (job_id_of(resource.physical_id) or "") if resource.type == IOT_JOB_TYPE else ""
                changes.append(
                    PlannedChange(
                        logical_id,
                        resource.type,
                        action,
                        "removed from the template",
                        resource.physical_id,
                        job_id=job_id,
                    )
                )
        return changes

    def _plan_unsupported(
        self,
        stack: Stack,
        logical_id: str,
        resource_type: str,
        previous: ResourceState | None,
        support: Support,
    ) -> PlannedChange:
        physical_id = previous.physical_id if previous is not None else ""
        if self.skip_unsupported:
            if previous is None or previous.handling == Handling.SKIPPED:
                physical_id = _SKIPPED_ID.format(stack=stack.name, logical_id=logical_id)
                return PlannedChange(logical_id, resource_type, SKIP_NOT_SUPPORTED, support.detail, physical_id)
            detail = f"{support.detail}; the deployed resource is kept as it is"
            return PlannedChange(logical_id, resource_type, SKIP_NOT_SUPPORTED, detail, physical_id)
        detail = f"{support.detail}; deploy refuses the stack ({SKIP_FLAG} records it as skipped)"
        return PlannedChange(logical_id, resource_type, NOT_SUPPORTED, detail, physical_id, fails=True)

    # ---------------------------------------------------------------- helpers
    def _support_of(self, stack: Stack) -> dict[str, Support]:
        """How each custom resource of ``stack`` runs locally."""
        resolver = TemplateResolver(stack, imports=self.state.exports(excluding=stack.name), unknown=_UNKNOWN.format)
        supports: dict[str, Support] = {}
        for logical_id, resource in stack.resources.items():
            if not is_custom(str(resource.get("Type"))):
                continue
            # An imported ServiceToken names a function another stack deployed.
            try:
                token = resolver.resolve((resource.get("Properties") or {}).get("ServiceToken"))
            except UnsupportedTemplateError:
                token = None
            provider = self._function(str(token)) if isinstance(token, str) else None
            supports[logical_id] = support_of(stack, logical_id, provider=provider)
        return supports

    def _send(
        self,
        ctx: resources.ResourceContext,
        request_type: str,
        logical_id: str,
        resource_type: str,
        props: dict[str, Any],
        *,
        physical_id: str | None = None,
        old: dict[str, Any] | None = None,
        handling: str,
    ) -> CustomResourceResponse:
        event = custom_resource_event(
            request_type,
            stack_id=ctx.stack_id,
            logical_id=logical_id,
            resource_type=resource_type,
            properties=props,
            physical_id=physical_id,
            old_properties=old,
        )
        kind = Handling(handling)
        provider = self._function(str(props.get("ServiceToken"))) if kind is Handling.PROVIDER else None
        return deliver(
            self.aws,
            event,
            kind,
            environment=ctx.environment,
            provider=provider,
            assets_dir=self.state.assets_dir,
            watcher=self.watcher,
        )

    def _function(self, arn: str) -> ResourceState | None:
        # The provider may live in this stack (being deployed) or another one.
        candidates = list(self._current.values())
        for stack in self.state.stacks.values():
            candidates.extend(stack.resources.values())
        for resource in candidates:
            if resource.type == "AWS::Lambda::Function" and resource.attributes.get("Arn") == arn:
                return resource
        return None

    def _with_template_settings(self, resource: ResourceState, stack: Stack, logical_id: str) -> ResourceState:
        # A copy: the previous stack state must survive a rollback unchanged.
        resource = dataclasses.replace(resource, dependencies=list(resource.dependencies))
        template = stack.resources[logical_id]
        resource.dependencies = stack.dependencies(logical_id)
        resource.deletion_policy = str(template.get("DeletionPolicy", "Delete"))
        resource.update_replace_policy = str(template.get("UpdateReplacePolicy", "Delete"))
        self._current[logical_id] = resource
        return resource

    def _outputs(
        self, stack: Stack, resolver: TemplateResolver, creating: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The stack's Outputs and exports; one that cannot be resolved fails the stack."""
        outputs: dict[str, str] = {}
        exports: dict[str, str] = {}
        for name, output in (stack.template.get("Outputs") or {}).items():
            try:
                value = _output_text(resolver.resolve(output["Value"]))
                outputs[name] = value
                if "Export" in output:
                    exports[str(resolver.resolve(output["Export"]["Name"]))] = value
            except UnsupportedTemplateError as error:
                # E.g. an attribute the provider did not answer: known only now.
                reason = f"Outputs.{name}: {error}"
                status = "CREATE_FAILED" if creating else "UPDATE_FAILED"
                self._emit(stack.name, stack.name, "AWS::CloudFormation::Stack", status, reason=reason)
                raise _StepFailed(reason) from error
        return outputs, exports

    @staticmethod
    def _order_of(deployed: dict[str, ResourceState]) -> list[str]:
        """Deployed resources, each after those it depends on."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            if name in ordered or name not in deployed:
                return
            for dependency in deployed[name].dependencies:
                visit(dependency)
            ordered.append(name)

        for name in deployed:
            visit(name)
        return ordered

    def _set_status(self, stack_id: str, status: str) -> None:
        """The stack's status from now on, as DescribeStacks answers it."""
        self.aws.stack_status[stack_id] = status

    def _emit(
        self, stack: str, logical_id: str, resource_type: str, status: str, physical_id: str = "", reason: str = ""
    ) -> None:
        event = Progress(stack, logical_id, resource_type, status, physical_id, reason)
        self._events.append(event)
        self._progress(event)

    @staticmethod
    def _new_stack_id(stack: Stack) -> str:
        return stack.environment.arn("cloudformation", f"stack/{stack.name}/{uuid.uuid4()}")


def _record(resolver: TemplateResolver, logical_id: str, resource: ResourceState) -> None:
    """Tell the resolver a resource's Ref and attributes; a skipped one has none."""
    if resource.handling == Handling.SKIPPED:
        resolver.record_skipped(logical_id, resource.physical_id, NOT_SUPPORTED)
    else:
        resolver.record(logical_id, resource.physical_id, resource.attributes)


def _attributes(response: CustomResourceResponse) -> dict[str, str]:
    return {key: str(value) for key, value in response.data.items()}


def _output_text(value: Any) -> str:
    # An output is a string; a list (Fn::Split, a list parameter) reads as CloudFormation lists it.
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


class _LiveJobs:
    """The jobs moto holds, by JobId, read once per plan through ListJobs.

    ListJobs rather than DescribeJob: the fake counts DescribeJob calls down
    to finish a deletion, and a plan must change nothing.
    """

    def __init__(self, aws: LocalAws, environment: Environment) -> None:
        self._aws = aws
        self._environment = environment
        self._statuses: dict[str, str] | None = None

    def status(self, job_id: str) -> str | None:
        """The job's status, or ``None`` when moto has no such job in the stack's account and region."""
        if self._statuses is None:
            iot = self._aws.client("iot", account=self._environment.account, region=self._environment.region)
            statuses: dict[str, str] = {}
            for page in iot.get_paginator("list_jobs").paginate():
                statuses.update({job["jobId"]: str(job.get("status")) for job in page.get("jobs", [])})
            self._statuses = statuses
        return self._statuses.get(job_id)


def _is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("<known after deploy")


def _plan_resource(
    logical_id: str,
    resource_type: str,
    props: dict[str, Any],
    previous: ResourceState | None,
    live: _LiveJobs,
    support: Support | None = None,
) -> PlannedChange:
    physical_id = previous.physical_id if previous else ""
    if resource_type != IOT_JOB_TYPE:
        if previous is None or previous.type != resource_type:
            # How a custom resource runs locally: the provider process, CDK's emulated handler, an SDK call.
            return PlannedChange(logical_id, resource_type, "create", support.detail if support else "")
        if props == previous.properties:
            return PlannedChange(logical_id, resource_type, "no change", physical_id=physical_id)
        reason = None if is_custom(resource_type) else resources.replacement_reason(previous, props)
        if reason is not None:
            return PlannedChange(logical_id, resource_type, "replace", reason, physical_id)
        return PlannedChange(logical_id, resource_type, "update", physical_id=physical_id)
    job_id = job_id_of(physical_id) or ""
    try:
        new = schema.parse_properties(props, is_unresolved=_is_unknown)
    except schema.InvalidPropertyError as error:
        action = "create" if previous is None else "update"
        return PlannedChange(
            logical_id, resource_type, action, f"will fail: {error}", physical_id, fails=True, job_id=job_id
        )
    if previous is None:
        fixed = new.get("JobId")
        detail = "JobId " + str(fixed or "generated")
        return PlannedChange(logical_id, resource_type, "create", detail, job_id=str(fixed or ""))
    # Why the deployed job is missing, if it is: the provider does not create it again in place.
    missing = _missing_job(physical_id, job_id, live)
    if props == previous.properties:
        if missing:
            detail = f"{missing}; nothing changed, so no event is sent and it is not created again"
            return PlannedChange(logical_id, resource_type, SKIP_DELETED, detail, physical_id, job_id=job_id)
        return PlannedChange(logical_id, resource_type, "no change", physical_id=physical_id, job_id=job_id)
    try:
        old: dict[str, Any] | None = schema.parse_properties(previous.properties)
    except schema.InvalidPropertyError:
        old = None
    # decide_update compares JobIds: the deployed one is in the ARN.
    decision = decide_update(new, old, job_id or physical_id, old_job_id=previous.properties.get("JobId"))
    if missing and decision.action in {"none", "update"}:
        detail = (
            f"{missing}; the provider answers the Update with the same physical id "
            f"and it is not created again ({decision.reason})"
        )
        return PlannedChange(logical_id, resource_type, SKIP_DELETED, detail, physical_id, job_id=job_id)
    actions = {"none": "update in place", "update": "update in place", "replace": "replace", "refuse": "update fails"}
    detail = (
        decision.reason
        if decision.action != "none"
        else "only ServiceToken/ServiceTimeout changed: the job is untouched"
    )
    if missing and decision.action == "replace":
        detail += f" ({missing}: the replacement is a new job)"
    return PlannedChange(
        logical_id,
        resource_type,
        actions[decision.action],
        detail,
        physical_id,
        fails=decision.action == "refuse",
        job_id=job_id,
    )


def _missing_job(physical_id: str, job_id: str, live: _LiveJobs) -> str:
    """Why the job a deployed physical id names is not there, or ``""`` when it is."""
    if not job_id:
        return f"physical id {physical_id!r} names no job"
    status = live.status(job_id)
    if status is None:
        return f"job {job_id} no longer exists (deleted outside the stack)"
    if status == _DELETING:
        return f"job {job_id} is being deleted (outside the stack)"
    return ""
