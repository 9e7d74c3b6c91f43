"""``python -m cdk_iot_job_local``: the same as ``cdk-iot-job-local``."""

from __future__ import annotations

import sys

from .launcher import main

sys.exit(main())
