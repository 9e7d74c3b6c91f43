"""IotJob-R6: presigned URLs that expire before a device's in-progress time is up."""

from __future__ import annotations

from typing import Any

from cdk_iot_job_provider import schema

from .job_properties import JobProperties, is_known, literal_text
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["DEFAULT_EXPIRES_IN_SEC", "PRESIGNED_URL_EXPIRY"]

#: PresignedUrlConfig.ExpiresInSec when not set (API PresignedUrlConfig: 60-3600, default 3600).
DEFAULT_EXPIRES_IN_SEC = schema.DEFAULT_PRESIGNED_URL_EXPIRES_IN_SEC


def _has_placeholder(document: Any) -> bool:
    return any(schema.PRESIGNED_PLACEHOLDER.search(text) for text in literal_text(document))


def _check(job: JobProperties) -> Verdict:
    config = job.get("PresignedUrlConfig")
    # A document_source's placeholders are not visible, but PresignedUrlConfig exists only for them.
    if config is None and not _has_placeholder(job.get("Document")):
        return Verdict.NOT_APPLICABLE
    minutes = job.get("TimeoutConfig", "InProgressTimeoutInMinutes")
    expires = job.get("PresignedUrlConfig", "ExpiresInSec")
    if minutes is None or not is_known(minutes) or not is_known(expires):
        return Verdict.NOT_APPLICABLE  # no timeout at all is IotJob-R3's finding
    expires_in_sec = DEFAULT_EXPIRES_IN_SEC if expires is None else expires
    return Verdict.NON_COMPLIANT if expires_in_sec < minutes * 60 else Verdict.COMPLIANT


PRESIGNED_URL_EXPIRY = Rule(
    suffix="R6",
    level=Level.WARN,
    info=(
        "presigned_url_config.expires_in_sec (PresignedUrlConfig.ExpiresInSec, default 3600) is shorter than "
        "timeout_config.in_progress_timeout_in_minutes (TimeoutConfig.InProgressTimeoutInMinutes) x 60: a device "
        "still IN_PROGRESS can hold a download URL that has expired."
    ),
    explanation=(
        "IoT presigns the URLs of a document's placeholders when a device requests the job document, valid for "
        "ExpiresInSec (60-3600 s; API PresignedUrlConfig), while the in-progress timer lets the device work for up to "
        "InProgressTimeoutInMinutes. A device that resumes a slow or interrupted download late in that window gets "
        "an HTTP 403 unless it requests the document again. Fix: keep the in-progress timeout within the URL's "
        "lifetime (at most 60 minutes with the maximum expiry), or acknowledge when devices re-fetch the document "
        "(DescribeJobExecution) before each download."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
