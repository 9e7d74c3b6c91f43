"""Importing the construct library loads neither the local engine nor moto, boto3 or botocore.

A CDK app that only synthesizes must not pay for (or need) the ``[local]`` extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

_HEAVY = ("moto", "botocore", "boto3", "cdk_iot_job_local", "yaml", "rich")


def test_importing_the_construct_loads_no_local_engine_and_no_aws_sdk() -> None:
    script = (
        "import json, sys, cdk_iot_job\n"
        f"heavy = {_HEAVY!r}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & set(heavy))))\n"
    )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    # The construct really loaded: every public name resolves with plain imports.
    import cdk_iot_job

    assert all(getattr(cdk_iot_job, name) is not None for name in cdk_iot_job.__all__)


def test_the_version_is_the_installed_distributions() -> None:
    import tomllib
    from pathlib import Path

    import cdk_iot_job

    declared = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["version"]
    assert cdk_iot_job.__version__ == declared
