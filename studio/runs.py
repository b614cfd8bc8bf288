"""Run folders: the one place a run's state lives, so a closed tab or a restarted app loses nothing.

A run folder holds `recipe.yaml`, `data/`, `metrics.jsonl`, `status.json`, `checkpoints/` and, when
done, `adapter/` (or `model/` for full fine-tunes). Every write is atomic or append-only, so a kill -9
never leaves a half-written status or metrics line behind.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from studio.paths import runs_dir

ACTIVE = ("queued", "running", "stopping")
FINAL = ("stopped", "failed", "done", "interrupted")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RunNotFound(LookupError):
    pass


class TrainingFailed(RuntimeError):
    """A run cannot go on; the message is meant for the user as it is."""


@dataclass
class Split:
    """A run's data read once: the rows it trains on and the rows it holds out, as its objective shapes them."""

    train: list
    eval: list


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def append_jsonl(path: Path, obj) -> None:
    """One write call per line: a crash leaves whole lines or a last partial one that readers skip."""
    line = json.dumps(obj, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with _open_no_link(path) as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a partial last line from a crash
    except FileNotFoundError:
        pass
    return rows


def new_run_dir(name: str = "", root: Path | None = None) -> Path:
    root = Path(root) if root else runs_dir()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        run_id = f"{stamp}-{slug}" if slug else stamp
        run_id += f"-{i}" if i else ""
        path = root / run_id
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError("could not create a run folder")


def linked(run_dir: Path) -> Path | None:
    """The first symbolic link in a run folder (the folder itself included), or None.

    Studio never writes one, so a link is someone pointing a run's file at another file of the machine
    (`train.log` -> /etc/passwd): such a run is neither listed nor opened, and so nothing is read through it.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        return run_dir
    for folder, dirs, files in os.walk(run_dir):  # os.walk does not follow links into folders
        for name in dirs + files:
            if os.path.islink(os.path.join(folder, name)):
                return Path(folder, name)
    return None


def resolve_run(run: str | Path, root: Path | None = None) -> Path:
    """A run id, confined to the runs root: a name, never a path, and never a folder holding a link."""
    root = (Path(root) if root else runs_dir()).resolve()
    text = str(run)
    if _RUN_ID.fullmatch(text) and ".." not in text:
        path = root / text
        if path.resolve().parent == root and path.is_dir() and linked(path) is None:
            return path.resolve()
    raise RunNotFound(f"No run named '{text[:80]}'. Pick one from the list of runs.")


def resolve_run_path(run: str | Path) -> Path:
    """For the CLI: a folder path the user typed, or a run id under the runs root."""
    path = Path(run).expanduser()
    if path.is_dir() and (path / "status.json").exists():
        link = linked(path)
        if link is not None:
            raise RunNotFound(f"{path} holds a symbolic link ({link}); Studio reads no run file through a link. "
                              "Replace the link with the file itself.")
        return path.resolve()
    return resolve_run(run)


PHASES = {"in-queue": "waiting in the queue", "waiting": "waiting to start",
          "preparing": "reading the data and loading the model",
          "drafting": "drafting extra examples", "training": "training", "saving": "saving the weights",
          "evaluating": "answering the held-out questions"}


def recipe_summary(recipe) -> dict:
    """The settings a run's status carries for the runs table: base, method, objective, beta, r, alpha, epochs,
    learning rate and batch size."""
    m, t = recipe.method, recipe.training
    return {"base": recipe.model.base, "method": m.name, "objective": m.objective, "beta": m.beta, "r": m.r,
            "alpha": m.alpha, "epochs": t.epochs, "learning_rate": t.learning_rate, "batch_size": t.batch_size}


def write_status(run_dir: Path, state: str, message: str = "", phase: str | None = None, **extra) -> dict:
    """The status, merged into what is there. A new `phase` (one of PHASES) is stamped with the time it began, so a
    run can say where its wall time went: "preparing 10 s, drafting 57 s, training 90 s"."""
    status = read_status(run_dir)
    status.update(extra)
    now = time.time()
    status.update(state=state, message=message, updated=now, pid=os.getpid())
    status.setdefault("created", now)
    if phase is None and state in FINAL and status.get("phases"):
        phase = "ended"  # the time until a resume is nobody's phase
    if phase and status.get("phase") != phase:
        status["phase"] = phase
        status["phases"] = [*status.get("phases", []), [phase, round(now, 2)]]
    write_json_atomic(Path(run_dir) / "status.json", status)
    return status


def phase_seconds(status: dict, until: float | None = None) -> list[tuple[str, float]]:
    """(phase, seconds) in order; the last phase runs `until` then, else to now while active and to the last update
    once finished. A phase entered twice (a resumed run trains again) adds up under its first place."""
    marks = status.get("phases") or []
    end = until or (time.time() if status.get("state") in ACTIVE else status.get("updated", time.time()))
    totals: dict[str, float] = {}
    for (name, began), nxt in zip(marks, [*marks[1:], [None, end]], strict=True):
        if name not in ("ended", "in-queue"):  # neither the time after a stop nor in the queue is the run's own
            totals[name] = totals.get(name, 0.0) + max(nxt[1] - began, 0.0)
    return list(totals.items())


def wall_summary(status: dict, until: float | None = None) -> str:
    """"2 min 40 s from Start: preparing 10 s, drafting 57 s, training 90 s, saving 3 s"."""
    parts = phase_seconds(status, until)
    if not parts:
        return ""
    total = sum(s for _, s in parts)
    return f"{duration(total)} from Start: " + ", ".join(f"{name} {duration(s)}" for name, s in parts if s >= 0.5)


def duration(seconds: float) -> str:
    """Plain wall time: "8 s", "2 min 05 s", "1 h 03 min"."""
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _open_no_link(path: Path):
    """`open(path)` for reading, refused (OSError) when the file itself is a symbolic link."""
    return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), encoding="utf-8")


def read_status(run_dir: Path) -> dict:
    try:
        with _open_no_link(Path(run_dir) / "status.json") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError):
        return {}


def read_metrics(run_dir: Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_interrupted(root: Path | None = None, active_dirs: set[Path] = frozenset()) -> list[Path]:
    """Runs left 'running' by a process that died become 'interrupted' (resumable), never 'running' forever."""
    root = Path(root) if root else runs_dir()
    changed = []
    for path in sorted(root.iterdir()) if root.exists() else []:
        if path.is_symlink():
            continue
        status = read_status(path)
        if status.get("state") not in ACTIVE or path.resolve() in active_dirs or status.get("phase") == "in-queue":
            continue  # a run waiting in the queue (studio.run_queue) waits on after a restart
        pid = status.get("pid")
        if pid != os.getpid() and _alive(pid):
            continue  # another live process (a CLI run) owns it
        has_ckpt = bool(last_checkpoint(path))
        write_status(path, "interrupted", "The studio stopped while this run was training. "
                     + ("Press Resume to continue from its last checkpoint." if has_ckpt else "Start it again."))
        changed.append(path)
    return changed


def _complete(checkpoint: Path) -> bool:
    """trainer_state.json is written last, and not atomically: a kill -9 while saving leaves it missing or cut short."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(run_dir: Path) -> Path | None:
    ckpts = [p for p in (Path(run_dir) / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    ckpts = [p for p in ckpts if _complete(p)]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1]), default=None)


def resume_problem(run_dir: Path) -> str | None:
    """Why this run cannot be resumed, or None. Asked before anything is written, so a refused resume leaves the
    run exactly as it was (an interrupted run stays interrupted, not failed)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    state = status.get("state", "unknown")
    if not (run_dir / "recipe.yaml").is_file():
        return f"{run_dir} is not a run folder (no recipe.yaml)."
    if state in ACTIVE and status.get("pid") != os.getpid() and _alive(status.get("pid")):
        return f"Run {run_dir.name} is {state} in another process (pid {status.get('pid')}); stop it there first."
    if state not in ("stopped", "interrupted", "failed", *ACTIVE):
        return f"Run {run_dir.name} is {state}; only stopped, interrupted or failed runs can be resumed."
    if last_checkpoint(run_dir) is None:
        return f"Run {run_dir.name} has no checkpoint to resume from. Start a new run on the same data instead."
    return None


def final_weights(run_dir: Path) -> Path | None:
    for name in ("adapter", "model"):
        path = Path(run_dir) / name
        if path.is_dir():
            return path
    return None


def summarize(run_dir: Path) -> dict:
    status = read_status(run_dir)
    recipe = status.get("recipe", {})
    metrics = read_metrics(run_dir)
    losses = [m["loss"] for m in metrics if m.get("loss") is not None]
    evals = [m["eval_loss"] for m in metrics if m.get("eval_loss") is not None]
    return {
        "run_id": Path(run_dir).name,
        "state": status.get("state", "unknown"),
        "message": status.get("message", ""),
        "data": status.get("data_name", ""),
        "examples": status.get("train_examples"),
        # The user's own training rows, and what Studio added to them (rewrites, question forms, general answers).
        "your_rows": status.get("user_examples"),
        "added": (status["train_examples"] - status["user_examples"]
                  if status.get("train_examples") is not None and status.get("user_examples") is not None else None),
        "base": recipe.get("base", ""),
        "method": recipe.get("method", ""),
        "r": recipe.get("r"),
        "epochs": recipe.get("epochs"),
        "learning_rate": recipe.get("learning_rate"),
        "final_loss": round(losses[-1], 4) if losses else None,
        "eval_loss": round(evals[-1], 4) if evals else None,
        "seconds": round(status.get("train_seconds", 0) or 0, 1),
        "created": datetime.fromtimestamp(status.get("created", 0)).strftime("%Y-%m-%d %H:%M") if status else "",
    }


def list_runs(root: Path | None = None) -> list[dict]:
    root = Path(root) if root else runs_dir()
    if not root.exists():
        return []
    rows = [summarize(p) for p in root.iterdir()
            if p.is_dir() and (p / "status.json").exists() and linked(p) is None]
    return sorted(rows, key=lambda r: r["run_id"], reverse=True)
