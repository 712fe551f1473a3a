"""What a new password may be: the one check wherever a password is set.

Registration, the first administrator's set-up, `clipsync user create`, a change
and a reset all call `check_new_password`, so the rules cannot drift apart: at least
`[auth] password_min_length` characters, at most `MAX_PASSWORD_LENGTH`, and not
one of the common or breached passwords that guessing tries first.

The list (`clipsync/data/common-passwords.txt.gz`, 55,859 passwords) ships with
ClipSync, so checking needs no network and tells no outside service anything. It
is the union of the `passwords` list of @zxcvbn-ts/language-common 4.1.3 (npm, MIT)
and Django 5.2.20's `common-passwords.txt.gz` (PyPI, BSD-3-Clause); how it was made
and both licences are in `clipsync/data/common-passwords.NOTICE`.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

from clipsync.errors import ValidationFailed
from clipsync.settings import Settings

MAX_PASSWORD_LENGTH = 1024
COMMON_PASSWORDS = "common-passwords.txt.gz"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, read once per process on first use (lowercased already)."""
    data = resources.files("clipsync").joinpath("data", COMMON_PASSWORDS).read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def is_common(password: str) -> bool:
    """Whether guessing would try `password` early: case does not make it rarer."""
    return password.casefold() in common_passwords()


def check_new_password(settings: Settings, password: object, field: str = "password") -> str:
    """`password` when it may be set; otherwise a `ValidationFailed` that says why."""
    minimum = settings.auth.password_min_length
    if not isinstance(password, str) or len(password) < minimum:
        raise ValidationFailed(f"Choose a password of at least {minimum} characters.", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"Passwords can be at most {MAX_PASSWORD_LENGTH} characters.", field=field
        )
    if is_common(password):
        raise ValidationFailed(
            "This password is on a list of common passwords that are tried first when "
            "guessing. Choose another: a few unrelated words make a strong one.",
            field=field,
        )
    return password
