"""What a local deploy remembers between runs: stacks, resources, exports and moto's data."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .environment import DEFAULT_ACCOUNT, DEFAULT_REGION, Environment

__all__ = ["DEFAULT_STATE_FILE", "ResourceState", "StackState", "State"]

DEFAULT_STATE_FILE = Path(".cdk-iot-job-local") / "state.json"
FORMAT_VERSION = 1


@dataclass
class ResourceState:
    """One deployed resource, as CloudFormation tracks it.

    ``properties`` are the resolved template properties (scalars as the
    template gave them); ``attributes`` answer ``Fn::GetAtt``; ``asset`` is
    the provider code folder of a Lambda function, relative to the state file.
    ``handling`` says how a custom resource is run locally (a
    :class:`~cdk_iot_job_local.support.Handling` value; ``""`` for other
    resources and for state files written before it existed).
    """

    type: str
    physical_id: str
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    asset: str | None = None
    handler: str | None = None
    timeout: float | None = None
    handling: str = ""


@dataclass
class StackState:
    """One deployed stack, and the account and region it was deployed to."""

    name: str
    stack_id: str
    status: str
    resources: dict[str, ResourceState] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    # State files written before stacks had an environment deployed to the defaults.
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION

    @property
    def environment(self) -> Environment:
        """Where the stack was deployed."""
        return Environment(self.account, self.region)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        """Rebuild from :meth:`State.save`'s form."""
        resources = {name: ResourceState(**item) for name, item in data.get("resources", {}).items()}
        return cls(**{**data, "resources": resources})


@dataclass
class State:
    """The whole local account: every stack deployed with this state file."""

    path: Path
    stacks: dict[str, StackState] = field(default_factory=dict)
    moto: dict[str, Any] | None = None
    # The virtual clock the saved jobs ran on (virtual_time.TimeScale.to_json); None: real time.
    clock: dict[str, float] | None = None

    @classmethod
    def load(cls, path: Path) -> State:
        """The state at ``path``; empty when the file does not exist yet."""
        if not path.exists():
            return cls(path=path)
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported state format {data.get('format_version')!r}")
        stacks = {name: StackState.from_json(item) for name, item in data.get("stacks", {}).items()}
        return cls(path=path, stacks=stacks, moto=data.get("moto"), clock=data.get("clock"))

    def save(self) -> None:
        """Write atomically, so an interrupted run never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format_version": FORMAT_VERSION,
            "stacks": {name: asdict(stack) for name, stack in sorted(self.stacks.items())},
            "moto": self.moto,
            "clock": self.clock,
        }
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".json")
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, self.path)

    @property
    def assets_dir(self) -> Path:
        """Where provider code is kept, so later runs can still invoke it."""
        return self.path.parent / "assets"

    def exports(self, *, excluding: str | None = None) -> dict[str, str]:
        """Every stack's exports (``Fn::ImportValue``), optionally but one stack's."""
        merged: dict[str, str] = {}
        for name, stack in self.stacks.items():
            if name != excluding:
                merged.update(stack.exports)
        return merged

    def importers(self, export_names: set[str], *, excluding: str) -> dict[str, list[str]]:
        """Which other stacks import any of ``export_names``."""
        found: dict[str, list[str]] = {}
        for name, stack in self.stacks.items():
            used = sorted(export_names.intersection(stack.imports))
            if name != excluding and used:
                found[name] = used
        return found
