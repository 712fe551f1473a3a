"""Themes: layered Jinja templates and static files.

The active theme's templates are looked up first and the `default` theme fills in
everything it does not override; `{% extends "default:base.html" %}` reaches the
default version of a template the theme replaces. Static files are layered the same
way, over ClipSync's own bundled front-end files (`clipsync/static`).
"""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from sanic import Request
from sanic.response import HTTPResponse, html

from clipsync import __version__
from clipsync.errors import ConfigError
from clipsync.sessions import csrf_token
from clipsync.settings import Settings
from clipsync.sizes import format_size

if TYPE_CHECKING:
    from clipsync.models import User

DEFAULT_THEME = "default"


def builtin_themes() -> Path:
    return Path(str(importlib.resources.files("clipsync_themes")))


def bundled_static() -> Path:
    return Path(str(importlib.resources.files("clipsync") / "static"))


def find_theme(settings: Settings, name: str) -> Path:
    """The folder of theme `name`: `[web] themes_dirs` first, then the shipped themes."""
    searched = [settings.resolve_path(d) for d in settings.web.themes_dirs] + [builtin_themes()]
    for folder in searched:
        candidate = folder / name
        if (candidate / "theme.toml").is_file():
            return candidate
    places = ", ".join(str(f) for f in searched)
    raise ConfigError(f"{settings.describe()}: [web] theme = {name!r}: no such theme in {places}")


def theme_info(folder: Path) -> dict[str, Any]:
    """The theme's `theme.toml` (name, label, description), shown to templates as `theme`."""
    try:
        with (folder / "theme.toml").open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{folder / 'theme.toml'}: not valid TOML: {exc}") from None


class Templates:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        default = find_theme(settings, DEFAULT_THEME)
        active = find_theme(settings, settings.web.theme)
        layers = [active, default] if active != default else [default]
        self.theme = theme_info(active)
        self.static_dirs = [t / "static" for t in layers if (t / "static").is_dir()]
        self.static_dirs.append(bundled_static())
        self.env = Environment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader([str(t / "templates") for t in layers]),
                    PrefixLoader(
                        {"default": FileSystemLoader(str(default / "templates"))}, delimiter=":"
                    ),
                ]
            ),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Sizes in binary units, as the settings count them (Jinja's own
        # `filesizeformat` writes 2 GiB as "2.1 GB").
        self.env.filters["filesize"] = format_size

    def context(self, request: Request) -> dict[str, Any]:
        """What every template can use; documented in docs/themes.md."""
        settings = self.settings
        actor: User | None = getattr(request.ctx, "actor", None)
        category = settings.category(actor.category) if actor else None
        return {
            "request": request,
            "actor": actor,
            "csrf_token": csrf_token(request),
            "site_name": settings.web.site_name,
            "version": __version__,
            "registration_open": settings.auth.registration == "open",
            "registration": settings.auth.registration,
            "password_min_length": settings.auth.password_min_length,
            "categories": [c for c in settings.categories if c.self_select],
            "default_category": settings.default_category.name,
            "category_label": category.label if category else (actor.category if actor else ""),
            "static_url": static_url,
            "theme": self.theme,
        }

    def render(
        self,
        request: Request,
        name: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTTPResponse:
        template = self.env.get_template(name)
        body = template.render({**self.context(request), "status": status, **context})
        return html(body, status=status, headers=headers)

    def static_file(self, relative: str) -> Path | None:
        """The first layer's file for `relative`, never a path outside the layers."""
        for folder in self.static_dirs:
            base = folder.resolve()
            candidate = (base / relative).resolve()
            if candidate.is_relative_to(base) and candidate.is_file():
                return candidate
        return None


def static_url(path: str) -> str:
    return f"/static/{path.lstrip('/')}"
