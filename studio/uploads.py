"""Uploads kept where a page reload or an app restart finds them again.

Gradio keeps an upload in its own cache, swept after a day, and the page forgets it on reload. A domain expert
who reloads mid-run, or comes back tomorrow, should find their file still loaded. So a loaded file is copied
into STUDIO_HOME/kept-data under its content hash, and the browser keeps only a token naming that copy
("<hash>/<name>"), never a path: a token from a browser is checked to name a file inside that folder, so a
crafted one reads nothing else. Copies unused for `KEEP_DAYS` are removed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from pathlib import Path

from studio.paths import studio_home

KEEP_DAYS = 14
_TOKEN = re.compile(r"^[0-9a-f]{20}/[^/\\\x00]{1,200}$")


def uploads_dir() -> Path:
    path = studio_home() / "kept-data"  # not "uploads": the document drafts write their reviewed pairs there
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep(path: str | Path, name: str | None = None) -> str:
    """Copy `path` into the uploads folder (once per content) and return its token."""
    source = Path(path)
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    safe = re.sub(r"[/\\\x00]", "_", name or source.name)[:200] or "data"
    token = f"{digest.hexdigest()[:20]}/{safe}"
    target = uploads_dir() / token
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{safe}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    else:
        target.touch()  # in use again: kept another KEEP_DAYS
    _prune()
    return token


def find(token: object) -> Path | None:
    """The kept file a token names, or None (unknown, pruned, or not a token at all)."""
    if not isinstance(token, str) or not _TOKEN.match(token) or ".." in token.split("/"):
        return None
    root = uploads_dir().resolve()
    path = (root / token).resolve()
    return path if path.parent.parent == root and path.is_file() else None


def is_kept(path: str | Path) -> bool:
    return Path(path).resolve().parent.parent == uploads_dir().resolve()


def token_of(path: str | Path) -> str:
    """The token of a kept file ("" for any other path)."""
    return Path(path).resolve().relative_to(uploads_dir().resolve()).as_posix() if is_kept(path) else ""


def _prune() -> None:
    cutoff = time.time() - KEEP_DAYS * 86400
    for folder in uploads_dir().iterdir():
        try:
            if folder.is_dir() and all(f.stat().st_mtime < cutoff for f in folder.iterdir()):
                shutil.rmtree(folder)
        except OSError:
            pass  # in use by another process, or already gone
