"""`[auth] two_factor_secret`: the key that seals two-factor secrets, set the same on
every host, as `[plugins.auth_local] jwt_secret` is (issue 19, deploy/multi-host.md).

Hosts are apps with data directories of their own on one PostgreSQL database, as in
tests/test_multi_host_units.py; a one-host install keeps its generated key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from clients import PASSWORD, register
from services import PostgresServer

from clipsync import db, generated_keys
from clipsync.errors import ConfigError
from clipsync.host_sharing import sharing_check
from clipsync.services.two_factor import TwoFactor
from clipsync.settings import Settings

SECRET = "one two-factor secret for every host, long and random"
SHARED_BACKENDS = {
    "queue": {"backend": "redis"},
    "storage": {"backend": "s3"},
    "analytics": {"backend": "clickhouse"},
}


def host(make_settings: Callable[..., Settings], tmp_path: Path, name: str, **tables: Any):
    return make_settings(paths={"data_dir": str(tmp_path / name / "data")}, **tables)


def key_file(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "two_factor.key"


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"twofactor_{uuid.uuid4().hex[:10]}")


async def check_shared(settings: Settings) -> None:
    await db.open_database(settings)
    try:
        await generated_keys.check_shared(settings)
    finally:
        await db.close_database()


def test_the_two_factor_secret_is_a_secret_setting_that_may_come_from_the_environment(
    make_settings, monkeypatch
) -> None:
    assert not make_settings().auth.two_factor_secret
    monkeypatch.setenv("TWO_FACTOR_FROM_VAULT", SECRET)
    settings = make_settings(auth={"two_factor_secret": {"$env": "TWO_FACTOR_FROM_VAULT"}})
    assert settings.auth.two_factor_secret.reveal() == SECRET
    assert SECRET not in repr(settings.auth)


def test_a_set_secret_seals_alike_on_every_host_and_no_key_is_generated(
    make_settings, tmp_path: Path
) -> None:
    one = TwoFactor(host(make_settings, tmp_path, "a", auth={"two_factor_secret": SECRET}))
    two = TwoFactor(host(make_settings, tmp_path, "b", auth={"two_factor_secret": SECRET}))
    sealed = one._secrets()[0].encrypt(b"JBSWY3DPEHPK3PXP")
    assert two._secrets()[0].decrypt(sealed) == b"JBSWY3DPEHPK3PXP"
    assert one._secrets()[1] == two._secrets()[1]  # the mfaToken's signing key
    assert not key_file(one.settings).exists() and not key_file(two.settings).exists()


def test_the_generated_keys_text_set_as_the_secret_keeps_what_it_sealed(
    make_settings, tmp_path: Path
) -> None:
    # A one-host install, unchanged: it generates its key and seals with it.
    alone = TwoFactor(host(make_settings, tmp_path, "a"))
    sealed = alone._secrets()[0].encrypt(b"JBSWY3DPEHPK3PXP")
    text = key_file(alone.settings).read_text().strip()
    assert TwoFactor(alone.settings)._secrets()[0].decrypt(sealed) == b"JBSWY3DPEHPK3PXP"
    # Moved to several hosts with that text as the setting: enrolments still open.
    moved = TwoFactor(host(make_settings, tmp_path, "b", auth={"two_factor_secret": text}))
    assert moved._secrets()[0].decrypt(sealed) == b"JBSWY3DPEHPK3PXP"


async def test_a_code_enrolled_on_one_host_signs_in_on_another_that_set_the_same_secret(
    start_app, make_settings, tmp_path: Path, database: str
) -> None:
    tables = {
        "database": {"url": database},
        "auth": {"two_factor_secret": SECRET},
        "plugins": {"auth_local": {"bcrypt_rounds": 4, "jwt_secret": "one jwt secret " * 4}},
    }
    first = host(make_settings, tmp_path, "web1", **tables)
    await db.migrate(first)
    second = host(make_settings, tmp_path, "web2", **tables)
    for settings in (first, second):
        await check_shared(settings)  # neither refuses: both seal with the set secret
    _, one = await start_app(first)
    _, two = await start_app(second)

    token = (await register(one, "ann@example.org"))["token"]
    setup = await one.post("/api/auth/mfa/totp/setup", headers={"Authorization": f"Bearer {token}"})
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    confirm = await one.post(
        "/api/auth/mfa/totp/confirm",
        json={"code": totp.at(time.time() - 30)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert confirm.status_code == 200, confirm.text

    # The password on web1, the code on web2 (round robin, no sticky sessions).
    step = await one.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert step.json()["mfaRequired"] is True
    done = await two.post(
        "/api/auth/mfa/verify", json={"mfaToken": step.json()["mfaToken"], "code": totp.now()}
    )
    assert done.status_code == 200, done.text
    assert not key_file(first).exists() and not key_file(second).exists()


async def test_a_host_generating_its_own_two_factor_key_beside_one_that_set_it_is_refused(
    make_settings, tmp_path: Path, database: str
) -> None:
    configured = host(
        make_settings, tmp_path, "a", database={"url": database}, auth={"two_factor_secret": SECRET}
    )
    await db.migrate(configured)
    forgot = host(make_settings, tmp_path, "b", database={"url": database})
    other = host(
        make_settings,
        tmp_path,
        "c",
        database={"url": database},
        auth={"two_factor_secret": "x" * 40},
    )
    await check_shared(configured)
    await check_shared(configured)  # a restart is fine
    with pytest.raises(ConfigError) as refused:
        await check_shared(forgot)
    assert "two_factor.key was generated on this host" in str(refused.value)
    assert "set [auth] two_factor_secret to the same secret on every host" in str(refused.value)
    with pytest.raises(ConfigError) as differs:
        await check_shared(other)
    assert str(differs.value).startswith("[auth] two_factor_secret on this host is not the key")
    assert "x" * 40 not in str(differs.value) and SECRET not in str(differs.value)
    # Set the same there too: it starts.
    await check_shared(host(make_settings, tmp_path, "b", database={"url": database},
                            auth={"two_factor_secret": SECRET}))  # fmt: skip


async def test_doctor_names_the_two_factor_secret_on_a_host_that_would_seal_with_another_key(
    make_settings, tmp_path: Path, database: str
) -> None:
    shared = {"database": {"url": database}, **SHARED_BACKENDS}
    first = host(make_settings, tmp_path, "a", auth={"two_factor_secret": SECRET}, **shared)
    await db.migrate(first)
    await check_shared(first)
    second = host(make_settings, tmp_path, "b", **shared)
    ok, required, detail = await sharing_check(second)
    assert (ok, required) == (False, True), detail
    assert detail.startswith("2 hosts share this database, but its two_factor.key")
    assert "set [auth] two_factor_secret to the same secret on every host" in detail
    assert not key_file(second).exists()  # the doctor only looks
    fixed = host(make_settings, tmp_path, "b", auth={"two_factor_secret": SECRET}, **shared)
    assert await sharing_check(fixed) == (True, True, "everything is shared (2 host(s) seen)")
    assert await sharing_check(first) == (True, True, "everything is shared (1 host(s) seen)")
