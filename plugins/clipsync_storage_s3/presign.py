"""Presigned PUT URLs whose signature also covers request headers (SigV4).

The minio SDK's presigned URLs sign only the `host` header. To make a presigned
upload accept one Content-Type only, the URL is signed again here with that header
added to `X-Amz-SignedHeaders` (AWS Signature Version 4, query-string auth).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from clipsync.settings import Secret


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def resign_with_headers(url: str, secret_key: Secret, headers: dict[str, str]) -> str:
    """Sign a presigned SigV4 URL again so that it also covers `headers`.

    The SDK's presigned URLs sign only `host`; the canonical request and the signing
    key are rebuilt here (AWS Signature Version 4, query-string authentication) with
    the extra headers added to X-Amz-SignedHeaders.
    """
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    values = dict(query)
    signed = {"host": parts.netloc, **{k.lower(): " ".join(v.split()) for k, v in headers.items()}}
    names = sorted(signed)
    values["X-Amz-SignedHeaders"] = ";".join(names)
    query = sorted(values.items())

    def encode(text: str) -> str:
        return quote(text, safe="-_.~")

    canonical_query = "&".join(f"{encode(k)}={encode(v)}" for k, v in query)
    canonical_request = "\n".join(
        [
            "PUT",
            parts.path or "/",
            canonical_query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    amz_date = values["X-Amz-Date"]
    scope = values["X-Amz-Credential"].split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _sign(("AWS4" + secret_key.reveal()).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    final_query = canonical_query + f"&X-Amz-Signature={signature}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, final_query, ""))
