"""The web UI: the only package that imports gradio. `build_app()` lives in `studio.ui.app`.

Tabs follow the walk a user takes (Data, Model & method, Train, Chat, Runs & export), one module each;
the plain functions behind every button and the scripting API are in `studio.service`.
"""

from __future__ import annotations

import contextvars
import html
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

# The heavy imports under one lock, shared with the training job's thread (the engine's, which the UI drives).
from studio.jobs import warm_imports, warm_training_imports  # noqa: F401

# Events that run the model share one gradio queue; `studio.policy.model_turns` then lets one generate at a time,
# each waiting a bounded time, so the queue's limit only needs to let enough of them reach that wait.
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 8}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_escape(text: object) -> str:
    """User data shown inside Markdown: HTML escaped and Markdown syntax neutralised, so it reads as typed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def info(message: str) -> None:
    """A passing note on the page, in the caller's language."""
    from studio.ui import lang

    gr.Info(lang.translate(message, lang.current()))


def warn(message: str) -> None:
    """A warning on the page that leaves the event running, in the caller's language."""
    from studio.ui import lang

    gr.Warning(lang.translate(message, lang.current()))


def streamed(work: Callable[[Callable], Any], show: Callable[..., Any]) -> Iterator:
    """Run `work(report)` (an evaluation, an export) on its own thread and yield `show(*args, seconds)` for each
    `report(*args)` it makes, so the page counts and fills in while it runs; returns what `work` returned. The
    thread carries the caller's context (its model-turn allowance), and a closed page leaves it to finish."""
    updates: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            updates.put(("done", work(lambda *args: updates.put(("progress", *args)))))
        except BaseException as exc:  # noqa: BLE001 - handed to the page's thread
            updates.put(("error", exc))

    threading.Thread(target=contextvars.copy_context().run, args=(run,), name="studio-work", daemon=True).start()
    started = time.monotonic()
    while True:
        kind, *rest = updates.get()
        if kind == "done":
            return rest[0]
        if kind == "error":
            raise gr.Error(str(rest[0])) if isinstance(rest[0], ValueError) else rest[0]  # UserError is one
        yield show(*[list(a) if isinstance(a, list) else a for a in rest], time.monotonic() - started)
