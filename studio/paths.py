"""Where Studio keeps its files: one home folder, so a shared deployment can confine access to it."""

from __future__ import annotations

import os
from pathlib import Path

# Bundled files the engine reads: sample data, the forgetting check's and the replay's general questions.
ASSETS = Path(__file__).resolve().parent.parent / "assets"


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
