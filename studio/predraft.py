"""Drafting ahead: the examples a run drafts before its first step, begun as soon as the data is loaded.

A new upload's first run spends most of its first minute drafting with the base model (question rewrites,
answers to general questions), and a domain expert watches that minute before any loss appears. The drafts
depend only on the data and a few settings, and the user spends that minute reading the Model & method tab
anyway; so loading the data starts the same drafting in the background, into the shared drafts cache
(`studio.drafts`), and the run started later reuses it. A Start while it still drafts waits for it when the
settings match (showing its progress) and cancels it when they do not; a training run never shares the cores
with it. Drafting ahead is for one local user: a shared studio (where any visitor could start one) does not.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

from studio import runs
from studio.paths import studio_home
from studio.recipe import Recipe


def signature(recipe: Recipe, data_path: str | Path) -> str:
    """Everything the drafts depend on: the data's bytes and the settings that shape them (not the learning rate,
    epochs or rank, which a user changes between runs on the same drafts)."""
    digest = hashlib.sha256(Path(data_path).read_bytes()).hexdigest()
    d, m, t = recipe.data, recipe.method, recipe.training
    return json.dumps([digest, recipe.model.base, recipe.model.trust_remote_code, d.columns, d.system_prompt,
                       d.max_length, d.paraphrases, d.question_forms, d.replay, d.eval_size, d.rewrite_endpoint,
                       d.rewrite_model, m.name, m.objective, t.seed, t.precision], sort_keys=True, default=str)


def worth_it(recipe: Recipe) -> bool:
    """Only SFT drafts, and only when it drafts anything with a model."""
    return recipe.method.objective == "sft" and (recipe.data.paraphrases > 0 or recipe.data.replay > 0)


class Predraft:
    """One drafting-ahead thread at a time, in a scratch run folder removed when it ends."""

    def __init__(self):
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.key = ""
        self.folder: Path | None = None

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, recipe: Recipe, data_path: str | Path) -> bool:
        """Begin drafting for (recipe, data); False when there is nothing to draft or the same is already under way.
        Another drafting ahead still running is cancelled first: the newest data is the one the user will train."""
        if not worth_it(recipe):
            return False
        key = signature(recipe, data_path)
        if self.running() and key == self.key:
            return False
        self.cancel()
        root = studio_home() / "predraft"
        for old in root.glob("*") if root.is_dir() else []:  # left by a process that was killed while drafting
            if old.stat().st_mtime < time.time() - 3600:
                shutil.rmtree(old, ignore_errors=True)
        folder = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{key_digest(key)}"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._stop = threading.Event()
            self.key, self.folder = key, folder
            self._thread = threading.Thread(target=self._draft, args=(recipe, Path(data_path), folder, self._stop),
                                            name="studio-predraft", daemon=True)
            self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop drafting at the next batch and wait for the thread to end."""
        with self._lock:
            thread, stop = self._thread, self._stop
        if thread is not None and thread.is_alive():
            stop.set()
            thread.join(120)

    def wait_for(self, recipe: Recipe, data_path: str | Path, follow: Path) -> bool:
        """Before a run drafts: if drafting ahead is under way for the same data and settings, wait for it (its
        progress mirrored into the run's status at `follow`) and return True; if for other ones, cancel it."""
        if not self.running():
            return False
        if not (worth_it(recipe) and signature(recipe, data_path) == self.key):
            self.cancel()
            return False
        with self._lock:
            thread, folder = self._thread, self.folder
        while thread is not None and thread.is_alive():
            message = runs.read_status(folder).get("message", "") if folder else ""
            if message:
                runs.write_status(follow, "queued", f"{message} (begun when the data was loaded)",
                                  phase="drafting")
            thread.join(0.5)
        return True

    @staticmethod
    def _draft(recipe: Recipe, data_path: Path, folder: Path, stop: threading.Event) -> None:
        from studio.hardware import training_threads
        from studio.jobs import warm_training_imports
        from studio.train import data_model_rows

        warm_training_imports()
        try:
            with training_threads():
                data_model_rows(recipe, data_path, folder, lambda _: None, stop)
        except Exception:  # noqa: BLE001 - cancelled (StoppedWhileDrafting), or failed: drafting ahead is a shortcut,
            pass            # and the run drafts again and reports any problem itself
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:10]


predraft = Predraft()
