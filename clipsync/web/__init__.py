"""The web UI: themed Jinja pages, static files, and the plugin pages under `/-/`."""
