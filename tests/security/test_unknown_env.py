"""Finding 11, environment: an unknown `CLIPSYNC_*` variable stops start-up, named.

A typo such as `CLIPSYNC_SERVER_PUBLC_URL` used to be ignored in silence, so the
server ran without the setting its administrator believed was set. Known
variables keep working: every setting's override, plugin settings
(`CLIPSYNC_PLUGINS_<PLUGIN>_<KEY>`), `CLIPSYNC_CONFIG`, and any variable a
`{ "$env" = "NAME" }` secret in the file names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clipsync.errors import ConfigError
from clipsync.plugins import create_plugin_host
from clipsync.settings import load_settings


def write(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def start(path: Path | None, environ: dict[str, str]) -> None:
    """What start-up does with the configuration: settings, then the plugins' settings."""
    settings = load_settings(path, environ=environ)
    create_plugin_host(settings, load_entry_points=False, environ=environ)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("CLIPSYNC_SERVER_PUBLC_URL", "CLIPSYNC_SERVER_PUBLIC_URL"),
        ("CLIPSYNC_SEVRER_PORT", "CLIPSYNC_SERVER_PORT"),
        ("CLIPSYNC_PLUGINS_AUTH_LOCAL_BCRYPT_ROUND", "CLIPSYNC_PLUGINS_AUTH_LOCAL_BCRYPT_ROUNDS"),
        ("CLIPSYNC_PLUGINS_STORAGE_S3_ENDPIONT", "CLIPSYNC_PLUGINS_STORAGE_S3_ENDPOINT"),
        ("CLIPSYNC_PLUGIN_DISABLED", "CLIPSYNC_PLUGINS_DISABLED"),
        ("CLIPSYNC_WHATEVER", None),
    ],
)
def test_an_unknown_variable_stops_start_up_with_its_name(
    tmp_path: Path, name: str, suggestion: str | None
) -> None:
    with pytest.raises(ConfigError) as error:
        start(write(tmp_path), {name: "x", "CLIPSYNC_SERVER_PORT": "9000"})
    message = str(error.value)
    assert name in message
    if suggestion:
        assert f"Did you mean {suggestion}?" in message


def test_known_variables_keep_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        '[plugins.storage_s3]\naccess_key = { "$env" = "CLIPSYNC_S3_ACCESS_KEY" }\n'
        'secret_key = { "$env" = "CLIPSYNC_PLUGINS_S3_SECRET" }\n',
    )
    environ = {
        "CLIPSYNC_CONFIG": str(path),  # read by the command line
        "CLIPSYNC_SERVER_PUBLIC_URL": "https://videos.example.org",
        "CLIPSYNC_PATHS_DATA_DIR": str(tmp_path / "data"),
        "CLIPSYNC_DATABASE_URL": "",
        "CLIPSYNC_PLUGINS_DISABLED": "transcoder_vaapi",
        "CLIPSYNC_PLUGINS_AUTH_LOCAL_BCRYPT_ROUNDS": "5",
        # A disabled plugin's settings are its own business.
        "CLIPSYNC_PLUGINS_TRANSCODER_VAAPI_WHATEVER": "x",
        # Named by $env secrets in the file, even one that looks like a plugin key.
        "CLIPSYNC_S3_ACCESS_KEY": "key",
        "CLIPSYNC_PLUGINS_S3_SECRET": "secret",
        # Not ClipSync's: left alone.
        "CLIPSYNCER_MODE": "x",
        "PATH": os.environ.get("PATH", ""),
    }
    # `$env` secrets read the process's own environment.
    monkeypatch.setenv("CLIPSYNC_S3_ACCESS_KEY", "key")
    monkeypatch.setenv("CLIPSYNC_PLUGINS_S3_SECRET", "secret")
    settings = load_settings(path, environ=environ)
    host = create_plugin_host(settings, load_entry_points=False, environ=environ)
    assert settings.server.base_url == "https://videos.example.org"
    assert host.plugin_config("auth_local").bcrypt_rounds == 5
    assert "transcoder_vaapi" not in host.infos


def test_the_command_refuses_to_start_with_a_mistyped_variable(tmp_path: Path) -> None:
    path = write(tmp_path, f'[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    env["CLIPSYNC_SERVER_PUBLC_URL"] = "https://videos.example.org"
    result = subprocess.run(
        [sys.executable, "-m", "clipsync", "--config", str(path), "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CLIPSYNC_SERVER_PUBLC_URL" in result.stderr
    assert "CLIPSYNC_SERVER_PUBLIC_URL" in result.stderr
