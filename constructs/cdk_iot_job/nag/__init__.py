"""cdk-nag rules for AWS IoT jobs: ``IotJobChecks`` (needs cdk-nag 3, the ``[nag]`` extra).

>>> from cdk_iot_job.nag import IotJobChecks
>>> Validations.of(app).add_plugins(IotJobChecks(app))

The rules are listed, with their rationale and fixes, in docs/nag-rules.md.
"""

from .pack import PACK_NAME, RULES, IotJobChecks
from .rule import Level, Rule, Verdict

__all__ = ["PACK_NAME", "RULES", "IotJobChecks", "Level", "Rule", "Verdict"]
