"""Where Studio keeps its files: one home folder, so a shared deployment can confine access to it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Bundled files the engine reads: sample data, the forgetting check's and the replay's general questions.
ASSETS = REPO / "assets"
RECIPES_DIR = REPO / "recipes"
DEFAULT_RECIPE = RECIPES_DIR / "smollm2_135m_lora_cpu.yaml"
SAMPLE_DATA = ASSETS / "sample_qa.csv"
SAMPLE_PREFERENCES = ASSETS / "sample_preferences.csv"


def studio_home() -> Path:
    """`STUDIO_HOME`, else `/data/studio` on a Space with a persistent disk, else `~/.cache/studio`."""
    env = os.environ.get("STUDIO_HOME")
    if env:
        home = Path(env).expanduser()
    elif Path("/data").is_dir() and os.access("/data", os.W_OK):
        home = Path("/data/studio")
    else:
        home = Path.home() / ".cache" / "studio"
    home.mkdir(parents=True, exist_ok=True)
    return home


def models_dir() -> Path:
    path = studio_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = Path(os.environ.get("STUDIO_RUNS") or studio_home() / "runs").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


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
