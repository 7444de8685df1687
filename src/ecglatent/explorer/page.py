"""The explorer page: one HTML template, filled for the live app or as a self-contained file.

The plotting library is Chart.js (MIT licence, ``assets/chart.js.LICENSE.md``), copied from the
npm package ``chart.js`` (see ``scripts/vendor_chartjs.sh``) into ``assets/`` so the page never
reaches beyond 127.0.0.1: the live page loads it from the app, the static page inlines it.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

ASSETS = files("ecglatent.explorer") / "assets"
CHARTJS = "chart.umd.min.js"
APPJS = "explorer.js"


def asset_text(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    # Inside <script>, only "</" can end the element early.
    return text.replace("</", "<\\/")


def render(config: dict, inline: bool, title: str) -> str:
    """The page for ``config`` (``{"mode", "meta", ...}``); ``inline`` embeds every script."""
    if inline:
        chart = f"<script>{_script_safe(asset_text(CHARTJS))}</script>"
        app = f"<script>{_script_safe(asset_text(APPJS))}</script>"
    else:
        chart = f'<script src="assets/{CHARTJS}"></script>'
        app = f'<script src="assets/{APPJS}"></script>'
    out = asset_text("explorer.html")
    # Placeholders are replaced once each, last the data, so no content is ever re-scanned.
    out = out.replace("__TITLE__", html.escape(title), 1).replace(
        "__CSS__", asset_text("explorer.css"), 1
    )
    out = out.replace("__CHARTJS__", chart, 1).replace("__APPJS__", app, 1)
    return out.replace("__CONFIG__", _script_safe(json.dumps(config, separators=(",", ":"))), 1)
