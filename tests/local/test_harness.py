"""Self-tests for the Lambda/CloudFormation test harness (tests/harness).

They use a tiny stand-in handler inside a fake asset folder, so they do not
depend on the real ``cdk_iot_job_provider`` handler.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import shutil
import ssl
import sys
import sysconfig
import textwrap
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import trustme

# The project's conftest is expected to put tests/ on sys.path
# (pythonpath = ["tests"]); do it here too so this file runs on its own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cfn_faults import FaultyCloudFormationEndpoint

from cdk_iot_job_local.lambda_process import LambdaProcess, lambda_runtime_path

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/demo/1b2c3d4e-0000-1111-2222-333344445555"
FAKE_CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
JOB_DOCUMENT = json.dumps({"operation": "firmware-update", "secret": "doc-marker-7f3a"})

HANDLER_SRC = """
import logging

import boto3
from crhelper import CfnResource

logger = logging.getLogger(__name__)
helper = CfnResource(log_level="INFO", sleep_on_delete=0)
iot = boto3.client("iot")


@helper.create
def create(event, context):
    props = event["ResourceProperties"]
    job = iot.create_job(
        jobId=props["JobId"], targets=[props["TargetArn"]], document=props["Document"]
    )
    logger.info("created job %s", job["jobId"])
    return job["jobId"]


@helper.update
def update(event, context):
    return event["PhysicalResourceId"]


@helper.delete
def delete(event, context):
    iot.delete_job(jobId=event["PhysicalResourceId"], force=True)
    logger.info("deleted job %s", event["PhysicalResourceId"])


def handler(event, context):
    helper(event, context)
"""

# Plain-stdlib handler: lets the negative TLS test fail fast (crhelper would
# retry forever) and exercises timeouts, crashes and stray output.
PROBE_SRC = """
import http.client
import json
import os
import ssl
import time
import urllib.parse


def handler(event, context):
    action = event["action"]
    if action == "put":
        url = urllib.parse.urlsplit(event["url"])
        conn = http.client.HTTPSConnection(
            url.netloc, context=ssl.create_default_context(), timeout=5
        )
        conn.request("PUT", url.path + "?" + url.query, body=json.dumps(event["body"]),
                     headers={"Content-Type": ""})
        return conn.getresponse().status
    if action == "context":
        return {
            "remaining": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
        }
    if action == "print":
        print("printed-via-sys-stdout")
        os.write(1, b"written-to-fd-1\\n")
        return "printed"
    if action == "sleep":
        time.sleep(event["seconds"])
        return "slept"
    if action == "raise":
        raise ValueError("boom")
    if action == "exit":
        os._exit(3)
    raise KeyError(action)
"""


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cfn() -> Iterator[FaultyCloudFormationEndpoint]:
    with FaultyCloudFormationEndpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lambda_runtime_path(tmp_path_factory.mktemp("runtime"))


@pytest.fixture(scope="module")
def asset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake ``cdk.out/asset.<hash>`` folder: crhelper + our handler package."""
    asset = tmp_path_factory.mktemp("cdk.out") / "asset.0123456789abcdef"
    asset.mkdir()
    spec = importlib.util.find_spec("crhelper")  # locate without importing
    assert spec is not None and spec.submodule_search_locations
    shutil.copytree(
        spec.submodule_search_locations[0],
        asset / "crhelper",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    pkg = asset / "cdk_iot_job_provider"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text(textwrap.dedent(HANDLER_SRC))
    (pkg / "probe.py").write_text(textwrap.dedent(PROBE_SRC))
    return asset


def _aws_env(moto_url: str, ca_file: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SSL_CERT_FILE": str(ca_file),
        "AWS_LAMBDA_FUNCTION_NAME": "harness-demo",
    }


@pytest.fixture(scope="module")
def lam(
    asset_dir: Path, runtime_dir: Path, moto_url: str, cfn: FaultyCloudFormationEndpoint
) -> Iterator[LambdaProcess]:
    with LambdaProcess(
        asset_dir,
        env=_aws_env(moto_url, cfn.ca_pem_path),
        runtime_path=runtime_dir,
        function_timeout=30,
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def probe(
    asset_dir: Path, runtime_dir: Path, moto_url: str, cfn: FaultyCloudFormationEndpoint
) -> Iterator[LambdaProcess]:
    with LambdaProcess(
        asset_dir,
        handler="cdk_iot_job_provider.probe.handler",
        env=_aws_env(moto_url, cfn.ca_pem_path),
        runtime_path=runtime_dir,
        function_timeout=1.5,
    ) as proc:
        yield proc


def cfn_event(
    cfn: FaultyCloudFormationEndpoint, request_type: str, props: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": cfn.response_url(f"{request_type}-IotJob"),
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "ResourceType": "Custom::IotJob",
        "LogicalResourceId": "IotJob",
        "ResourceProperties": {
            "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:harness-demo",
            **props,
        },
        **extra,
    }


def _iot(moto_url: str) -> Any:
    return boto3.client("iot", endpoint_url=moto_url, region_name=REGION, **FAKE_CREDS)


# --------------------------------------------------------------------------
# runtime directory
# --------------------------------------------------------------------------
def test_runtime_dir_exposes_only_boto3_and_its_dependencies(runtime_dir: Path) -> None:
    names = {p.name for p in runtime_dir.iterdir() if not p.name.endswith(".dist-info")}
    assert names == {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"}
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    for entry in runtime_dir.iterdir():
        assert entry.is_symlink()
        assert entry.resolve().parent == site


# --------------------------------------------------------------------------
# end-to-end through crhelper
# --------------------------------------------------------------------------
def test_create_sends_exactly_one_https_response(
    lam: LambdaProcess, cfn: FaultyCloudFormationEndpoint, moto_url: str
) -> None:
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    event = cfn_event(
        cfn,
        "Create",
        {
            "JobId": job_id,
            "TargetArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/demo-thing",
            "Document": JOB_DOCUMENT,
        },
    )
    reply = lam.invoke(event)
    assert reply["ok"], reply
    assert not reply["timed_out"]

    [body] = cfn.responses_for(event["ResponseURL"])  # exactly one
    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == job_id
    assert body["RequestId"] == event["RequestId"]
    [request] = cfn.requests_for(event["ResponseURL"])
    assert request.known_url and request.reply_status == 200
    assert request.body_size <= 4096

    assert _iot(moto_url).describe_job(jobId=job_id)["job"]["jobId"] == job_id

    # The handler's logs are captured, and secrets stay out of them.
    assert f"created job {job_id}" in reply["logs"]
    assert "CloudFormation returned status code: OK" in lam.logs()
    assert cfn.signature_of(event["ResponseURL"]) not in lam.logs()
    assert "doc-marker-7f3a" not in lam.logs()

    # Warm invocation in the same process: delete the job again.
    delete = cfn_event(cfn, "Delete", {}, PhysicalResourceId=job_id)
    assert lam.invoke(delete)["ok"]
    assert [b["Status"] for b in cfn.responses_for(delete["ResponseURL"])] == ["SUCCESS"]
    assert job_id not in {j["jobId"] for j in _iot(moto_url).list_jobs()["jobs"]}
    assert lam.cold_starts == 1


def test_child_sees_only_asset_runtime_and_stdlib(lam: LambdaProcess, asset_dir: Path, runtime_dir: Path) -> None:
    info = lam.introspect(importable=["moto", "aws_cdk", "jsii", "pytest", "trustme", "crhelper", "boto3"])
    sys_path = info["sys_path"]
    assert sys_path[:2] == [str(asset_dir.resolve()), str(runtime_dir.resolve())]
    assert not [p for p in sys_path if "site-packages" in p or ".venv" in p]
    assert info["flags"] == {"no_site": 1, "safe_path": True}
    assert info["importable"] == {
        "moto": False,
        "aws_cdk": False,
        "jsii": False,
        "pytest": False,
        "trustme": False,
        "crhelper": True,
        "boto3": True,
    }
    files = info["module_files"]
    assert Path(files["crhelper"]).is_relative_to(asset_dir.resolve())
    assert Path(files["cdk_iot_job_provider"]).is_relative_to(asset_dir.resolve())
    assert Path(files["boto3"]).is_relative_to(runtime_dir.resolve())
    assert "moto" not in info["modules"]
    # Every loaded module comes from the asset, the runtime dir or the stdlib
    # (the bootstrap script itself runs as __main__, aliased by multiprocessing).
    roots = (str(asset_dir.resolve()), str(runtime_dir.resolve()), sysconfig.get_paths()["stdlib"])
    strays = {n: f for n, f in files.items() if f and n not in ("__main__", "__mp_main__") and not f.startswith(roots)}
    assert strays == {}
    assert "VIRTUAL_ENV" not in info["env_keys"]
    assert "AWS_ENDPOINT_URL" in info["env_keys"]


# --------------------------------------------------------------------------
# TLS: the trustme CA is really what makes verification succeed
# --------------------------------------------------------------------------
def _put(cfn: FaultyCloudFormationEndpoint, url: str, ctx: ssl.SSLContext, body: bytes) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(parts.netloc, context=ctx, timeout=5)
    try:
        conn.request("PUT", f"{parts.path}?{parts.query}", body=body)
        return conn.getresponse().status
    finally:
        conn.close()


def test_endpoint_rejected_without_its_ca_in_process(cfn: FaultyCloudFormationEndpoint) -> None:
    url = cfn.response_url("in-process")
    with pytest.raises(ssl.SSLCertVerificationError):
        _put(cfn, url, ssl.create_default_context(), b"{}")  # system CAs only
    assert _put(cfn, url, cfn.ssl_context(), b'{"Status": "SUCCESS"}') == 200
    assert cfn.responses_for(url) == [{"Status": "SUCCESS"}]


def test_child_trust_comes_from_ssl_cert_file(
    asset_dir: Path,
    runtime_dir: Path,
    moto_url: str,
    cfn: FaultyCloudFormationEndpoint,
    tmp_path: Path,
    probe: LambdaProcess,
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    errors_before = len(cfn.handshake_errors)
    with LambdaProcess(
        asset_dir,
        handler="cdk_iot_job_provider.probe.handler",
        env=_aws_env(moto_url, other_ca),
        runtime_path=runtime_dir,
    ) as wrong:
        url = cfn.response_url("wrong-ca")
        reply = wrong.invoke({"action": "put", "url": url, "body": {"Status": "SUCCESS"}})
    assert not reply["ok"]
    assert "CERTIFICATE_VERIFY_FAILED" in reply["error"]
    assert cfn.responses_for(url) == []
    assert len(cfn.handshake_errors) > errors_before

    url = cfn.response_url("right-ca")
    reply = probe.invoke({"action": "put", "url": url, "body": {"Status": "SUCCESS"}})
    assert reply == {**reply, "ok": True, "result": 200}
    assert cfn.responses_for(url) == [{"Status": "SUCCESS"}]


# --------------------------------------------------------------------------
# endpoint knobs
# --------------------------------------------------------------------------
def test_endpoint_records_errors_stalls_and_large_bodies(cfn: FaultyCloudFormationEndpoint) -> None:
    ctx = cfn.ssl_context()
    url = cfn.response_url("knobs")

    cfn.fail_next(1, status=500)
    assert _put(cfn, url, ctx, b'{"n": 1}') == 500
    assert _put(cfn, url, ctx, b'{"n": 2}') == 200
    assert [r.reply_status for r in cfn.requests_for(url)] == [500, 200]

    cfn.stall_next(1, seconds=0.5)
    start = time.monotonic()
    assert _put(cfn, url, ctx, b'{"n": 3}') == 200
    assert time.monotonic() - start >= 0.5

    big = json.dumps({"Data": {"x": "y" * 10_000}}).encode()
    assert _put(cfn, url, ctx, big) == 200
    last = cfn.requests_for(url)[-1]
    assert last.body == big and last.body_size == len(big) > 4096
    assert cfn.wait_for(url, timeout=1, count=4)[:3] == [{"n": 1}, {"n": 2}, {"n": 3}]

    # A tampered query string is not "the" URL: S3 would refuse it.
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=00")
    assert _put(cfn, tampered, ctx, b"{}") == 403
    assert len(cfn.responses_for(url)) == 4


# --------------------------------------------------------------------------
# Lambda-like process behaviour
# --------------------------------------------------------------------------
def test_context_and_stdout_isolation(probe: LambdaProcess) -> None:
    reply = probe.invoke({"action": "context"}, request_id="req-123")
    ctx = reply["result"]
    assert 0 < ctx["remaining"] <= 1500
    assert ctx["aws_request_id"] == "req-123"
    assert ctx["function_name"] == "harness-demo"
    assert ctx["invoked_function_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:harness-demo"
    assert ctx["log_group_name"] == "/aws/lambda/harness-demo"

    reply = probe.invoke({"action": "print"})
    assert reply["ok"] and reply["result"] == "printed"
    assert "printed-via-sys-stdout" in reply["logs"]
    assert "written-to-fd-1" in reply["logs"]

    reply = probe.invoke({"action": "raise"})
    assert reply["error"] == "ValueError: boom"
    assert "Traceback" in reply["logs"]


def test_timeout_and_crash_start_a_fresh_sandbox(probe: LambdaProcess) -> None:
    starts = probe.cold_starts
    reply = probe.invoke({"action": "sleep", "seconds": 10})
    assert reply["timed_out"] and reply["error"].startswith("Task timed out")
    assert reply["duration_ms"] < 5000

    reply = probe.invoke({"action": "exit"})
    assert not reply["ok"] and reply["error"].startswith("Runtime.ExitError")
    assert probe.invoke({"action": "context"})["ok"]
    assert probe.cold_starts == starts + 2

    with pytest.raises(TimeoutError):
        probe.invoke({"action": "sleep", "seconds": 10}, timeout=0.3)
    assert not probe.alive


def test_import_error_is_reported_per_invocation(asset_dir: Path, runtime_dir: Path) -> None:
    with LambdaProcess(asset_dir, handler="cdk_iot_job_provider.missing.handler", runtime_path=runtime_dir) as broken:
        assert broken.init_error and "ImportModuleError" in broken.init_error
        reply = broken.invoke({})
        assert not reply["ok"] and "ModuleNotFoundError" in reply["error"]
        pid = broken.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
