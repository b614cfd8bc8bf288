"""The web UI: the only package that imports gradio. `build_app()` lives in `studio.ui.app`.

Tabs follow the walk a user takes (Data, Model & method, Train, Chat, Runs & export), one module each;
the plain functions behind every button and the scripting API are in `studio.service`.
"""

from __future__ import annotations

import html
import re

# The heavy imports under one lock, shared with the training job's thread (the engine's, which the UI drives).
from studio.jobs import warm_imports, warm_training_imports  # noqa: F401

# Events that run the model share one gradio queue; `studio.policy.model_turns` then lets one generate at a time,
# each waiting a bounded time, so the queue's limit only needs to let enough of them reach that wait.
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 8}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_escape(text: object) -> str:
    """User data shown inside Markdown: HTML escaped and Markdown syntax neutralised, so it reads as typed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))

