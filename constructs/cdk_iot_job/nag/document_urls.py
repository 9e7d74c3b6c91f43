"""IotJob-R4: a job document that sends devices to a plain-http or unsigned S3 URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cdk_iot_job_provider import schema

from .job_properties import JobProperties, is_known, literal_text
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["DOCUMENT_URLS", "unsafe_urls"]

# The provider's own pattern of ${aws:iot:s3-presigned-url[-v2]:<url>}: IoT swaps these for a presigned URL.

_URL = re.compile(r"\b(?:https?)://[^\s\"'<>\\]+", re.IGNORECASE)
# Virtual-hosted and path-style S3 endpoints: bucket.s3.amazonaws.com, s3.<region>.amazonaws.com,
# bucket.s3-<region>.amazonaws.com, s3.dualstack.<region>.amazonaws.com, ...amazonaws.com.cn.
_S3_HOST = re.compile(r"(?:^|\.)s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE)
# Signature V4 and V2 query parameters of a presigned S3 URL.
_SIGNED = frozenset({"x-amz-signature", "signature"})


def unsafe_urls(text: str) -> Iterator[str]:
    """The URLs in ``text`` a device should not download from: ``http://``, or S3 without a signature.

    Presigned-URL placeholders are not looked at: IoT replaces them with an
    HTTPS presigned URL when a device asks for the document.
    """
    for match in _URL.finditer(schema.PRESIGNED_PLACEHOLDER.sub(" ", text)):
        url = match.group(0)
        parts = urlsplit(url)
        plain_http = parts.scheme.lower() == "http"
        signed = bool({name.lower() for name in parse_qs(parts.query, keep_blank_values=True)} & _SIGNED)
        if plain_http or (_S3_HOST.search(parts.hostname or "") and not signed):
            yield url


def _document_strings(document: Any) -> Iterator[str]:
    if isinstance(document, str):
        try:
            # Decoded, so that "http:\/\/..." is seen as the device sees it.
            yield from schema.json_strings(json.loads(document))
        except ValueError:
            yield document
    else:
        # Built from tokens: the literal parts the template shows.
        yield from literal_text(document)


def _check(job: JobProperties) -> Verdict:
    document = job.get("Document")
    parameters = job.get("DocumentParameters")
    texts = list(_document_strings(document)) if document is not None else []
    if isinstance(parameters, Mapping):
        texts += [text for value in parameters.values() for text in literal_text(value)]
    if any(next(unsafe_urls(text), None) is not None for text in texts):
        return Verdict.NON_COMPLIANT
    # Only what is visible: a document_source's or a template's content is not in the template.
    if not texts or not (is_known(document) and is_known(parameters)):
        return Verdict.NOT_APPLICABLE
    return Verdict.COMPLIANT


DOCUMENT_URLS = Rule(
    suffix="R4",
    level=Level.ERROR,
    info=(
        "document (Document) or document_parameters (DocumentParameters) holds a URL over plain http:// or an S3 URL "
        "that is neither presigned nor a presigned-URL placeholder (${aws:iot:s3-presigned-url:...})."
    ),
    explanation=(
        "Devices download what the job document points at. Over http:// a firmware image can be read and replaced "
        "on the way; an unsigned S3 URL only works if the object is public. AWS IoT replaces a placeholder "
        "${aws:iot:s3-presigned-url:https://<bucket>.s3.<region>.amazonaws.com/<key>} with an HTTPS presigned URL "
        "when a device asks for the document, signed with presigned_url_config's role (AWS IoT Developer Guide, "
        "'Presigned URLs'; API PresignedUrlConfig). Fix: use https://, or JobDocument.presigned_url(bucket, key) for "
        "S3 objects. Only the document's text in the template is checked: a document_source's content is not."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
