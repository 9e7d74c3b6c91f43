"""Where stacks come from: a CDK app synthesized like the CDK CLI does, a cloud
assembly folder (each stack with its manifest ``environment``), or a plain
CloudFormation template."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .environment import DEFAULT_ENVIRONMENT, Environment
from .template import Stack, load_stacks

__all__ = ["SynthError", "app_command", "from_assembly", "from_template", "synthesize"]


class SynthError(RuntimeError):
    """The app could not be synthesized."""


def app_command(cwd: Path) -> str:
    """The ``app`` command of ``cdk.json`` in ``cwd``."""
    config = cwd / "cdk.json"
    if not config.exists():
        raise SynthError(f"no --app, --assembly or --template given and {config} does not exist")
    command = json.loads(config.read_text()).get("app")
    if not isinstance(command, str):
        raise SynthError(f"{config} has no 'app' command")
    return command


def synthesize(command: str, outdir: Path, cwd: Path) -> list[Stack]:
    """Run the app as the CDK CLI does: ``CDK_OUTDIR`` and cdk.json's context.

    The context (feature flags included) reaches the app through
    ``CDK_CONTEXT_JSON``, as ``cdk synth`` passes it.
    """
    # What `cdk synth` adds by default, so both synthesize the same template.
    context: dict[str, object] = {
        "aws:cdk:enable-path-metadata": True,
        "aws:cdk:enable-asset-metadata": True,
        "aws:cdk:version-reporting": True,
        "aws:cdk:bundling-stacks": ["**"],
    }
    for name in ("cdk.json", "cdk.context.json"):
        path = cwd / name
        if path.exists():
            data = json.loads(path.read_text())
            context.update(data.get("context", {}) if name == "cdk.json" else data)
    # "python3 app.py" should mean this interpreter (its venv), as under `make`.
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": search_path, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    result = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SynthError(f"'{command}' failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return load_stacks(outdir)


def from_assembly(outdir: Path) -> list[Stack]:
    """The stacks of an already synthesized cloud assembly (``cdk synth -o DIR``)."""
    if not (outdir / "manifest.json").exists():
        raise SynthError(f"{outdir} is not a cloud assembly (no manifest.json)")
    return load_stacks(outdir)


def from_template(path: Path, stack_name: str | None, environment: Environment | None = None) -> Stack:
    """A plain CloudFormation template (JSON or YAML) as one stack.

    A template names no account or region: it is deployed to ``environment``,
    the defaults (123456789012, us-east-1) unless given.
    """
    from .cfn_yaml import load_template

    name = stack_name or re.sub(r"[^A-Za-z0-9-]+", "-", path.stem).strip("-") or "stack"
    if not name[0].isalpha():
        name = f"stack-{name}"
    return Stack(
        name=name,
        outdir=path.resolve().parent,
        template=load_template(path),
        environment=environment or DEFAULT_ENVIRONMENT,
    )
