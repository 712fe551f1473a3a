"""The bucket's CORS rule that lets the site's pages play media straight from the store.

With `[storage] playback = "presigned"`, players fetch segments from the S3 endpoint,
cross-origin. AWS S3 and Ceph's radosgw let a browser read such an answer only when a
CORS rule of the bucket allows the page's origin (the presigned signature does not
count); MinIO allows every origin by default and has no bucket CORS API.

So the start-up probe makes sure a rule allows GET and HEAD from the origin of
`[server] public_url`. ClipSync keeps one rule of its own, with the ID
`clipsync-playback`, and never changes another: when the bucket's own rules already
allow the origin, nothing is added; when its own rule names an old origin, it is
replaced. `clipsync doctor` asks the store as a browser would (`preflight`).

The minio SDK has no bucket CORS calls: these send S3's `GET` and `PUT ?cors` through
its private `_execute`, which its own bucket calls use (checked on minio 7.2), as
multipart.py does for its multipart calls.
"""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

RULE_ID = "clipsync-playback"
METHODS = ("GET", "HEAD")
# Browsers may cache a preflight's answer this long (seconds).
MAX_AGE_SECONDS = 3600
# What a store answers when a bucket has no CORS configuration, or no CORS API.
NO_RULES = frozenset({"NoSuchCORSConfiguration"})
NO_API = frozenset({"NotImplemented", "MethodNotAllowed"})
_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass(frozen=True)
class CorsRule:
    """One `<CORSRule>` of a bucket's CORS configuration."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    max_age: int | None = None
    id: str = ""

    def allows(self, origin: str, method: str) -> bool:
        """Whether a browser on `origin` may `method` under this rule (`*` is a wildcard)."""
        if method not in self.methods:
            return False
        return any(_origin_pattern(allowed).fullmatch(origin) for allowed in self.origins)


@dataclass(frozen=True)
class CorsConfiguration:
    rules: tuple[CorsRule, ...] = field(default_factory=tuple)

    def allows(self, origin: str, method: str = "GET") -> bool:
        return any(rule.allows(origin, method) for rule in self.rules)

    def own_rule(self) -> CorsRule | None:
        return next((rule for rule in self.rules if rule.id == RULE_ID), None)


def _origin_pattern(allowed: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in allowed.split("*")))


def site_origin(base_url: str) -> str:
    """The origin (scheme, host and port) of the site's pages: what browsers send."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def playback_rule(origin: str) -> CorsRule:
    """ClipSync's own rule: GET and HEAD of any object from `origin`."""
    return CorsRule(
        origins=(origin,),
        methods=METHODS,
        headers=("*",),
        expose=("Content-Length", "Content-Range", "ETag"),
        max_age=MAX_AGE_SECONDS,
        id=RULE_ID,
    )


# -- the XML S3 speaks ----------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(document: bytes) -> CorsConfiguration:
    """Read a `<CORSConfiguration>` (with or without S3's XML namespace)."""
    rules = []
    for element in ET.fromstring(document):
        if _local(element.tag) != "CORSRule":
            continue
        values: dict[str, list[str]] = {}
        for child in element:
            values.setdefault(_local(child.tag), []).append((child.text or "").strip())
        max_age = values.get("MaxAgeSeconds", [""])[0]
        rules.append(
            CorsRule(
                origins=tuple(values.get("AllowedOrigin", [])),
                methods=tuple(values.get("AllowedMethod", [])),
                headers=tuple(values.get("AllowedHeader", [])),
                expose=tuple(values.get("ExposeHeader", [])),
                max_age=int(max_age) if max_age.isdigit() else None,
                id=values.get("ID", [""])[0],
            )
        )
    return CorsConfiguration(tuple(rules))


def serialize(configuration: CorsConfiguration) -> bytes:
    root = ET.Element("CORSConfiguration", xmlns=_NAMESPACE)
    for rule in configuration.rules:
        element = ET.SubElement(root, "CORSRule")
        if rule.id:
            ET.SubElement(element, "ID").text = rule.id
        for tag, values in (
            ("AllowedOrigin", rule.origins),
            ("AllowedMethod", rule.methods),
            ("AllowedHeader", rule.headers),
            ("ExposeHeader", rule.expose),
        ):
            for value in values:
                ET.SubElement(element, tag).text = value
        if rule.max_age is not None:
            ET.SubElement(element, "MaxAgeSeconds").text = str(rule.max_age)
    return ET.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- talking to the store ---------------------------------------------------------------------


def read(client: Minio, bucket: str) -> CorsConfiguration:
    """The bucket's CORS configuration; empty when it has none."""
    try:
        response = client._execute("GET", bucket, query_params={"cors": ""})
    except S3Error as exc:
        if exc.code in NO_RULES:
            return CorsConfiguration()
        raise
    return parse(response.data)


def write(client: Minio, bucket: str, configuration: CorsConfiguration) -> None:
    body = serialize(configuration)
    # S3 refuses a CORS configuration sent without its MD5.
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    client._execute(
        "PUT", bucket, body=body, headers={"Content-MD5": md5}, query_params={"cors": ""}
    )


def ensure_playback_rule(client: Minio, bucket: str, origin: str) -> str:
    """Make sure browsers on `origin` may read the bucket's objects; say what was done.

    Raises `S3Error` when the store refuses to read or change the configuration
    (NotImplemented on MinIO, AccessDenied for a key without the permission).
    """
    current = read(client, bucket)
    own = current.own_rule()
    wanted = playback_rule(origin)
    if own == wanted:
        return f"its CORS rule lets pages on {origin} play presigned media"
    others = tuple(rule for rule in current.rules if rule.id != RULE_ID)
    if own is None and CorsConfiguration(others).allows(origin):
        return f"the bucket's CORS rules let pages on {origin} play presigned media"
    write(client, bucket, CorsConfiguration((*others, wanted)))
    return f"CORS rule {RULE_ID!r} set: pages on {origin} may play presigned media"


def preflight(http: urllib3.PoolManager, url: str, origin: str) -> bool:
    """Ask the store as a browser would whether a page on `origin` may GET `url`.

    The answer to a CORS preflight follows the same rules as the answer to the GET
    itself, and needs no object to exist.
    """
    response = http.request(
        "OPTIONS",
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        retries=False,
    )
    allowed = response.headers.get("Access-Control-Allow-Origin", "")
    return response.status < 300 and allowed in (origin, "*")
