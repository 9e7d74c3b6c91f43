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

Invocations
    Each function keeps a pool of Lambda-like processes (:class:`LambdaPool`):
    concurrent invocations run in separate ones, as in Lambda. A function
    :meth:`LocalAws.invoke` or :meth:`LocalAws.provider` ran under its ARN can
    be invoked asynchronously through the Lambda API (:mod:`.lambda_invoke`),
    which is how a provider hands a long wait over to a new invocation of
    itself; :meth:`LocalAws.invoke` waits for the whole chain of invocations of
    its event and returns the response that reaches the ResponseURL.

Stacks
    :attr:`LocalAws.stack_status` is what ``DescribeStacks`` answers for the
    stacks the engine deploys (:mod:`.stack_status`).

Time
    With a :class:`~.virtual_time.TimeScale`, every provider process shares
    its virtual clock (:mod:`.lambda_bootstrap`), and CloudFormation's
    ``ServiceTimeout`` is waited for in virtual time too.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from cdk_iot_job_provider import schema

from .cfn_endpoint import CloudFormationEndpoint
from .environment import DEFAULT_ACCOUNT, DEFAULT_PARTITION, DEFAULT_REGION
from .iot_fake import StrictIotFake
from .job_ids import job_id_of
from .lambda_invoke import AsyncInvoke, LocalFunction, function_address
from .lambda_process import LambdaPool, LambdaProcess, lambda_runtime_path
from .stack_status import StackStatuses
from .virtual_time import TimeScale

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
#: How long CloudFormation waits for a custom resource without a ServiceTimeout (seconds).
_DEFAULT_SERVICE_TIMEOUT_S = float(schema.MAX_SERVICE_TIMEOUT_SECONDS)
#: Real seconds between looks at the ResponseURL while a chain of invocations runs.
_POLL_S = 0.05
#: Real seconds between two calls of ``on_wait``.
_ON_WAIT_S = 0.2
#: Real seconds a chain may go on after its response arrived, for its last logs (a loaded machine
#: can take a few seconds to hand the last invocation's log back; the wait ends as soon as it has).
_LOG_GRACE_S = 10.0


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


@dataclass
class _Chain:
    """The invocations of one event (by its ResponseURL): how many run, and what they logged."""

    running: int = 0
    logs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: What kept an invocation from running at all (its process would not start, say).
    crash: Exception | None = None


class LocalAws:
    """moto on loopback, the HTTPS response endpoint and Lambda-like processes for providers.

    Use as a context manager. Boto3 clients from :meth:`client` talk to the
    embedded moto, in the account and region asked for; :meth:`invoke` runs a
    provider's handler from its asset folder the way Lambda does and returns
    the response it PUT. Every account and region used is remembered, so
    :meth:`snapshot` saves all of them.

    Parameters
    ----------
    deletion_polls
        The default IoT fake's ``deletion_polls``.
    fake
        The IoT fake to install instead of the default one.
    time_scale
        The virtual clock every provider process shares; ``None``: real time.
    """

    def __init__(
        self, *, deletion_polls: int = 1, fake: StrictIotFake | None = None, time_scale: TimeScale | None = None
    ) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        # Targets must exist, as in IoT: a job for a thing the stack never made fails locally too.
        # A caller may bring its own fake (a subclass, for example); it is installed and removed here.
        self.fake = fake or StrictIotFake(deletion_polls=deletion_polls, check_targets=True)
        self.endpoint = CloudFormationEndpoint()
        self.time_scale = time_scale
        #: What DescribeStacks answers for the engine's stacks: stack ARN -> status.
        self.stack_status: dict[str, str] = {}
        #: The ResponseURL :meth:`invoke` issued last (of concurrent invokes, the one that started last).
        self.last_response_url = ""
        self._stacks = StackStatuses(self.stack_status)
        self._functions = AsyncInvoke(self._start_async)
        self._pools: dict[LocalFunction, LambdaPool] = {}
        self._pools_lock = threading.Lock()
        # The invocations of each event, by ResponseURL; the condition is notified as each ends.
        self._chains: dict[str, _Chain] = {}
        self._chains_changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False
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
        self._functions.install()
        self._stacks.install()
        self.endpoint.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        with self._chains_changed:
            self._closing = True
        with self._pools_lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.stop()  # a running invocation ends: its thread finishes
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._functions.uninstall()
        self._stacks.uninstall()
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
        on_wait: Callable[[], None] | None = None,
    ) -> tuple[CustomResourceResponse, str]:
        """Send one custom resource event to the provider in ``asset_dir``.

        The provider runs in the account and region of the event's
        ``StackId``, with the function's environment ``variables``, as the
        function its ``ServiceToken`` names (when that is a Lambda function
        ARN, which can then be invoked asynchronously). When the invocation
        returns without a response at the ResponseURL, the invocations it
        started (asynchronous invokes carrying the event's ResponseURL, and
        theirs) are waited for, and the first response that arrives is
        returned, as CloudFormation takes it.

        Returns the response CloudFormation received and the log of the
        invocations of this event. A provider that never answers yields a
        FAILED response: when none of its invocations is left running, or
        when the ``ServiceTimeout`` (in virtual time) has passed, as
        CloudFormation's.

        Parameters
        ----------
        on_wait
            Called about every 0.2 s (real) while the event's invocations run
            without a response yet.
        """
        url = self.endpoint.response_url(str(event.get("LogicalResourceId", "resource")))
        self.last_response_url = url
        event = {**event, "ResponseURL": url, "RequestId": event.get("RequestId") or str(uuid.uuid4())}
        account, region = _stack_environment(str(event.get("StackId", "")))
        function = self._function(
            asset_dir, handler, timeout, account, region, variables, _function_arn(event.get("ServiceToken"))
        )
        started = time.monotonic()
        with self._chains_changed:
            self._chains[url] = chain = _Chain()
        # On a thread of its own, as the invocations it starts: on_wait runs meanwhile.
        self._start_invocation(function, event, url)
        responses, timed_out = self._await_response(chain, event, started, on_wait)
        with self._chains_changed:
            if chain.running == 0:
                del self._chains[url]
            logs = "\n".join(part for part in chain.logs if part)
            errors = list(chain.errors)
            crash = chain.crash
        if not responses and crash is not None and not timed_out:
            raise crash  # as before invocations ran on threads: the caller learns the function cannot run
        if not responses:
            if timed_out:
                reason = f"no response within the ServiceTimeout of {_service_timeout(event):g} s"
            else:
                reason = (errors[-1] if errors else "") or "the provider sent no response"
            fallback = str(event.get("PhysicalResourceId") or "")
            return CustomResourceResponse("FAILED", fallback, f"no response: {reason}", {}), logs
        body = responses[0] if isinstance(responses[0], dict) else {}
        response = CustomResourceResponse(
            status=str(body.get("Status", "FAILED")),
            physical_id=str(body.get("PhysicalResourceId", "")),
            reason=str(body.get("Reason", "")),
            data=dict(body.get("Data") or {}),
        )
        return response, logs

    def provider(
        self,
        asset_dir: Path,
        handler: str,
        timeout: float,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        variables: Mapping[str, str] | None = None,
        function_arn: str = "",
    ) -> LambdaProcess:
        """The first process of the provider in ``asset_dir`` (started on first use).

        Processes are kept per asset folder, function timeout, account,
        region, environment variables and function ARN, as :meth:`invoke`
        uses them; this one serves invocations one after another, and others
        start when invocations overlap. For its log or an introspection of
        what the handler can import. It gets the account's credentials and
        ``AWS_REGION``; the function's ``variables`` cannot override those,
        nor the endpoint or the function's name. With ``function_arn``, the
        function can be invoked asynchronously by that ARN.
        """
        function = self._function(asset_dir, handler, timeout, account, region, variables, function_arn)
        return self._pool(function).primary()

    def processes(self) -> list[LambdaProcess]:
        """Every provider process started so far (the logs of a whole run are theirs)."""
        with self._pools_lock:
            pools = list(self._pools.values())
        return [process for pool in pools for process in pool.processes]

    def _function(
        self,
        asset_dir: Path,
        handler: str,
        timeout: float,
        account: str,
        region: str,
        variables: Mapping[str, str] | None,
        function_arn: str,
    ) -> LocalFunction:
        """The function, registered for asynchronous invokes when it has an ARN."""
        function = LocalFunction(
            asset_dir.resolve(),
            handler,
            timeout,
            account,
            region,
            tuple(sorted((variables or {}).items())),
            function_arn,
        )
        self._functions.register(function)
        return function

    def _pool(self, function: LocalFunction) -> LambdaPool:
        with self._pools_lock:
            if self._closing:
                raise RuntimeError("the local AWS is shutting down: no new invocation starts")
            pool = self._pools.get(function)
            if pool is None:
                if self._runtime_path is None:
                    self._runtime_path = lambda_runtime_path(Path(self._tmp.name))
                self._use(function.account, function.region)
                pool = self._pools[function] = LambdaPool(lambda: self._start_process(function))
            return pool

    def _start_process(self, function: LocalFunction) -> LambdaProcess:
        env = {
            **dict(function.variables),
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
            "SSL_CERT_FILE": str(self.endpoint.ca_pem_path),
            **self.credentials(function.account),
        }
        if function.name:
            env["AWS_LAMBDA_FUNCTION_NAME"] = function.name
        return LambdaProcess(
            function.asset_dir,
            function.handler,
            env,
            runtime_path=self._runtime_path,
            function_timeout=function.timeout,
            account_id=function.account,
            function_arn=function.arn or None,
            time_scale=self.time_scale,
        ).start()

    # -------------------------------------------------- asynchronous invokes
    def _start_async(self, function: LocalFunction, payload: Any) -> None:
        """Run an accepted ``Event`` invoke (called on moto's request thread, before it answers 202)."""
        url = payload.get("ResponseURL") if isinstance(payload, dict) else None
        self._start_invocation(function, payload, url if isinstance(url, str) else "")

    def _start_invocation(self, function: LocalFunction, payload: Any, key: str) -> None:
        """Run one invocation on a thread of its own, counted in the chain of the event at ``key``."""
        with self._chains_changed:
            if self._closing:
                return  # the engine is shutting down: the invocation is lost, as in a deleted function
            # Counted before it starts: whoever waits for the chain sees it running at once.
            self._chains.setdefault(key, _Chain()).running += 1
            thread = threading.Thread(
                target=self._run, args=(function, payload, key), daemon=True, name=f"lambda-{function.name}"
            )
            self._threads = [alive for alive in self._threads if alive.is_alive()] + [thread]
        thread.start()

    def _run(self, function: LocalFunction, payload: Any, key: str) -> None:
        result: dict[str, Any] = {}
        crash: Exception | None = None
        try:
            result = self._pool(function).invoke(payload)
        except Exception as error:  # the engine is closing, or the process would not start
            crash = error
            result = {"ok": False, "error": f"{type(error).__name__}: {error}", "logs": ""}
        finally:
            self._finished(key, result, crash)

    def _finished(self, key: str, result: Mapping[str, Any], crash: Exception | None = None) -> None:
        """Count one invocation of the event at ``key`` out, keeping its log and error."""
        with self._chains_changed:
            chain = self._chains.setdefault(key, _Chain(running=1))
            if crash is not None and chain.crash is None:
                chain.crash = crash
            chain.running -= 1
            chain.logs.append(str(result.get("logs") or ""))
            if result.get("error"):
                chain.errors.append(str(result["error"]))
            if not key and chain.running == 0:
                del self._chains[key]  # invocations of no event: nobody waits for them
            self._chains_changed.notify_all()

    def _await_response(
        self, chain: _Chain, event: Mapping[str, Any], started: float, on_wait: Callable[[], None] | None
    ) -> tuple[list[Any], bool]:
        """The responses at the event's URL once one arrived or none of its invocations is left to run.

        And whether CloudFormation's ServiceTimeout (virtual seconds) ran out first.
        """
        url = str(event["ResponseURL"])
        scale = self.time_scale.scale if self.time_scale is not None else 1.0
        deadline = started + _service_timeout(event) / scale
        next_call = time.monotonic() + _ON_WAIT_S
        while True:
            # Running first: an invocation that ended had PUT its response already.
            with self._chains_changed:
                running = chain.running
            responses = self.endpoint.responses_for(url)
            if responses:
                break
            if running == 0:
                return [], False
            now = time.monotonic()
            if now >= deadline:
                return [], True
            if on_wait is not None and now >= next_call:
                on_wait()
                next_call = time.monotonic() + _ON_WAIT_S
            with self._chains_changed:
                self._chains_changed.wait(_POLL_S)
        # The invocation that answered is about to return: wait a moment for its log.
        with self._chains_changed:
            self._chains_changed.wait_for(lambda: chain.running == 0, timeout=_LOG_GRACE_S)
        return responses, False


def _function_arn(service_token: object) -> str:
    """The ServiceToken when it is a Lambda function's ARN (which can be invoked), else ``""``."""
    if not isinstance(service_token, str):
        return ""
    parts = service_token.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda" or parts[5] != "function":
        return ""
    account, region, name, qualifier = function_address(service_token)
    return service_token if account and region and name and qualifier is None else ""


def _service_timeout(event: Mapping[str, Any]) -> float:
    """How long CloudFormation waits for the event's response: its ServiceTimeout, in seconds."""
    properties = event.get("ResourceProperties")
    value = properties.get("ServiceTimeout") if isinstance(properties, Mapping) else None
    try:
        seconds = float(value) if value is not None else _DEFAULT_SERVICE_TIMEOUT_S
    except (TypeError, ValueError):
        return _DEFAULT_SERVICE_TIMEOUT_S
    return seconds if seconds > 0 else _DEFAULT_SERVICE_TIMEOUT_S


def _stack_environment(stack_id: str) -> tuple[str, str]:
    """The account and region of a stack ARN; the defaults for anything else."""
    parts = stack_id.split(":")
    if len(parts) >= 6 and parts[2] == "cloudformation" and parts[3] and parts[4]:
        return parts[4], parts[3]
    return DEFAULT_ACCOUNT, DEFAULT_REGION
