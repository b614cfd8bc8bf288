"""One training job at a time for the whole app, in a background thread that no browser tab owns; the runs
started meanwhile wait in the queue (`studio.run_queue`) and start one after another.

The UI and the API only start, stop and read; the thread writes progress to the run folder, so a
closed tab never stalls a run and a reopened one reattaches by reading the folder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from studio import policy, run_queue, runs
from studio.card import write_card
from studio.evaluate import evaluate_heldout, forgetting_check, verdict
from studio.recipe import Recipe

_import_lock = threading.Lock()


def warm_imports() -> None:
    """Import torch, transformers and peft once, under a lock, before any handler needs them.

    On a fresh page load two handlers (the data analysis and the recipe estimate) would otherwise do
    their first heavy import at the same moment in two threads; transformers' and TRL's lazy modules are
    not safe for that (a half-imported `transformers` answers "cannot import name 'TrainingArguments'").
    Later calls return at once.
    """
    with _import_lock:
        import peft  # noqa: F401
        import torch  # noqa: F401
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: F401


def warm_training_imports() -> None:
    """Also what a training job imports first (TRL, datasets): the app starts this at launch so Start does not
    wait for them (~5 s), and a job started meanwhile waits for it here rather than importing alongside it."""
    warm_imports()
    with _import_lock:
        import datasets  # noqa: F401
        import trl  # noqa: F401
        from trl import SFTConfig, SFTTrainer  # noqa: F401

        import studio.train  # noqa: F401


def train(*args, **kwargs) -> Path:
    """`studio.train.train`, imported when a run starts: it imports torch (seconds), and the page must be up at once."""
    warm_training_imports()
    from studio.train import train as train_run

    return train_run(*args, **kwargs)


class Busy(RuntimeError):
    """Another run is training; the message names it."""


class EvaluationSkipped(Exception):
    """A new run started while the last one was still answering its held-out questions."""


class JobManager:
    def __init__(self):
        self._lock = threading.Lock()
        self._kick_lock = threading.Lock()
        self._chain: threading.Thread | None = None  # the one starting the next queued run after a job's end
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self.run_dir: Path | None = None
        self.log_lines: list[str] = []
        self._evaluating = threading.Event()  # the job has trained and is answering its held-out questions

    def active(self) -> Path | None:
        """The folder of the run training now, or None. A finished run still answering its held-out questions is
        not training: a new Start skips the rest of that evaluation (see _make_room)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and not self._evaluating.is_set():
                return self.run_dir
            return None

    def _make_room(self) -> None:
        """A job past training, still evaluating, is told to skip the rest, and waited for (one chunk of questions)."""
        with self._lock:
            thread, stop = self._thread, self._stop
            evaluating = thread is not None and thread.is_alive() and self._evaluating.is_set()
        if evaluating:
            stop.set()
            thread.join(120)

    def _launch(self, target, run_dir: Path) -> Path:
        self._make_room()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise Busy(f"A run is already training ({self.run_dir.name}). Stop it or wait for it to finish.")
            self._stop = threading.Event()
            self.run_dir = run_dir
            self.log_lines = []
            runs.write_status(run_dir, "queued", "Waiting to start...", phase="waiting")
            self._thread = threading.Thread(target=target, name=f"train-{run_dir.name}", daemon=True)
            self._thread.start()
        return run_dir

    def _log(self, message: str) -> None:
        self.log_lines.append(message)
        del self.log_lines[:-500]

    def start(self, recipe: Recipe, data_path: str | Path, name: str = "", **status) -> Path:
        """Queue the run (studio.run_queue) and start it at once when nothing trains; return its folder either way.

        A Start while the last run only answers its held-out questions skips the rest of that evaluation, as the
        user asked to train now; a run the queue starts waits for it (a sweep needs every run's evaluation)."""
        now = not run_queue.order()
        run_dir = run_queue.add(recipe, data_path, name or Path(str(data_path)).stem,
                                limit=policy.limits().queued_runs, **status)
        self.kick(skip_evaluation=now)
        return run_dir

    def kick(self, skip_evaluation: bool = False) -> Path | None:
        """Start the first run waiting in the queue when no job is alive; returns its folder, or None."""
        with self._kick_lock:
            if skip_evaluation:
                self._make_room()
            with self._lock:
                if self._thread is not None and self._thread.is_alive():
                    return None
            run_dir = run_queue.pop()
            if run_dir is None:
                return None

            def target():
                from studio.predraft import predraft
                from studio.recipe import load

                try:
                    recipe = load(run_dir / "recipe.yaml")
                    data = run_dir / recipe.data.path
                    predraft.wait_for(recipe, data, run_dir)  # the drafting begun at the data's load, if it matches
                    train(recipe, data, run_dir, stop_event=self._stop, log=self._log)
                    self._after(run_dir)
                finally:
                    self._next()

            return self._launch(target, run_dir)

    def _next(self) -> None:
        """From a job's own thread, at its end: the next waiting run starts once this thread has ended."""
        current = threading.current_thread()

        def chain():
            current.join()
            self.kick()

        self._chain = threading.Thread(target=chain, name="queue-next", daemon=True)
        self._chain.start()

    def _after(self, run_dir: Path) -> None:
        """Once a run is done: answer its held-out questions with base and tuned, then refresh the card."""
        status = runs.read_status(run_dir)
        if status.get("state") != "done" or not (status.get("eval_examples") or status.get("reworded_examples")):
            return
        stop = self._stop
        self._evaluating.set()
        try:
            self._log("Answering the held-out questions with the base and the tuned model...")
            runs.write_status(run_dir, "done", status.get("message", "") + " Evaluating held-out questions...",
                              phase="evaluating")

            def counted(done: int, total: int, _rows) -> None:
                if stop is not None and stop.is_set():
                    raise EvaluationSkipped
                runs.write_status(run_dir, "done", f"{status.get('message', '')} Answering the held-out questions "
                                  f"with the base and the tuned model: {done} of {total} done...", phase="evaluating")

            # Chat and this evaluation switch the same cached weights' adapter on and off: one at a time.
            token = policy.caller.set(f"run:{run_dir.name}")
            try:
                # A turn per chunk of questions: a chat started meanwhile waits seconds, not the whole evaluation.
                report = evaluate_heldout(run_dir, progress=counted,
                                          turn=lambda: policy.model_turns.turn("the held-out evaluation"))
                if status.get("sweep"):  # a sweep's best is named by held-out hits, ties by the forgetting check
                    runs.write_status(run_dir, "done", f"{status.get('message', '')} Checking general questions "
                                      "for forgetting...", phase="evaluating")
                    with policy.model_turns.turn("the forgetting check"):
                        forgetting_check(run_dir)
            finally:
                policy.caller.reset(token)
            write_card(run_dir)
            wall = runs.wall_summary(runs.read_status(run_dir), until=time.time())
            runs.write_status(run_dir, "done", f"Finished: {wall}. {verdict(report) or 'Held-out evaluation ready'}.",
                              verdict=verdict(report))
        except EvaluationSkipped:
            runs.write_status(run_dir, "done", status.get("message", "") + " The held-out evaluation was skipped for "
                              "the next run: press Evaluate on the Evaluate tab for it.")
        except Exception as exc:  # noqa: BLE001 - evaluation is extra; the trained run stays done
            self._log(f"Held-out evaluation failed: {exc}")
            runs.write_status(run_dir, "done", status.get("message", "") + f" (held-out evaluation failed: {exc})")
        finally:
            self._evaluating.clear()

    def resume(self, run_dir: Path) -> Path:
        state = runs.read_status(run_dir).get("state")
        problem = runs.resume_problem(run_dir) if state not in runs.ACTIVE else (
            f"Run {run_dir.name} is {state}; only stopped, interrupted or failed runs can be resumed.")
        if problem:
            raise Busy(problem)

        def target():
            from studio.predraft import predraft

            predraft.cancel()  # its drafts are for a new run; this one has its own
            try:
                train(None, None, run_dir, resume=True, stop_event=self._stop, log=self._log)
                self._after(run_dir)
            finally:
                self._next()

        return self._launch(target, run_dir)

    def stop(self, run_dir: Path | None = None) -> bool:
        """Ask the active run (or `run_dir`, if it is the active one) to stop with a checkpoint."""
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if not alive or (run_dir is not None and Path(run_dir).resolve() != self.run_dir.resolve()):
                return False
            self._stop.set()
        runs.write_status(self.run_dir, "stopping", "Stopping after the current step...")
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Until the job (training, then its evaluation) has ended and the queue has been asked for the next run."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive() and self._chain is not None:
                self._chain.join(timeout)

    def drain(self, timeout: float | None = None) -> None:
        """Work through the whole queue: return once no job runs and no run waits (or at `timeout`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            self.kick()
            self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))  # the next start too
            with self._lock:
                alive = self._thread is not None and self._thread.is_alive()
            if not alive and not run_queue.order():
                return


jobs = JobManager()
