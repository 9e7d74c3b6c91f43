"""One cold start, in a fresh ``python -S -P -B`` process: the provider's, or the floor's.

Run as ``python -S -P -B bench/cold_start_probe.py handler|floor`` with
``PYTHONPATH=<asset dir>:<boto3-only runtime dir>``, so it may use the
standard library only. It times, with ``time.perf_counter()``:

``handler``
    importing ``cdk_iot_job_provider.handler`` (what Lambda does at init)
    plus the first event's initialisation: the process's IoT client for the
    environment's region (``iot_api.client_for(iot_api.environment_region())``,
    as the handler's first IoT call builds it).
``floor``
    ``import boto3`` plus ``boto3.client("iot", region_name=...)``.

Nothing but ``os``, ``sys`` and ``time`` (loaded at interpreter start-up
anyway) is imported before the clock starts. It prints ``{"seconds": ...}``.
"""

from __future__ import annotations

import os
import sys
import time


def main(side: str) -> None:
    """Time one side's cold start and print it as JSON on stdout."""
    started = time.perf_counter()
    if side == "handler":
        import importlib

        importlib.import_module("cdk_iot_job_provider.handler")
        iot_api = importlib.import_module("cdk_iot_job_provider.iot_api")
        iot_api.client_for(iot_api.environment_region())
    elif side == "floor":
        import boto3

        boto3.client("iot", region_name=os.environ["AWS_REGION"])
    else:
        raise SystemExit(f"unknown side {side!r}: handler or floor")
    seconds = time.perf_counter() - started
    import json

    sys.stdout.write(json.dumps({"seconds": seconds}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
