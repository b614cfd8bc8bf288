"""The web UI: the only package that imports gradio. `build_app()` lives in `studio.ui.app`.

Tabs follow the walk a user takes (Data, Model & method, Train, Chat, Runs & export), one module each;
the plain functions behind the scripting API are in `studio.ui.api`.
"""

from __future__ import annotations

import html
import re
import tempfile
import threading
from pathlib import Path

# Events that run the model share one gradio queue; `studio.policy.model_turns` then lets one generate at a time,
# each waiting a bounded time, so the queue's limit only needs to let enough of them reach that wait.
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 8}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_escape(text: object) -> str:
    """User data shown inside Markdown: HTML escaped and Markdown syntax neutralised, so it reads as typed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def downloads_dir() -> Path:
    """Where files handed to the browser are written: the system temp folder, the one place (with the working
    directory) gradio copies outputs from without serving the folder itself; STUDIO_HOME is never served."""
    path = Path(tempfile.gettempdir()) / "studio-downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


DOWNLOAD_MAX_AGE_S = 3600


def prune_downloads(max_age_s: float = DOWNLOAD_MAX_AGE_S) -> int:
    """Delete what was handed to the browser more than `max_age_s` ago; the number of entries removed.

    A merged-model export is hundreds of MB, and gradio serves its own copy, so ours is only needed
    until the click is answered. Without this a Space's disk fills with repeated exports.
    """
    import shutil
    import time

    cutoff, removed = time.time() - max_age_s, 0
    for entry in downloads_dir().iterdir():
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            pass  # another process is cleaning too, or the file is in use: try again next time
    return removed


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
