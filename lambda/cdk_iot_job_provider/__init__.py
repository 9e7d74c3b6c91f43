"""The ``Custom::IotJob`` provider: a crhelper Lambda handler and its property schema.

Importing the package imports nothing else: the construct uses ``schema`` at
synth time without loading boto3 or crhelper. The Lambda handler is
``cdk_iot_job_provider.handler.handler``.
"""
