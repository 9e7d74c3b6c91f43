"""Fixtures of the local engine's tests: a moto server of the test module's own, and an AWS
environment that points boto3 at nothing else.

A module asks for ``aws_env`` on each test with ``pytestmark = pytest.mark.usefixtures("aws_env")``;
``server_url`` is one ``ThreadedMotoServer`` per module that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "MOTO_ACCOUNT_ID", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
