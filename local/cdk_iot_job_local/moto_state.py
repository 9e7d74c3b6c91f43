"""Save and restore the part of moto's state the local engine needs between runs.

The local engine runs moto in its own process (a ``ThreadedMotoServer`` with
:class:`~cdk_iot_job_local.iot_fake.StrictIotFake` installed) and forgets it
when the process ends. :func:`snapshot` dumps what a later ``deploy``,
``plan`` or ``destroy`` must find again into a JSON-serializable dictionary;
:func:`restore` recreates it in a fresh moto.

:func:`snapshot` and :func:`restore` handle one account and region;
:func:`snapshot_accounts` and :func:`restore_accounts` handle several accounts
(each with its IAM roles and S3 buckets) and, in each, several regions (each
with its IoT state), as the local engine deploys stacks to their own
environments.

What is kept, in one account and region:

IoT things
    name, attributes, thingId.
IoT thing groups
    name, parent group, properties (description, attributes), thingGroupId,
    and the names of the things in the group.
IoT jobs
    jobId, status and every CreateJob parameter DescribeJob, GetJobDocument
    and ListTagsForResource show: targets, document or documentSource,
    description, targetSelection, presignedUrlConfig,
    jobExecutionsRolloutConfig, abortConfig, timeoutConfig,
    jobExecutionsRetryConfig, schedulingConfig, documentParameters,
    jobTemplateArn, namespaceId, destinationPackageVersions, tags, plus
    comment, reasonCode, forceCanceled, createdAt and completedAt.
IoT job executions
    for each job, what ListJobExecutionsForJob shows of each execution:
    thing name, status, executionNumber, queuedAt, startedAt and
    lastUpdatedAt. So a deployed job's executions and its jobProcessDetails
    counts (which the fake computes from them) survive between runs, and
    the fake's fleet goes on playing them from there.
IAM roles (global)
    name, path, assume role policy, description, maximum session duration,
    tags and inline policies.
S3 buckets (all of the account's)
    name, region, tags (CDK's handlers read them), and each object's key,
    body (base64), content type and user metadata.

Everything is read through the AWS API, so a snapshot shows what a client
would see. A job's ``createdAt`` is kept (it is the ``CreatedAt`` attribute
of its ``Custom::IotJob``, which must not change between runs), and so are
the times of its executions and ``completedAt``; other timestamps, ARNs
(derived from names, account and region) and versions are not. A state file
of format 1 has no executions: its jobs get fresh ones, as CreateJob makes
them.

Restoring goes through the API too, except where no API exists: the generated
``thingId``/``thingGroupId``, a job status other than ``IN_PROGRESS`` or
``CANCELED`` (such as ``COMPLETED``), a job's ``createdAt`` and
``completedAt`` and its executions are written onto moto's objects (the
executions through :meth:`StrictIotFake.restore_executions`), found through
``moto.iot.models.iot_backends``. That is why moto must run in the calling
process. A job that was ``DELETION_IN_PROGRESS`` is recorded by id and
status only (DescribeJob would advance the fake's deletion countdown) and is
treated as deleted: :func:`restore` skips it.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.iot.models import iot_backends

from .environment import DEFAULT_ACCOUNT, DEFAULT_REGION
from .iot_fake import StrictIotFake

__all__ = [
    "DEFAULT_ACCOUNT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "restore",
    "restore_accounts",
    "snapshot",
    "snapshot_accounts",
]

#: Version of the snapshot layout that :func:`snapshot` writes (2: with job executions).
FORMAT_VERSION = 2
#: Versions :func:`restore` reads; it refuses any other.
READABLE_VERSIONS = (1, 2)

_DELETING = "DELETION_IN_PROGRESS"
# DescribeJob fields that are CreateJob parameters of the same name.
_JOB_PARAMETERS = (
    "targets",
    "description",
    "targetSelection",
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "schedulingConfig",
    "documentParameters",
    "jobTemplateArn",
    "namespaceId",
    "destinationPackageVersions",
)
# Filled in after CreateJob, by CancelJob or directly on moto's job.
_JOB_OUTCOME = ("status", "comment", "reasonCode", "forceCanceled")
# Snapshot members that are no CreateJob parameter.
_NOT_PARAMETERS = (*_JOB_OUTCOME, "createdAt", "completedAt", "executions")
# Path-style S3 addressing: a bucket name cannot be a subdomain of 127.0.0.1.
_CONFIG = Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})


# ------------------------------------------------------------------ snapshot
def snapshot(session: boto3.Session | None, *, endpoint_url: str, region: str) -> dict[str, Any]:
    """Dump moto's IoT, IAM and S3 state through the AWS API.

    Parameters
    ----------
    session : boto3.Session or None
        Credentials for the calls; ``None`` uses fixed fake credentials, so
        neither real credentials nor an AWS profile are ever read.
    endpoint_url : str
        The moto server, e.g. ``http://127.0.0.1:5000``.
    region : str
        The region whose IoT state is dumped.

    Returns
    -------
    dict[str, Any]
        A JSON-serializable snapshot with a ``format_version`` key; lists are
        sorted by name or id so equal states give equal snapshots.
    """
    clients = _Clients(session, endpoint_url, region)
    return {
        "format_version": FORMAT_VERSION,
        "region": region,
        "iot": _snapshot_iot(clients.client("iot")),
        "iam": {"roles": _snapshot_roles(clients.client("iam"))},
        "s3": {"buckets": _snapshot_buckets(clients)},
    }


def snapshot_accounts(
    regions: Mapping[str, Iterable[str]], *, session_for: Callable[[str], boto3.Session], endpoint_url: str
) -> dict[str, Any]:
    """Dump several accounts: each one's IAM roles and S3 buckets once, its IoT state per region.

    Parameters
    ----------
    regions : Mapping[str, Iterable[str]]
        The regions to dump the IoT state of, by account.
    session_for : Callable[[str], boto3.Session]
        Credentials that moto maps to the given account.
    endpoint_url : str
        The moto server.

    Returns
    -------
    dict[str, Any]
        ``{"format_version": ..., "accounts": {account: {"iam": ..., "s3": ...,
        "iot": {region: {"things": ..., "thing_groups": ..., "jobs": ...}}}}}``,
        sorted, JSON-serializable.
    """
    accounts: dict[str, Any] = {}
    for account in sorted(regions):
        names = sorted(set(regions[account]))
        clients = _Clients(session_for(account), endpoint_url, names[0] if names else DEFAULT_REGION)
        accounts[account] = {
            "iam": {"roles": _snapshot_roles(clients.client("iam"))},
            "s3": {"buckets": _snapshot_buckets(clients)},
            "iot": {region: _snapshot_iot(clients.client("iot", region)) for region in names},
        }
    return {"format_version": FORMAT_VERSION, "accounts": accounts}


def _snapshot_iot(iot: Any) -> dict[str, Any]:
    return {"things": _snapshot_things(iot), "thing_groups": _snapshot_thing_groups(iot), "jobs": _snapshot_jobs(iot)}


def _snapshot_things(iot: Any) -> list[dict[str, Any]]:
    things = []
    for name in sorted(t["thingName"] for t in _items(iot, "list_things", "things")):
        described = iot.describe_thing(thingName=name)
        things.append(
            {"thingName": name, "thingId": described["thingId"], "attributes": described.get("attributes", {})}
        )
    return things


def _snapshot_thing_groups(iot: Any) -> list[dict[str, Any]]:
    groups = []
    for name in sorted(g["groupName"] for g in _items(iot, "list_thing_groups", "thingGroups")):
        described = iot.describe_thing_group(thingGroupName=name)
        members = _items(iot, "list_things_in_thing_group", "things", thingGroupName=name)
        groups.append(
            {
                "thingGroupName": name,
                "thingGroupId": described["thingGroupId"],
                "parentGroupName": described.get("thingGroupMetadata", {}).get("parentGroupName"),
                "thingGroupProperties": described.get("thingGroupProperties", {}),
                "things": sorted(members),
            }
        )
    return groups


def _snapshot_jobs(iot: Any) -> list[dict[str, Any]]:
    jobs = []
    for listed in sorted(_items(iot, "list_jobs", "jobs"), key=lambda j: str(j["jobId"])):
        job_id, status = listed["jobId"], listed["status"]
        if status == _DELETING:
            # Not DescribeJob: each call counts down the fake's deletion.
            jobs.append({"jobId": job_id, "status": status})
            continue
        described = iot.describe_job(jobId=job_id)
        job = described["job"]
        record: dict[str, Any] = {"jobId": job_id}
        record.update({name: job[name] for name in _JOB_PARAMETERS if job.get(name) is not None})
        if described.get("documentSource") is not None:
            record["documentSource"] = described["documentSource"]
        else:
            document = iot.get_job_document(jobId=job_id).get("document")
            # moto answers "" when there is none (a job from a template).
            if document or "jobTemplateArn" not in record:
                record["document"] = document
        record.update({name: job[name] for name in _JOB_OUTCOME if job.get(name) is not None})
        for name in ("createdAt", "completedAt"):
            if job.get(name) is not None:
                record[name] = job[name].isoformat()
        record["tags"] = _items(iot, "list_tags_for_resource", "tags", resourceArn=job["jobArn"])
        record["executions"] = _snapshot_executions(iot, job_id)
        jobs.append(record)
    return jobs


def _snapshot_executions(iot: Any, job_id: str) -> list[dict[str, Any]]:
    executions = []
    for listed in _items(iot, "list_job_executions_for_job", "executionSummaries", jobId=job_id):
        summary = listed["jobExecutionSummary"]
        record: dict[str, Any] = {
            # Thing names may hold colons, never slashes.
            "thingName": listed["thingArn"].rsplit("/", 1)[-1],
            "status": summary["status"],
            "executionNumber": summary["executionNumber"],
        }
        for name in ("queuedAt", "startedAt", "lastUpdatedAt"):
            if summary.get(name) is not None:
                record[name] = summary[name].isoformat()
        executions.append(record)
    return sorted(executions, key=lambda e: str(e["thingName"]))


def _snapshot_roles(iam: Any) -> list[dict[str, Any]]:
    roles = []
    for listed in sorted(_items(iam, "list_roles", "Roles"), key=lambda r: str(r["RoleName"])):
        name = listed["RoleName"]
        role = iam.get_role(RoleName=name)["Role"]
        record: dict[str, Any] = {
            "RoleName": name,
            "Path": role["Path"],
            # boto3 hands it over URL-decoded and parsed.
            "AssumeRolePolicyDocument": role["AssumeRolePolicyDocument"],
            "MaxSessionDuration": role.get("MaxSessionDuration", 3600),
        }
        if role.get("Description"):
            record["Description"] = role["Description"]
        tags = _items(iam, "list_role_tags", "Tags", RoleName=name)
        if tags:
            record["Tags"] = tags
        record["Policies"] = {
            policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in sorted(_items(iam, "list_role_policies", "PolicyNames", RoleName=name))
        }
        roles.append(record)
    return roles


def _snapshot_buckets(clients: _Clients) -> list[dict[str, Any]]:
    s3 = clients.client("s3")
    buckets = []
    for name in sorted(b["Name"] for b in _items(s3, "list_buckets", "Buckets")):
        # us-east-1 answers None.
        bucket_region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
        regional = clients.client("s3", bucket_region)
        objects = []
        for key in sorted(o["Key"] for o in _items(regional, "list_objects_v2", "Contents", Bucket=name)):
            got = regional.get_object(Bucket=name, Key=key)
            record: dict[str, Any] = {
                "Key": key,
                "Body": base64.b64encode(got["Body"].read()).decode("ascii"),
                "ContentType": got.get("ContentType", "binary/octet-stream"),
            }
            if got.get("Metadata"):
                record["Metadata"] = got["Metadata"]
            objects.append(record)
        record = {"Name": name, "Region": bucket_region, "Objects": objects}
        tags = _bucket_tags(regional, name)
        if tags:
            record["Tags"] = tags
        buckets.append(record)
    return buckets


def _bucket_tags(s3: Any, bucket: str) -> list[dict[str, str]]:
    try:
        return [{"Key": tag["Key"], "Value": tag["Value"]} for tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return []
        raise


# ------------------------------------------------------------------- restore
def restore(
    snapshot: dict[str, Any],
    *,
    endpoint_url: str,
    region: str,
    account: str = DEFAULT_ACCOUNT,
    session: boto3.Session | None = None,
) -> None:
    """Recreate a :func:`snapshot` in a fresh moto.

    moto must run in this process (e.g. a ``ThreadedMotoServer``) with
    :class:`~cdk_iot_job_local.iot_fake.StrictIotFake` installed, and hold
    none of the snapshot's resources yet. Creates the roles, buckets and
    objects, things, thing groups (parents first) and memberships, then the
    jobs with CreateJob (same id, parameters and tags), then brings each job's
    status back: ``CANCELED`` through CancelJob, others such as ``COMPLETED``
    on moto's job object; ``DELETION_IN_PROGRESS`` jobs count as deleted and
    are skipped.

    Parameters
    ----------
    snapshot : dict[str, Any]
        What :func:`snapshot` returned (possibly through JSON).
    endpoint_url : str
        The moto server.
    region : str
        The region to restore into; must be the snapshot's.
    account : str, default ``DEFAULT_ACCOUNT``
        The moto account the calls land in, for the few values written onto
        moto's objects directly.
    session : boto3.Session, optional
        Credentials for the calls; fixed fake ones by default.

    Raises
    ------
    ValueError
        On a ``format_version`` not in :data:`READABLE_VERSIONS`, another region, or when the
        credentials reach another moto account than ``account``.
    RuntimeError
        If no :class:`StrictIotFake` is installed (job tags and status would be
        lost).
    botocore.exceptions.ClientError
        If moto refuses a call, e.g. because a resource already exists.
    """
    _check_version(snapshot)
    if snapshot.get("region") != region:
        raise ValueError(f"the moto state is of region {snapshot.get('region')!r}, not {region!r}")

    # Without the fake, moto drops job tags and namespaceId silently.
    if StrictIotFake._installed is None:
        raise RuntimeError("restore needs a StrictIotFake installed in this process")

    clients = _Clients(session, endpoint_url, region)
    reached = clients.client("sts").get_caller_identity()["Account"]
    if reached != account:
        raise ValueError(f"the credentials reach moto account {reached}, not {account}")

    _restore_roles(clients.client("iam"), snapshot["iam"]["roles"])
    _restore_buckets(clients, snapshot["s3"]["buckets"])
    _restore_iot(clients.client("iot"), iot_backends[account][region], snapshot["iot"])


def restore_accounts(
    snapshot: Mapping[str, Any], *, session_for: Callable[[str], boto3.Session], endpoint_url: str
) -> None:
    """Recreate a :func:`snapshot_accounts` in a fresh moto, each account through its own credentials.

    Every account's roles and buckets come first, so the objects a job's
    ``documentSource`` names exist when the job is created again. The
    conditions of :func:`restore` apply.

    Raises
    ------
    ValueError
        On an unknown ``format_version``, or when ``session_for`` reaches
        another moto account than the one asked for.
    RuntimeError
        If no :class:`StrictIotFake` is installed.
    """
    _check_version(snapshot)
    if StrictIotFake._installed is None:
        raise RuntimeError("restore needs a StrictIotFake installed in this process")
    accounts: Mapping[str, Any] = snapshot.get("accounts", {})
    clients: dict[str, _Clients] = {}
    for account, saved in sorted(accounts.items()):
        clients[account] = _Clients(session_for(account), endpoint_url, DEFAULT_REGION)
        reached = clients[account].client("sts").get_caller_identity()["Account"]
        if reached != account:
            raise ValueError(f"the credentials for account {account} reach moto account {reached}")
        _restore_roles(clients[account].client("iam"), saved["iam"]["roles"])
        _restore_buckets(clients[account], saved["s3"]["buckets"])
    for account, saved in sorted(accounts.items()):
        for region, iot in sorted(saved["iot"].items()):
            _restore_iot(clients[account].client("iot", region), iot_backends[account][region], iot)


def _check_version(snapshot: Mapping[str, Any]) -> None:
    version = snapshot.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"unknown moto state format_version {version!r}; this version reads {READABLE_VERSIONS}")


def _restore_iot(iot: Any, backend: Any, saved: dict[str, Any]) -> None:
    _restore_things(iot, backend, saved["things"])
    _restore_thing_groups(iot, backend, saved["thing_groups"])
    # A job may outlive the thing or group it targets (IoT keeps it): restore it without the target check.
    fake = StrictIotFake._installed
    assert fake is not None
    checking = fake.check_targets
    fake.check_targets = False
    try:
        _restore_jobs(iot, backend, fake, saved["jobs"])
    finally:
        fake.check_targets = checking


def _restore_roles(iam: Any, roles: list[dict[str, Any]]) -> None:
    for role in roles:
        params: dict[str, Any] = {
            "RoleName": role["RoleName"],
            "Path": role["Path"],
            "AssumeRolePolicyDocument": _policy_text(role["AssumeRolePolicyDocument"]),
            "MaxSessionDuration": role["MaxSessionDuration"],
        }
        params.update({name: role[name] for name in ("Description", "Tags") if name in role})
        iam.create_role(**params)
        for policy, document in role["Policies"].items():
            iam.put_role_policy(RoleName=role["RoleName"], PolicyName=policy, PolicyDocument=_policy_text(document))


def _restore_buckets(clients: _Clients, buckets: list[dict[str, Any]]) -> None:
    for bucket in buckets:
        s3 = clients.client("s3", bucket["Region"])
        if bucket["Region"] == "us-east-1":
            s3.create_bucket(Bucket=bucket["Name"])
        else:
            s3.create_bucket(Bucket=bucket["Name"], CreateBucketConfiguration={"LocationConstraint": bucket["Region"]})
        if bucket.get("Tags"):
            s3.put_bucket_tagging(Bucket=bucket["Name"], Tagging={"TagSet": bucket["Tags"]})
        for obj in bucket["Objects"]:
            s3.put_object(
                Bucket=bucket["Name"],
                Key=obj["Key"],
                Body=base64.b64decode(obj["Body"]),
                ContentType=obj["ContentType"],
                Metadata=obj.get("Metadata", {}),
            )


def _restore_things(iot: Any, backend: Any, things: list[dict[str, Any]]) -> None:
    for thing in things:
        iot.create_thing(thingName=thing["thingName"], attributePayload={"attributes": thing["attributes"]})
        # Generated by moto; templates may have recorded it (Fn::GetAtt Id).
        backend.describe_thing(thing["thingName"]).thing_id = thing["thingId"]


def _restore_thing_groups(iot: Any, backend: Any, groups: list[dict[str, Any]]) -> None:
    pending, created = list(groups), set[str]()
    while pending:
        ready = [g for g in pending if g.get("parentGroupName") in (None, *created)]
        if not ready:
            names = sorted(g["thingGroupName"] for g in pending)
            raise ValueError(f"thing groups {names} have parents missing from the moto state")
        for group in ready:
            params: dict[str, Any] = {
                "thingGroupName": group["thingGroupName"],
                "thingGroupProperties": group["thingGroupProperties"],
            }
            if group.get("parentGroupName"):
                params["parentGroupName"] = group["parentGroupName"]
            iot.create_thing_group(**params)
            backend.describe_thing_group(group["thingGroupName"]).thing_group_id = group["thingGroupId"]
            for thing in group["things"]:
                iot.add_thing_to_thing_group(thingGroupName=group["thingGroupName"], thingName=thing)
            created.add(group["thingGroupName"])
        pending = [g for g in pending if g["thingGroupName"] not in created]


def _restore_jobs(iot: Any, backend: Any, fake: StrictIotFake, jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        status = job["status"]
        if status == _DELETING:
            continue  # its deletion has finished by now, as far as anyone can tell
        iot.create_job(**{name: value for name, value in job.items() if name not in _NOT_PARAMETERS})
        if "createdAt" in job:
            # No API sets it: write it on moto's job, so DescribeJob answers the original.
            backend.jobs[job["jobId"]].created_at = _timestamp(job["createdAt"])
        if status == "CANCELED":
            cancel: dict[str, Any] = {"jobId": job["jobId"], "force": job.get("forceCanceled", False)}
            cancel.update({name: job[name] for name in ("comment", "reasonCode") if name in job})
            iot.cancel_job(**cancel)
        elif status != "IN_PROGRESS":
            # No API sets COMPLETED (or any other status): write it on moto's job.
            fake_job = backend.jobs[job["jobId"]]
            fake_job.status = status
            fake_job.comment = job.get("comment")
            fake_job.reason_code = job.get("reasonCode")
            fake_job.force = job.get("forceCanceled", False)
            if "completedAt" in job:
                fake_job.completed_at = _timestamp(job["completedAt"])
        if "executions" in job:  # a format 1 file has none: CreateJob's fresh ones stay
            fake.restore_executions(backend, job["jobId"], [_execution(record) for record in job["executions"]])


def _execution(record: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot's execution record with its times as moto keeps them."""
    times = ("queuedAt", "startedAt", "lastUpdatedAt")
    return {name: _timestamp(value) if name in times else value for name, value in record.items()}


# ------------------------------------------------------------------- helpers
def _timestamp(text: str) -> datetime.datetime:
    # moto keeps naive UTC datetimes (utcnow()); botocore answers aware ones.
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed


class _Clients:
    """boto3 clients for one moto endpoint, created once per service and region."""

    def __init__(self, session: boto3.Session | None, endpoint_url: str, region: str) -> None:
        if session is None:
            # moto accepts any credentials; fixed ones keep real ones out of it.
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
                region_name=region,
            )
        # Any: boto3-stubs' client() overloads want a literal service name.
        self._session: Any = session
        self._endpoint_url = endpoint_url
        self._region = region
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self._region)
        if key not in self._clients:
            self._clients[key] = self._session.client(
                service,
                region_name=key[1],
                endpoint_url=self._endpoint_url,
                config=_CONFIG,
            )
        return self._clients[key]


def _items(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    """Every item of a paginated list call."""
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        found.extend(page.get(key) or [])
    return found


def _policy_text(document: Any) -> str:
    # boto3 parses policy documents it can; one it could not stays a string.
    return document if isinstance(document, str) else json.dumps(document)
