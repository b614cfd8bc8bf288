"""How the Docker image (a Hugging Face Space) starts: `python -m studio.space`, the Dockerfile's CMD.

A Space with persistent storage mounts it at /data. There the studio's home moves to /data/studio, and what the
image baked (the converted default model, the demo run) is copied in where it is missing, so it survives restarts
and a visitor's runs do too; without /data the image's own home is used. Then the app starts on $PORT.
`STUDIO_SPACE_DATA` names another folder than /data (the tests use a temporary one).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BAKED = ("models", "runs")


def prepare_home(data_dir: Path | None = None) -> Path:
    """STUDIO_HOME for this start: `data_dir`/studio when that folder is there and writable, with what the image
    baked copied in where missing; else the image's own home. Sets STUDIO_HOME and returns it."""
    data_dir = Path(data_dir or os.environ.get("STUDIO_SPACE_DATA") or "/data")
    baked = Path(os.environ.get("STUDIO_HOME") or Path.home() / ".cache" / "studio")
    if not (data_dir.is_dir() and os.access(data_dir, os.W_OK)):
        os.environ["STUDIO_HOME"] = str(baked)
        return baked
    home = data_dir / "studio"
    for name in BAKED:
        source, target = baked / name, home / name
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir() if source.is_dir() else []:
            if not (target / item.name).exists():  # never over a visitor's run or a model already there
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, target / item.name)
    os.environ["STUDIO_HOME"] = str(home)
    return home


def main() -> None:
    home = prepare_home()
    print(f"Studio home: {home}", flush=True)
    port = os.environ.get("PORT", "7860")
    os.execv(sys.executable, [sys.executable, str(REPO / "app.py"), "--port", port])


if __name__ == "__main__":
    main()
