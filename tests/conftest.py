"""Shared fixtures: fake AWS credentials, moto with the strict IoT fake, and a
local HTTPS endpoint standing in for CloudFormation's response bucket."""

from __future__ import annotations

import functools
import os
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

# Before anything imports boto3, crhelper or aws_cdk.
os.environ.update(
    {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
import botocore.endpoint
from cfn_faults import FaultyCloudFormationEndpoint
from iot_faults import FaultyIotFake
from moto import mock_aws

if TYPE_CHECKING:
    from cdk_iot_job_provider.handler import Dependencies

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def cfn_endpoint() -> Iterator[FaultyCloudFormationEndpoint]:
    """CloudFormation's response URLs, served over HTTPS by a trustme CA, with faults on demand."""
    with FaultyCloudFormationEndpoint() as endpoint:
        yield endpoint


@dataclass
class RetrySleeps:
    """Backoff sleeps botocore asked for; recorded instead of slept."""

    delays: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Aws:
    """moto with the strict IoT fake (recording calls, faults on demand), as the in-process handler sees it.

    ``iot`` is the test's own client; ``dependencies`` are what the test's
    handlers use (:class:`in_process.Cfn` passes them to ``make_handler``).
    """

    fake: FaultyIotFake
    iot: Any
    retry_sleeps: RetrySleeps
    dependencies: Dependencies

    @property
    def handler_iot(self) -> Any:
        """The boto3 IoT client the test's handlers call, to hook their requests (``meta.events``)."""
        return self.dependencies.iot_client(REGION).client


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, cfn_endpoint: FaultyCloudFormationEndpoint) -> Iterator[Aws]:
    """A fresh moto account with the strict IoT fake installed, as :class:`FaultyIotFake`.

    The test's handlers get IoT clients of their own (one per region, built in
    the test, never the process's cached ones), their response PUTs trust the
    local endpoint's CA, and neither botocore's retry backoff nor the
    handler's deletion polls really sleep.
    """
    from cdk_iot_job_provider import iot_api
    from cdk_iot_job_provider.handler import Dependencies
    from cdk_iot_job_provider.lifecycle import Timing

    monkeypatch.setenv("SSL_CERT_FILE", str(cfn_endpoint.ca_pem_path))
    sleeps = RetrySleeps()
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.sleep, time=time.time))
    dependencies = Dependencies(
        iot_client=functools.cache(iot_api.new_client),
        timing=Timing(first_poll_seconds=0.001, max_poll_seconds=0.001, in_flight_grace_seconds=0.01),
    )
    with mock_aws(), FaultyIotFake(deletion_polls=1) as fake:
        yield Aws(
            fake=fake, iot=boto3.client("iot", region_name=REGION), retry_sleeps=sleeps, dependencies=dependencies
        )


def pytest_configure(config: pytest.Config) -> None:
    """Capture provider logs from the first test on, for the planted-secret scan."""
    import log_secrets

    log_secrets.start_capture()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``scan_after_all`` run last: they read what all the others logged."""
    items.sort(key=lambda item: item.get_closest_marker("scan_after_all") is not None)


# Under pytest-xdist each worker captures its own provider logs and figures. At its end a worker
# hands them to the controller (workeroutput), which scans the union for planted secrets (the
# whole-run guarantee of tests/system/test_log_secrets.py, whose test sees only its own worker)
# and reports every worker's figures.
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A worker hands over its capture; the controller has received them all by now."""
    import figures
    import log_secrets

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["cdk_iot_job_log_lines"] = log_secrets.captured_lines()
        workeroutput["cdk_iot_job_signatures"] = sorted(log_secrets.issued_signatures())
        workeroutput["cdk_iot_job_figures"] = figures.tables()
        return
    if not _WORKER_OUTPUTS:
        return
    lines = [line for output in _WORKER_OUTPUTS for line in output.get("cdk_iot_job_log_lines", [])]
    signatures = {sig for output in _WORKER_OUTPUTS for sig in output.get("cdk_iot_job_signatures", [])}
    for output in _WORKER_OUTPUTS:
        figures.merge(output.get("cdk_iot_job_figures", {}))
    leaked = log_secrets.leaks(lines, signatures)
    figures.record(
        "Log scan (all workers)", lines_scanned=len(lines), response_url_signatures=len(signatures), leaks=len(leaked)
    )
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("planted secrets found in provider logs", red=True)
            for line in leaked[:20]:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_WORKER_OUTPUTS: list[dict[str, Any]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; keep what it handed over."""
    output = getattr(node, "workeroutput", None)
    if output:
        _WORKER_OUTPUTS.append(output)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the fault, load and fuzz tests measured."""
    import figures

    if getattr(terminalreporter.config, "workerinput", None) is not None:
        return  # a pytest-xdist worker: the controller reports
    path = figures.write()
    if path is not None:
        terminalreporter.section("figures (also in build/test-figures.md)")
        terminalreporter.write_line(figures.render())
