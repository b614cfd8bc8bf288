"""The web UI: the only package that imports gradio. `build_app()` lives in `studio.ui.app`.

Tabs follow the walk a user takes (Data, Model & method, Train, Chat, Runs & export), one module each;
the plain functions behind every button and the scripting API are in `studio.service`.
"""

from __future__ import annotations

import html
import re
import threading

# Events that run the model share one gradio queue; `studio.policy.model_turns` then lets one generate at a time,
# each waiting a bounded time, so the queue's limit only needs to let enough of them reach that wait.
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 8}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_escape(text: object) -> str:
    """User data shown inside Markdown: HTML escaped and Markdown syntax neutralised, so it reads as typed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


_import_lock = threading.Lock()


def warm_imports() -> None:
    """Import torch, transformers and peft once, under a lock, before any handler needs them.

    On a fresh page load two handlers (the data analysis and the recipe estimate) would otherwise do
    their first heavy import at the same moment in two threads; transformers' lazy modules are not
    safe for that (one fresh page load here never finished its analysis, most likely this). Later calls
    return at once.
    """
    with _import_lock:
        import peft  # noqa: F401
        import torch  # noqa: F401
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: F401


def warm_training_imports() -> None:
    """Also what a training job imports first (TRL, datasets), so Start does not wait for them (~5 s)."""
    warm_imports()
    with _import_lock:
        import datasets  # noqa: F401
        import trl  # noqa: F401
        from trl import SFTTrainer  # noqa: F401
