"""The runs queue: Start while a run trains puts the new run in line instead of refusing it.

A domain expert's evening is "try this, then that, then the corrections": they should press Start three times and
walk away. A queued run is a run folder from the moment it is queued (its recipe and a copy of its data, state
"queued", phase "in-queue"), so it is listed, watched and compared like any other; the order lives in the runs
folder's `queue.json`, so the queue survives a restart of the app and a CLI (`python -m studio queue`) sees and
edits the same line. Every change happens under a file lock: the app and a CLI working through the queue never
start the same run twice. Cancelling a run still waiting removes its folder (it holds nothing but the copies).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from studio import runs
from studio.paths import runs_dir
from studio.recipe import Recipe

FILE = "queue.json"
PHASE = "in-queue"


class QueueError(ValueError):
    """A queue change that cannot be made; the message says why."""


@contextlib.contextmanager
def _locked(root: Path | None = None) -> Iterator[list[str]]:
    """The waiting run ids in order, under the queue's lock; changes to the list are written back on exit."""
    root = Path(root) if root else runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".queue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            saved = json.loads((root / FILE).read_text(encoding="utf-8")).get("order", [])
        except (OSError, ValueError, AttributeError):
            saved = []
        order = [r for r in saved if isinstance(r, str) and _waiting(root / r)]
        before = list(order)
        yield order
        if order != before or order != saved:
            runs.write_json_atomic(root / FILE, {"order": order})
            _renumber(root, order)


def _waiting(run_dir: Path) -> bool:
    status = runs.read_status(run_dir) if run_dir.is_dir() and not run_dir.is_symlink() else {}
    return status.get("state") == "queued" and status.get("phase") == PHASE


def _renumber(root: Path, order: list[str]) -> None:
    """Each waiting run's status says where it stands, so its Train tab view needs no queue of its own."""
    for i, run_id in enumerate(order):
        ahead = "the run training now" if i == 0 else order[i - 1]
        runs.write_status(root / run_id, "queued", f"Waiting in the queue ({i + 1} of {len(order)}): it starts after "
                          f"{ahead}.", phase=PHASE, position=i + 1)


def order(root: Path | None = None) -> list[str]:
    """The run ids waiting, first to start first."""
    with _locked(root) as waiting:
        return list(waiting)


def add(recipe: Recipe, data_path: str | Path, name: str = "", limit: int = 0, root: Path | None = None,
        **status) -> Path:
    """Queue a run: its folder with the recipe and a copy of the data, at the end of the line. `limit` (when set)
    is the most runs that may wait; `status` adds fields to its status (a sweep's id)."""
    source = Path(data_path)
    if not source.is_file():
        raise QueueError(f"The data file {source.name} does not exist.")
    with _locked(root) as waiting:
        if limit and len(waiting) >= limit:
            raise QueueError(f"{len(waiting)} runs are already waiting, the most this studio queues "
                             "(STUDIO_MAX_QUEUE). Cancel one or wait for the queue to move.")
        run_dir = runs.new_run_dir(name or source.stem, root)
        (run_dir / "data").mkdir()
        shutil.copyfile(source, run_dir / "data" / source.name)
        recipe.data.path = f"data/{source.name}"
        recipe.save(run_dir / "recipe.yaml")
        runs.write_status(run_dir, "queued", "Waiting in the queue.", phase=PHASE, queued_at=time.time(),
                          data_name=source.name, recipe=runs.recipe_summary(recipe), **status)
        waiting.append(run_dir.name)
    return run_dir


def pop(root: Path | None = None) -> Path | None:
    """The first waiting run, taken out of the line (its phase changes, so no other process takes it too)."""
    root = Path(root) if root else runs_dir()
    with _locked(root) as waiting:
        if not waiting:
            return None
        run_id = waiting.pop(0)
        runs.write_status(root / run_id, "queued", "Starting...", phase="waiting", position=None)
        return root / run_id


def move(run_id: str, position: int, root: Path | None = None) -> list[str]:
    """Put a waiting run at `position` (1 = next to start); returns the new order."""
    with _locked(root) as waiting:
        if run_id not in waiting:
            raise QueueError(f"Run {run_id} is not waiting in the queue.")
        waiting.remove(run_id)
        waiting.insert(min(max(int(position), 1), len(waiting) + 1) - 1, run_id)
        return list(waiting)


def cancel(run_id: str, root: Path | None = None) -> list[str]:
    """Take a waiting run out of the queue and remove its folder; returns the new order."""
    root = Path(root) if root else runs_dir()
    with _locked(root) as waiting:
        if run_id not in waiting:
            raise QueueError(f"Run {run_id} is not waiting in the queue (it may have started already: Stop it).")
        waiting.remove(run_id)
        shutil.rmtree(root / run_id, ignore_errors=True)
        return list(waiting)


def listing(root: Path | None = None) -> list[dict]:
    """The waiting runs with what they will train: position, run id, data, method, r, epochs, learning rate."""
    root = Path(root) if root else runs_dir()
    rows = []
    for i, run_id in enumerate(order(root)):
        status = runs.read_status(root / run_id)
        recipe = status.get("recipe") or {}
        rows.append({"position": i + 1, "run_id": run_id, "data": status.get("data_name", ""),
                     "method": recipe.get("method"), "r": recipe.get("r"), "epochs": recipe.get("epochs"),
                     "learning_rate": recipe.get("learning_rate"), "sweep": status.get("sweep", "")})
    return rows
