"""The web UI: the only package that imports gradio. `build_app()` lives in `studio.ui.app`.

Tabs follow the walk a user takes (Data, Model & method, Train, Chat, Runs & export), one module each;
the plain functions behind the scripting API are in `studio.ui.api`.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_escape(text: object) -> str:
    """User data shown inside Markdown: HTML escaped and Markdown syntax neutralised, so it reads as typed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))
