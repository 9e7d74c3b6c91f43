"""Local CloudFormation on embedded moto: plan, deploy and destroy without an AWS account.

Needs the ``local`` extra (``pip install cdk-iot-job[local]``): moto and trustme.
Run it as ``cdk-iot-job-local``.
"""
