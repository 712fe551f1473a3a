from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from clipsync.errors import ConfigError
from clipsync.plugins import create_plugin_host
from clipsync.settings import SECTIONS, Secret, Settings, load_settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_settings_work_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.server.port == 8000
    assert settings.queue.backend == "sqlite"
    assert settings.default_category.name == "general"
    assert settings.database_url.startswith("sqlite://")
    assert settings.database_url.endswith("data/clipsync.sqlite3")


def test_shipped_config_states_every_default() -> None:
    shipped = load_settings(SHIPPED, environ={})
    defaults = Settings(source=SHIPPED)
    for section in SECTIONS:
        assert getattr(shipped, section) == getattr(defaults, section), section
    assert shipped.plugins == defaults.plugins
    assert shipped.categories == defaults.categories
    host = create_plugin_host(shipped, load_entry_points=False, environ={})
    default_host = create_plugin_host(defaults, load_entry_points=False, environ={})
    assert host.configs == default_host.configs


def test_shipped_config_has_every_key_with_a_comment() -> None:
    raw = tomllib.loads(SHIPPED.read_text())
    lines = SHIPPED.read_text().splitlines()
    host = create_plugin_host(Settings(), load_entry_points=False, environ={})
    tables = {name: cls for name, cls in SECTIONS.items()}
    tables |= {f"plugins.{name}": type(config) for name, config in host.configs.items()}
    for table, cls in tables.items():
        values = raw
        for part in table.split("."):
            values = values[part]
        for field in dataclasses.fields(cls):
            assert field.name in values, f"config.toml lacks [{table}] {field.name}"
    # A comment sits above every key, or above the group of keys (or table) it is in.
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            above = number - 1
            while re.match(r"^([a-z_]+ = |\[)", lines[above]):
                above -= 1
            assert lines[above].startswith("#"), f"no comment explains: {line}"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nprot = 8080\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(path) in str(error.value)
    assert "[server]" in str(error.value) and "'prot'" in str(error.value)


def test_a_retired_setting_is_ignored_with_a_warning_saying_what_replaced_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An upgrade does not stop at start-up over `token_lifetime_hours`, gone with sessions."""
    path = write(tmp_path, "[auth]\ntoken_lifetime_hours = 168\nsession_days = 10\n")
    with caplog.at_level("WARNING"):
        settings = load_settings(path, environ={})
    assert settings.auth.session_days == 10
    assert "token_lifetime_hours is no longer used" in caplog.text
    assert "access_token_minutes" in caplog.text
    # Elsewhere the name is as unknown as any other.
    with pytest.raises(ConfigError, match="'token_lifetime_hours'"):
        load_settings(write(tmp_path, "[server]\ntoken_lifetime_hours = 1\n"), environ={})


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting serverr"):
        load_settings(write(tmp_path, "[serverr]\nport = 1\n"), environ={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[server]\nport = "eighty"\n', r"\[server\] port: expected an integer, got 'eighty'"),
        ("[server]\nport = 0\n", r"\[server\] port must be greater than 0"),
        ("[server]\nsecure_cookies = 1\n", r"\[server\] secure_cookies: expected true or false"),
        ('[queue]\nbackend = "rabbit"\n', r"\[queue\] backend: expected one of 'sqlite', 'redis'"),
        ("[auth]\npassword_min_length = 4\n", r"password_min_length must be at least 8"),
        ('[plugins]\ndisabled = "auth_local"\n', r"\[plugins\] disabled: expected a list"),
        ("[server\n", r"not valid TOML"),
    ],
)
def test_bad_values_stop_start_up_with_the_key_named(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError, match=message) as error:
        load_settings(path, environ={})
    assert str(path) in str(error.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\n")
    environ = {
        "CLIPSYNC_SERVER_PORT": "9100",
        "CLIPSYNC_SERVER_SECURE_COOKIES": "yes",
        "CLIPSYNC_PLUGINS_DISABLED": "a, b",
        "CLIPSYNC_DATABASE_URL": "postgres://u:p@h/db",
    }
    settings = load_settings(path, environ=environ)
    assert settings.server.port == 9100
    assert settings.server.secure_cookies is True
    assert settings.plugins.disabled == ["a", "b"]
    assert settings.database_url == "postgres://u:p@h/db"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLIPSYNC_SERVER_PORT"):
        load_settings(None, environ={"CLIPSYNC_SERVER_PORT": "lots"})


def test_plugin_settings_are_overridden_from_the_environment() -> None:
    settings = Settings()
    host = create_plugin_host(
        settings,
        load_entry_points=False,
        environ={"CLIPSYNC_PLUGINS_AUTH_LOCAL_BCRYPT_ROUNDS": "5"},
    )
    assert host.plugin_config("auth_local").bcrypt_rounds == 5


def test_secrets_come_from_env_and_file_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_URL_FOR_TEST", "postgres://user:hunter2@db/clipsync")
    secret_file = tmp_path / "jwt"
    secret_file.write_text("from-a-file\n")
    path = write(
        tmp_path,
        '[database]\nurl = { "$env" = "DB_URL_FOR_TEST" }\n'
        f'[plugins.auth_local]\njwt_secret = {{ "$file" = "{secret_file}" }}\n',
    )
    settings = load_settings(path, environ={})
    assert settings.database_url == "postgres://user:hunter2@db/clipsync"
    assert "hunter2" not in repr(settings)
    host = create_plugin_host(settings, load_entry_points=False, environ={})
    assert host.plugin_config("auth_local").jwt_secret.reveal() == "from-a-file"
    assert "from-a-file" not in repr(host.configs)
    assert str(Secret("x")) == "Secret('********')"


def test_secret_files_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "db-url").write_text("postgres://u:p@h/db\n")
    settings = load_settings(
        write(tmp_path, '[database]\nurl = { "$file" = "db-url" }\n'), environ={}
    )
    assert settings.database_url == "postgres://u:p@h/db"


def test_secret_from_a_missing_variable_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = { "$env" = "CLIPSYNC_TEST_NOT_SET" }\n')
    with pytest.raises(ConfigError, match="CLIPSYNC_TEST_NOT_SET is not set or empty"):
        load_settings(path, environ={})


def test_secret_from_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = { "$file" = "/nonexistent/secret" }\n')
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_settings(path, environ={})


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[paths]\ndata_dir = "state"\n'), environ={})
    assert settings.data_dir == tmp_path / "state"


CATEGORIES = """
[[category]]
name = "dealers"
label = "Dealers"
self_select = true
default = true

[[category]]
name = "staff"
label = "Staff"
"""


def test_categories_come_from_the_config(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, CATEGORIES), environ={})
    assert [c.name for c in settings.categories] == ["dealers", "staff"]
    assert settings.default_category.name == "dealers"
    assert settings.category("staff").self_select is False


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[category]]\nname = "a"\nlabel = "A"\n',
            "exactly one \\[\\[category\\]\\] must have default",
        ),
        (CATEGORIES.replace("staff", "dealers"), "appears twice"),
        ('[[category]]\nname = "a b"\nlabel = "A"\ndefault = true\n', "must be letters"),
        ('[[category]]\nname = "a"\ndefault = true\n', "label"),
    ],
)
def test_bad_categories_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, toml), environ={})


def test_a_table_for_no_loaded_plugin_is_refused() -> None:
    settings = parse_settings({"plugins": {"storage_s4": {"x": 1}}}, where="cfg")
    with pytest.raises(ConfigError, match=r"\[plugins.storage_s4\]: no loaded plugin reads"):
        create_plugin_host(settings, load_entry_points=False, environ={})


def test_hook_settings_schema_a_bad_plugin_setting_names_the_plugin_key() -> None:
    settings = parse_settings({"plugins": {"auth_local": {"bcrypt_round": 10}}}, where="cfg")
    with pytest.raises(ConfigError, match=r"\[plugins.auth_local\] has no setting 'bcrypt_round'"):
        create_plugin_host(settings, load_entry_points=False, environ={})


def test_bcrypt_cost_defaults_to_12_and_is_bounded() -> None:
    host = create_plugin_host(Settings(), load_entry_points=False, environ={})
    assert host.plugin_config("auth_local").bcrypt_rounds == 12
    settings = parse_settings({"plugins": {"auth_local": {"bcrypt_rounds": 40}}}, where="cfg")
    with pytest.raises(ConfigError, match="bcrypt_rounds must be between 4 and 16"):
        create_plugin_host(settings, load_entry_points=False, environ={})
