"""Local CloudFormation on embedded moto: plan, deploy and destroy without an AWS account.

Needs the ``local`` extra (``pip install 'cdk-iot-job[local]'``): boto3, moto,
trustme, PyYAML and rich. Run it as ``cdk-iot-job-local`` (or
``python -m cdk_iot_job_local``); without the extra it says how to install it.

This module imports nothing: :mod:`.launcher` checks for the extra first.
"""
