"""Embedded AWS for local deploys: moto with the strict IoT fake, a stand-in for
CloudFormation's response bucket, and Lambda-like processes for providers."""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from moto.server import ThreadedMotoServer

from .cfn_endpoint import CloudFormationEndpoint
from .iot_fake import StrictIotFake
from .job_ids import job_id_of
from .lambda_process import LambdaProcess, lambda_runtime_path

if TYPE_CHECKING:  # boto3-stubs: development only
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iot import IoTClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

__all__ = ["ACCOUNT", "PARTITION", "REGION", "CustomResourceResponse", "LocalAws"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


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
    embedded moto; :meth:`invoke` runs a provider's handler from its asset
    folder the way Lambda does and returns the response it PUT.
    """

    def __init__(self, *, deletion_polls: int = 1, fake: StrictIotFake | None = None) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        # Targets must exist, as in IoT: a job for a thing the stack never made fails locally too.
        # A caller may bring its own fake (a subclass, for example); it is installed and removed here.
        self.fake = fake or StrictIotFake(deletion_polls=deletion_polls, check_targets=True)
        self.endpoint = CloudFormationEndpoint()
        self._providers: dict[tuple[Path, float], LambdaProcess] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="cdk-iot-job-local-")
        self._runtime_path: Path | None = None
        self.endpoint_url = ""

    def __enter__(self) -> LocalAws:
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

    @overload
    def client(self, service: Literal["iot"]) -> IoTClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["iam"]) -> IAMClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...

    def client(self, service: Literal["iot", "s3", "iam", "sts"]) -> IoTClient | S3Client | IAMClient | STSClient:
        """A boto3 client for ``service`` on the embedded moto."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def restore(self, snapshot: dict[str, Any] | None) -> None:
        """Load a moto snapshot (:meth:`snapshot`) saved by an earlier run."""
        if snapshot:
            from .moto_state import restore

            restore(snapshot, endpoint_url=self.endpoint_url, region=REGION)

    def snapshot(self) -> dict[str, Any]:
        """Everything moto holds, as JSON-ready data for the state file."""
        from .moto_state import snapshot

        return snapshot(None, endpoint_url=self.endpoint_url, region=REGION)

    def describe_job(self, job_arn: str) -> dict[str, Any] | None:
        """IoT's DescribeJob answer (``job`` and ``documentSource``) for the job ARN, or ``None`` when gone."""
        job_id = job_id_of(job_arn)
        if job_id is None:
            return None
        iot = self.client("iot")
        try:
            return dict(iot.describe_job(jobId=job_id))
        except iot.exceptions.ResourceNotFoundException:
            return None

    def invoke(
        self, asset_dir: Path, handler: str, event: dict[str, Any], *, timeout: float
    ) -> tuple[CustomResourceResponse, str]:
        """Send one custom resource event to the provider in ``asset_dir``.

        Returns the response CloudFormation received and the provider's log of
        this invocation. A provider that never answers yields a FAILED
        response, as CloudFormation's ``ServiceTimeout`` would.
        """
        url = self.endpoint.response_url(str(event.get("LogicalResourceId", "resource")))
        event = {**event, "ResponseURL": url, "RequestId": event.get("RequestId") or str(uuid.uuid4())}
        process = self.provider(asset_dir, handler, timeout)
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

    def provider(self, asset_dir: Path, handler: str, timeout: float) -> LambdaProcess:
        """The running process of the provider in ``asset_dir`` (started on first use).

        One process per asset folder and function timeout, as :meth:`invoke` uses it;
        for its whole log or an introspection of what the handler can import.
        """
        key = (asset_dir.resolve(), timeout)
        process = self._providers.get(key)
        if process is None:
            if self._runtime_path is None:
                self._runtime_path = lambda_runtime_path(Path(self._tmp.name))
            env = {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "SSL_CERT_FILE": str(self.endpoint.ca_pem_path),
                **_CREDENTIALS,
            }
            process = LambdaProcess(
                asset_dir, handler, env, runtime_path=self._runtime_path, function_timeout=timeout
            ).start()
            self._providers[key] = process
        return process
