"""The built wheel is all a CDK user needs.

Build the wheel from a copy of the sources, install it into a fresh virtual
environment (no system site-packages, no editable install), and synthesize a
stack from a temporary folder outside the repository. The repository's
``constructs/`` and ``lambda/`` folders must play no part in that synth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

# The exhaustive set (make check, its own gate): builds the wheel and a venv, about 1-2 minutes.
pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[2]
STACK_NAME = "WheelStack"

# Everything the build needs, without the checkout's caches, venvs and outputs.
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    ".cdk-iot-job-local",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".coverage*",
    "htmlcov",
)

SYNTH_APP = textwrap.dedent(
    """
    import json
    import os
    import sys

    import aws_cdk as cdk
    import cdk_iot_job
    import cdk_iot_job_provider
    from cdk_iot_job import IotJob, JobExecutionsRolloutConfig

    app = cdk.App(outdir=sys.argv[1])
    stack = cdk.Stack(app, "WheelStack")
    IotJob(
        stack,
        "Reboot",
        targets=["arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"],
        document={"operation": "reboot"},
        job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=10),
    )
    app.synth()
    print(json.dumps({
        "cdk_iot_job": cdk_iot_job.__file__,
        "cdk_iot_job_provider": cdk_iot_job_provider.__file__,
        "sys_path": sys.path,
    }))
    """
)


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that points Python or CDK elsewhere."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONUSERBASE")
    env = {key: value for key, value in os.environ.items() if key not in dropped and not key.startswith("CDK_")}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(command: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources = tmp_path_factory.mktemp("sources") / "cdk-iot-job"
    shutil.copytree(REPO, sources, ignore=_NOT_SOURCES)
    outdir = tmp_path_factory.mktemp("wheelhouse")
    run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir), str(sources)],
        cwd=sources,
        timeout=180,
    )
    (built,) = outdir.glob("cdk_iot_job-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, without system site-packages, with only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent, timeout=120)
    python = venv / "bin" / "python"
    started = time.monotonic()
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=venv.parent, timeout=420)
    print(f"pip install of the wheel took {time.monotonic() - started:.1f} s")
    return venv


@pytest.fixture(scope="module")
def synthesized(wheel_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A stack synthesized by the wheel's venv from a folder outside the repository."""
    workdir = tmp_path_factory.mktemp("user-project")
    assert REPO not in workdir.parents
    (workdir / "synth_app.py").write_text(SYNTH_APP)
    outdir = workdir / "cdk.out"
    result = run([str(wheel_venv / "bin" / "python"), "synth_app.py", str(outdir)], cwd=workdir, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return outdir, report


def test_wheel_contains_the_construct_and_the_handler(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "cdk_iot_job/__init__.py",
        "cdk_iot_job/py.typed",
        "cdk_iot_job_provider/handler.py",
        "cdk_iot_job_provider/py.typed",
        "cdk_iot_job_provider/schema.py",
        "cdk_iot_job_local/cli.py",
        "cdk_iot_job_local/launcher.py",
    ):
        assert expected in names, expected
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()
    assert [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "cdk-iot-job-local = cdk_iot_job_local.launcher:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_wheel_does_not_ship_the_constructs_source_root_as_a_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "constructs/__init__.py" not in names
    assert not [name for name in names if name.startswith(("constructs/", "lambda/", "local/"))]


def test_wheel_without_the_local_extra_says_in_one_line_how_to_install_it(wheel_venv: Path) -> None:
    # The wheel's venv has the runtime dependencies only: no moto, trustme, rich or PyYAML.
    result = subprocess.run(
        [str(wheel_venv / "bin" / "cdk-iot-job-local"), "plan"],
        cwd=wheel_venv.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "pip install 'cdk-iot-job[local]'" in line


def test_wheel_venv_synthesizes_an_iot_job_from_an_unrelated_folder(
    synthesized: tuple[Path, dict[str, object]],
) -> None:
    outdir, _ = synthesized
    template = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert types.count("Custom::IotJob") == 1
    assert types.count("AWS::Lambda::Function") == 1


def test_wheel_synth_bundles_the_handler_into_the_asset(synthesized: tuple[Path, dict[str, object]]) -> None:
    outdir, _ = synthesized
    (asset,) = [path for path in outdir.iterdir() if path.is_dir() and path.name.startswith("asset.")]
    assert (asset / "cdk_iot_job_provider" / "handler.py").is_file()
    assert (asset / "cdk_iot_job_provider" / "schema.py").is_file()
    assert (asset / "crhelper" / "__init__.py").is_file()


def test_wheel_synth_imports_nothing_from_the_repository(
    synthesized: tuple[Path, dict[str, object]], wheel_venv: Path
) -> None:
    _, report = synthesized
    for package in ("cdk_iot_job", "cdk_iot_job_provider"):
        location = Path(str(report[package])).resolve()
        assert wheel_venv.resolve() in location.parents, location
        assert REPO not in location.parents, location
    sys_path = [Path(entry).resolve() for entry in report["sys_path"] if entry]  # type: ignore[union-attr]
    assert not [entry for entry in sys_path if entry == REPO or REPO in entry.parents]
