"""Embedded AWS for local deploys: moto with the strict IoT fake, a stand-in for
CloudFormation's response bucket, and Lambda-like processes for providers.

Accounts
    One ``ThreadedMotoServer`` holds every account. moto 5 picks the account of
    a request from its credentials (its "multi-account" docs): plain fake keys
    land in the default account (:data:`DEFAULT_ACCOUNT`), and keys from an
    STS ``AssumeRole`` into a role ARN of another account land in that account
    (the role need not exist). :meth:`LocalAws.credentials` hands out such keys
    per account, so in-process clients and provider processes, which only see
    environment variables, reach the same account. The other ways moto offers
    do not fit: ``MOTO_ACCOUNT_ID`` is one variable for the whole process (and
    overrides everything, so :class:`LocalAws` refuses to start with it set),
    and the ``x-moto-account-id`` header cannot be added by a provider's own
    boto3.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from .cfn_endpoint import CloudFormationEndpoint
from .environment import DEFAULT_ACCOUNT, DEFAULT_PARTITION, DEFAULT_REGION
from .iot_fake import StrictIotFake
from .job_ids import job_id_of
from .lambda_process import LambdaProcess, lambda_runtime_path

if TYPE_CHECKING:  # boto3-stubs: development only
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iot import IoTClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_PARTITION", "DEFAULT_REGION", "CustomResourceResponse", "LocalAws"]

_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# The role assumed to reach another account; moto does not require it to exist.
_ACCOUNT_ROLE = "arn:aws:iam::{account}:role/cdk-iot-job-local"
# Path-style S3 addressing: a bucket name cannot be a subdomain of 127.0.0.1.
_CONFIG = Config(s3={"addressing_style": "path"})


@dataclass(frozen=True)
class CustomResourceResponse:
    """What CloudFormation received for one custom resource event."""

    status: str
    physical_id: str
    reason: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the provider answered SUCCESS."""
        return self.status == "SUCCESS"


class LocalAws:
    """moto on loopback, the HTTPS response endpoint and one process per provider.

    Use as a context manager. Boto3 clients from :meth:`client` talk to the
    embedded moto, in the account and region asked for; :meth:`invoke` runs a
    provider's handler from its asset folder the way Lambda does and returns
    the response it PUT. Every account and region used is remembered, so
    :meth:`snapshot` saves all of them.
    """

    def __init__(self, *, deletion_polls: int = 1, fake: StrictIotFake | None = None) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        # Targets must exist, as in IoT: a job for a thing the stack never made fails locally too.
        # A caller may bring its own fake (a subclass, for example); it is installed and removed here.
        self.fake = fake or StrictIotFake(deletion_polls=deletion_polls, check_targets=True)
        self.endpoint = CloudFormationEndpoint()
        self._providers: dict[tuple[Path, float, str, str, tuple[tuple[str, str], ...]], LambdaProcess] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="cdk-iot-job-local-")
        self._runtime_path: Path | None = None
        self._credentials: dict[str, dict[str, str]] = {}
        # What snapshot() saves: each account used, with the regions whose IoT state it holds.
        self._environments: dict[str, set[str]] = {DEFAULT_ACCOUNT: {DEFAULT_REGION}}
        self.endpoint_url = ""

    def __enter__(self) -> LocalAws:
        if "MOTO_ACCOUNT_ID" in os.environ:
            # moto would put every request in that one account, whatever the stack's environment.
            raise RuntimeError("unset MOTO_ACCOUNT_ID: each stack is deployed to its own account")
        # The moto server's request log would drown the deploy's progress lines.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.fake.install()
        self.endpoint.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for process in self._providers.values():
            process.stop()
        self._providers.clear()
        self.endpoint.stop()
        self.fake.uninstall()
        self._server.stop()
        self._tmp.cleanup()

    # ------------------------------------------------------------- accounts
    def credentials(self, account: str = DEFAULT_ACCOUNT) -> dict[str, str]:
        """Environment variables (``AWS_ACCESS_KEY_ID``, ...) with which moto serves ``account``.

        The default account's are fixed fake keys; another account's come from
        an STS AssumeRole into a role of that account, once per run. moto
        forgets those on a reset (``/moto-api/reset``): reset before the first
        use, as the tests do.
        """
        if account == DEFAULT_ACCOUNT:
            return dict(_CREDENTIALS)
        if account not in self._credentials:
            sts = self.client_with("sts", _CREDENTIALS, DEFAULT_REGION)
            assumed = sts.assume_role(
                RoleArn=_ACCOUNT_ROLE.format(account=account),
                RoleSessionName="cdk-iot-job-local",
                DurationSeconds=43200,
            )["Credentials"]
            self._credentials[account] = {
                "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
                "AWS_SESSION_TOKEN": assumed["SessionToken"],
            }
        return dict(self._credentials[account])

    def session(self, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> boto3.Session:
        """A boto3 session whose clients moto serves in ``account`` (still pass ``endpoint_url``)."""
        credentials = self.credentials(account)
        return boto3.Session(
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )

    @overload
    def client(
        self, service: Literal["iot"], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
    ) -> IoTClient: ...
    @overload
    def client(
        self, service: Literal["s3"], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
    ) -> S3Client: ...
    @overload
    def client(
        self, service: Literal["iam"], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
    ) -> IAMClient: ...
    @overload
    def client(
        self, service: Literal["sts"], *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
    ) -> STSClient: ...

    def client(
        self,
        service: Literal["iot", "s3", "iam", "sts"],
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
    ) -> IoTClient | S3Client | IAMClient | STSClient:
        """A boto3 client for ``service`` on the embedded moto, in ``account`` and ``region``."""
        self._use(account, region if service == "iot" else None)
        client: IoTClient | S3Client | IAMClient | STSClient = self.client_with(
            service, self.credentials(account), region
        )
        return client

    def any_client(self, service: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> Any:
        """A boto3 client for any service moto serves (an SDK call names it at deploy time)."""
        self._use(account, region if service == "iot" else None)
        return self.client_with(service, self.credentials(account), region)

    def _use(self, account: str, region: str | None) -> None:
        """Remember an account (IAM, S3) and a region of it (IoT) for :meth:`snapshot`."""
        regions = self._environments.setdefault(account, set())
        if region is not None:
            regions.add(region)

    def client_with(self, service: str, credentials: Mapping[str, str], region: str) -> Any:
        """A boto3 client on the embedded moto with these ``AWS_*`` credentials (an assumed role's, say)."""
        make: Any = boto3.client  # boto3-stubs' overloads want a literal service name
        return make(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
            config=_CONFIG,
        )

    # ---------------------------------------------------------------- state
    def restore(self, snapshot: dict[str, Any] | None) -> None:
        """Load a moto snapshot (:meth:`snapshot`) saved by an earlier run.

        A snapshot of the single-account layout (state files from before
        stacks had environments) is restored into the default account.
        """
        if not snapshot:
            return
        from .moto_state import restore, restore_accounts

        if "accounts" not in snapshot:
            restore(snapshot, endpoint_url=self.endpoint_url, region=str(snapshot.get("region", DEFAULT_REGION)))
            return
        for account, saved in snapshot["accounts"].items():
            self._use(account, None)
            for region in saved.get("iot", {}):
                self._use(account, region)
        restore_accounts(snapshot, session_for=self.session, endpoint_url=self.endpoint_url)

    def snapshot(self) -> dict[str, Any]:
        """Everything moto holds in the accounts and regions used, as JSON-ready data for the state file."""
        from .moto_state import snapshot_accounts

        return snapshot_accounts(self._environments, session_for=self.session, endpoint_url=self.endpoint_url)

    def describe_job(self, job_arn: str) -> dict[str, Any] | None:
        """IoT's DescribeJob answer (``job`` and ``documentSource``) for the job ARN, or ``None`` when gone.

        Asked in the ARN's account and region.
        """
        job_id = job_id_of(job_arn)
        if job_id is None:
            return None
        _arn, _partition, _service, region, account, _resource = job_arn.split(":", 5)
        iot = self.client("iot", account=account, region=region)
        try:
            return dict(iot.describe_job(jobId=job_id))
        except iot.exceptions.ResourceNotFoundException:
            return None

    # ------------------------------------------------------------ providers
    def invoke(
        self,
        asset_dir: Path,
        handler: str,
        event: dict[str, Any],
        *,
        timeout: float,
        variables: Mapping[str, str] | None = None,
    ) -> tuple[CustomResourceResponse, str]:
        """Send one custom resource event to the provider in ``asset_dir``.

        The provider runs in the account and region of the event's
        ``StackId``, with the function's environment ``variables``. Returns
        the response CloudFormation received and the provider's log of this
        invocation. A provider that never answers yields a FAILED response,
        as CloudFormation's ``ServiceTimeout`` would.
        """
        url = self.endpoint.response_url(str(event.get("LogicalResourceId", "resource")))
        event = {**event, "ResponseURL": url, "RequestId": event.get("RequestId") or str(uuid.uuid4())}
        account, region = _stack_environment(str(event.get("StackId", "")))
        process = self.provider(asset_dir, handler, timeout, account=account, region=region, variables=variables)
        result = process.invoke(event, timeout=timeout + 30)
        responses = self.endpoint.responses_for(url)
        if not responses:
            reason = result.get("error") or "the provider sent no response"
            fallback = str(event.get("PhysicalResourceId") or "")
            return CustomResourceResponse("FAILED", fallback, f"no response: {reason}", {}), str(result.get("logs", ""))
        body = responses[-1] if isinstance(responses[-1], dict) else {}
        response = CustomResourceResponse(
            status=str(body.get("Status", "FAILED")),
            physical_id=str(body.get("PhysicalResourceId", "")),
            reason=str(body.get("Reason", "")),
            data=dict(body.get("Data") or {}),
        )
        return response, str(result.get("logs", ""))

    def provider(
        self,
        asset_dir: Path,
        handler: str,
        timeout: float,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        variables: Mapping[str, str] | None = None,
    ) -> LambdaProcess:
        """The running process of the provider in ``asset_dir`` (started on first use).

        One process per asset folder, function timeout, account, region and
        environment variables, as :meth:`invoke` uses it; for its whole log or
        an introspection of what the handler can import. It gets the
        account's credentials and ``AWS_REGION``; the function's
        ``variables`` cannot override those, nor the endpoint.
        """
        extra = tuple(sorted((variables or {}).items()))
        key = (asset_dir.resolve(), timeout, account, region, extra)
        process = self._providers.get(key)
        if process is None:
            if self._runtime_path is None:
                self._runtime_path = lambda_runtime_path(Path(self._tmp.name))
            self._use(account, region)
            env = {
                **dict(extra),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "SSL_CERT_FILE": str(self.endpoint.ca_pem_path),
                **self.credentials(account),
            }
            process = LambdaProcess(
                asset_dir, handler, env, runtime_path=self._runtime_path, function_timeout=timeout, account_id=account
            ).start()
            self._providers[key] = process
        return process


def _stack_environment(stack_id: str) -> tuple[str, str]:
    """The account and region of a stack ARN; the defaults for anything else."""
    parts = stack_id.split(":")
    if len(parts) >= 6 and parts[2] == "cloudformation" and parts[3] and parts[4]:
        return parts[4], parts[3]
    return DEFAULT_ACCOUNT, DEFAULT_REGION
