"""auth_oidc without a provider: id_token checks against crafted tokens, the claim
mapping, the sealed sign-in cookie and the settings. (The flow against a real
OpenID provider is test_auth_oidc_flow.py; in Chromium, test_auth_oidc_browser.py.)"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from clipsync_auth_oidc import attempts
from clipsync_auth_oidc.claims import person_from_claims
from clipsync_auth_oidc.errors import ProviderTrouble, SignInRefused
from clipsync_auth_oidc.id_tokens import accepted_algorithms, validate_id_token
from clipsync_auth_oidc.settings import OidcSettings
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from clipsync.errors import ConfigError
from clipsync.models import Role
from clipsync.plugins import create_plugin_host
from clipsync.settings import Secret, parse_settings

ISSUER = "https://login.example.org"
CLIENT = "clipsync"
NONCE = "the-nonce-of-this-sign-in"

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
JWKS = KeySet([KEY]).as_dict(private=False)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "nonce": NONCE}
    base |= {"exp": now + 300, "iat": now}
    return {k: v for k, v in (base | changes).items() if v is not None}


def token(payload: dict[str, Any], key: Any = KEY, alg: str = "RS256", kid: str = "k1") -> str:
    return jwt.encode({"alg": alg, "kid": kid}, payload, key)


def check(id_token: str, **changes: Any) -> dict[str, Any]:
    arguments = {
        "jwks": JWKS,
        "issuer": ISSUER,
        "client_id": CLIENT,
        "nonce": NONCE,
        "algorithms": ["RS256"],
    }
    return validate_id_token(id_token, **(arguments | changes))


def refusal(id_token: str, **changes: Any) -> str:
    with pytest.raises(SignInRefused) as refused:
        check(id_token, **changes)
    return refused.value.message


# --- id_token checks ------------------------------------------------------------------


def test_a_good_id_token_gives_its_claims() -> None:
    assert check(token(claims(email="a@example.org")))["email"] == "a@example.org"


def test_an_id_token_of_another_issuer_is_refused() -> None:
    assert "not issued by" in refusal(token(claims(iss="https://evil.example.org")))


def test_an_id_token_for_another_client_is_refused() -> None:
    assert "another application" in refusal(token(claims(aud="someone-else")))
    # Several audiences without us among them, and ours among others without azp.
    assert "another application" in refusal(token(claims(aud=["a", "b"])))
    assert "azp" in refusal(token(claims(aud=[CLIENT, "other"])))


def test_an_id_token_with_another_nonce_is_refused() -> None:
    assert "wrong nonce" in refusal(token(claims(nonce="replayed")))
    assert "lacks the nonce" in refusal(token(claims(nonce=None)))


def test_an_id_token_signed_by_another_key_is_refused() -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key
    assert "signature is not" in refusal(token(claims(), key=forger))
    assert "does not publish" in refusal(token(claims(), kid="k2"))


def test_an_expired_id_token_is_refused() -> None:
    now = int(time.time())
    assert "expired" in refusal(token(claims(exp=now - 120, iat=now - 600)))
    # Within the leeway for clocks that differ a little, it still counts.
    assert check(token(claims(exp=now - 30)))["sub"] == "u-1"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_unsigned_and_secret_keyed_id_tokens_are_refused() -> None:
    # joserfc will not make an `alg: none` token: it is built by hand, as an attacker would.
    header = b64(json.dumps({"alg": "none"}).encode())
    unsigned = f"{header}.{b64(json.dumps(claims()).encode())}."
    assert "not a valid id_token" in refusal(unsigned)
    hmac_key = OctKey.import_key(b"a shared secret of thirty-two bytes!")
    assert "not a valid id_token" in refusal(token(claims(), key=hmac_key, alg="HS256"))
    # A provider advertising only HS256 or none has nothing ClipSync accepts.
    assert accepted_algorithms(["none", "HS256", "RS256"]) == ["RS256"]
    with pytest.raises(ProviderTrouble):
        check(token(claims()), algorithms=accepted_algorithms(["HS256"]))


def test_an_id_token_without_a_subject_is_refused() -> None:
    assert "sub" in refusal(token(claims(sub=None)))


# --- claims ---------------------------------------------------------------------------

MAPPED = OidcSettings(
    issuer=ISSUER,
    client_id=CLIENT,
    category_claim="department",
    category_values={"Sales": "sales", "Engineering": "staff"},
    role_groups={"video-editors": "editor", "clipsync-admins": "admin"},
)


def test_the_category_claim_maps_through_the_table() -> None:
    assert person_from_claims(claims(department="Sales"), MAPPED).category == "sales"
    # A list claim: its first mapped value counts.
    listed = claims(department=["Legal", "Engineering", "Sales"])
    assert person_from_claims(listed, MAPPED).category == "staff"


def test_an_unmapped_category_value_is_refused_without_a_default() -> None:
    with pytest.raises(SignInRefused, match="'Legal'"):
        person_from_claims(claims(department="Legal"), MAPPED)
    with pytest.raises(SignInRefused, match="nothing"):
        person_from_claims(claims(), MAPPED)
    defaulted = OidcSettings(**{**MAPPED.__dict__, "default_category": "general"})
    assert person_from_claims(claims(department="Legal"), defaulted).category == "general"


def test_the_highest_role_of_the_groups_counts() -> None:
    def role(groups: Any) -> Role | None:
        return person_from_claims(claims(department="Sales", groups=groups), MAPPED).role

    assert role(["video-editors", "clipsync-admins"]) == Role.ADMIN
    assert role(["video-editors", "other"]) == Role.EDITOR
    assert role(["other"]) == Role.USER
    assert role(None) == Role.USER


def test_without_mappings_the_provider_decides_neither_category_nor_role() -> None:
    plain = OidcSettings(issuer=ISSUER, client_id=CLIENT)
    person = person_from_claims(claims(groups=["clipsync-admins"]), plain)
    assert person.category is None and person.role is None


def test_email_verified_must_be_true() -> None:
    settings = OidcSettings(issuer=ISSUER, client_id=CLIENT)
    cases = [(True, True), ("true", True), (False, False), ("yes", False), (None, False)]
    for value, verified in cases:
        person = person_from_claims(claims(email="a@example.org", email_verified=value), settings)
        assert person.email_verified is verified, value


# --- the sign-in cookie ---------------------------------------------------------------


def test_the_cookie_keeps_an_attempt_sealed_and_refuses_tampering_and_age() -> None:
    key = OctKey.import_key(b"k" * 32)
    attempt = attempts.begin("/watch/1", 600)
    sealed = attempts.seal(attempt, key)
    assert attempt.verifier not in sealed and attempt.nonce not in sealed  # encrypted
    assert attempts.unseal(sealed, key) == attempt
    other = OctKey.import_key(b"o" * 32)
    for bad in ("", "garbage", sealed[:-4] + "AAAA"):
        with pytest.raises(SignInRefused, match="expired or was started"):
            attempts.unseal(bad, key)
    with pytest.raises(SignInRefused):
        attempts.unseal(sealed, other)
    with pytest.raises(SignInRefused):
        attempts.unseal(sealed, key, now=attempt.expires_at + 1)


# --- settings -------------------------------------------------------------------------


def host_with(table: dict[str, Any], **tables: Any):
    settings = parse_settings({"plugins": {"auth_oidc": table}, **tables}, where="test")
    return create_plugin_host(settings, load_entry_points=False)


def test_settings_name_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="client_id is required"):
        host_with({"issuer": ISSUER})
    with pytest.raises(ConfigError, match=r"role_groups: 'x' maps to 'boss'"):
        host_with({"issuer": ISSUER, "client_id": "c", "role_groups": {"x": "boss"}})
    with pytest.raises(ConfigError, match="issuer URL"):
        host_with({"issuer": "login.example.org"})
    # A category the table names must exist: checked when the routes are mounted.
    host = host_with({"issuer": ISSUER, "client_id": "c", "category_values": {"A": "nope"}})
    with pytest.raises(ConfigError, match="there is no category 'nope'"):
        host.routes()


def test_the_secret_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OIDC_SECRET", "from-the-environment")
    secret = {"$env": "TEST_OIDC_SECRET"}
    host = host_with({"issuer": ISSUER, "client_id": "c", "client_secret": secret})
    config = host.plugin_config("auth_oidc")
    assert config.client_secret == Secret("from-the-environment")
    assert "from-the-environment" not in repr(config)


def test_hook_register_sign_in_providers_and_register_routes_only_when_configured() -> None:
    off = host_with({})
    assert off.sign_in_providers() == [] and not [p for p, _ in off.routes() if p == "auth_oidc"]
    on = host_with({"issuer": ISSUER, "client_id": "c", "button_label": "Example ID"})
    [provider] = on.sign_in_providers()
    assert (provider.label, provider.url, provider.replaces_passwords) == (
        "Example ID", "/-/auth_oidc/login", False,
    )  # fmt: skip
    assert {r.path for p, r in on.routes() if p == "auth_oidc"} == {"/login", "/callback"}
    strict = host_with({"issuer": ISSUER, "client_id": "c", "allow_local_passwords": False})
    assert strict.sign_in_providers()[0].replaces_passwords
