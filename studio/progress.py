"""A run's progress, from the trainer into the run folder: one metrics line per log, the status, stop requests.

The trainer's callback writes `metrics.jsonl` and `status.json` (so a closed tab or a restarted studio loses
nothing), raises on a diverged loss, and checkpoints by time as well as by steps. Stopping works from any thread
(an Event) or process (a STOP file in the run folder), and is checked in one place.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.monitor import training_warnings
from studio.runs import TrainingFailed

STOP_FILE = "STOP"


def request_stop(run_dir: Path) -> None:
    """Ask a run to stop at the next step, from any thread or process (the CLI, the UI, the API)."""
    (Path(run_dir) / STOP_FILE).touch()
    status = runs.read_status(run_dir)
    if status.get("state") in ("queued", "running"):
        runs.write_status(run_dir, "stopping", "Stopping after the current step...")


def stop_requested(run_dir: Path, stop_event: threading.Event | None) -> bool:
    return (stop_event is not None and stop_event.is_set()) or (Path(run_dir) / STOP_FILE).exists()


def metrics_row(state, logs: dict, elapsed: float, start_step: int, start_tokens: int) -> dict:
    """One metrics.jsonl line from the trainer's state and log: progress, losses, rewards, speed, time left."""
    done = max(state.global_step - start_step, 1)
    eta = elapsed / done * max(state.max_steps - state.global_step, 0)
    tokens = state.num_input_tokens_seen - start_tokens
    row = {
        "step": state.global_step,
        "total": state.max_steps,
        "epoch": round(state.epoch or 0, 3),
        "loss": logs.get("loss"),
        "eval_loss": logs.get("eval_loss"),
        "lr": logs.get("learning_rate"),
        "grad_norm": logs.get("grad_norm"),
        # DPO/ORPO (studio.preference): how much more the model prefers the chosen answer than the rejected.
        "rewards_chosen": logs.get("rewards/chosen"),
        "rewards_rejected": logs.get("rewards/rejected"),
        "reward_margin": logs.get("rewards/margins"),
        "reward_accuracy": logs.get("rewards/accuracies"),
        "tokens": state.num_input_tokens_seen,
        "tokens_computed": getattr(state, "tokens_computed", None),  # fewer, where a prefix is shared
        "tokens_per_s": round(tokens / elapsed, 1) if elapsed > 0 and tokens else None,
        "elapsed": round(elapsed, 2),
        "eta": round(eta, 1),
        "time": time.time(),
    }
    return {k: v for k, v in row.items() if v is not None}


def progress_callback(run_dir: Path, stop_event: threading.Event | None, log: Callable[[str], None],
                      save_seconds: float = 0):
    """A TrainerCallback for the run folder (built here because transformers is imported only once a run starts)."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Writes each log as a metrics line and the status; stops on request with a checkpoint."""

        stopped = False  # stopped on request (the same step in every process of a data-parallel run)

        def on_train_begin(self, args, state, control, **kwargs):
            self.rows = runs.read_metrics(run_dir)  # on resume: the kept history, for the live warnings
            self.start = time.time()
            self.start_step = state.global_step
            self.start_tokens = state.num_input_tokens_seen
            # Checkpoints by time too, so a crash loses at most `save_seconds` of training. Not across processes:
            # each would read its own clock, and a save that some processes start and others do not hangs them all.
            self.save_seconds = save_seconds if args.world_size == 1 else 0
            self.last_save = time.monotonic()
            if state.is_world_process_zero:
                runs.write_status(run_dir, "running", "Training...", phase="training", step=state.global_step,
                                  total=state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            stop = stop_requested(run_dir, stop_event)
            if args.world_size > 1:
                # Every process stops at the same step, or those still training wait for the others forever.
                import torch
                import torch.distributed as dist

                flag = torch.tensor([int(stop)], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = bool(flag.item())
            if stop:
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True
            elif self.save_seconds and time.monotonic() - self.last_save >= self.save_seconds:
                control.should_save = True

        def on_save(self, args, state, control, **kwargs):
            self.last_save = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if not any(k in logs for k in ("loss", "eval_loss")):
                return
            row = metrics_row(state, logs, time.time() - self.start, self.start_step, self.start_tokens)
            if state.is_world_process_zero:
                runs.append_jsonl(run_dir / "metrics.jsonl", row)
            loss = row.get("loss", row.get("eval_loss"))
            if loss is not None and not math.isfinite(loss):  # every process (the logged loss is their mean) ends
                raise TrainingFailed(
                    f"The loss became {loss} at step {state.global_step}: training diverged. "
                    "Lower training.learning_rate (for example to a tenth) and start again."
                )
            if not state.is_world_process_zero:
                return
            self.rows.append(row)
            stopping = stop_requested(run_dir, stop_event)
            runs.write_status(run_dir, "stopping" if stopping else "running",
                              "Stopping after the current step..." if stopping else "Training...",
                              step=state.global_step, total=state.max_steps, loss=row.get("loss"),
                              eval_loss=row.get("eval_loss"), eta=row["eta"], epoch=row["epoch"],
                              tokens_per_s=row.get("tokens_per_s"), warnings=training_warnings(self.rows))
            parts = [f"step {state.global_step}/{state.max_steps}"]
            parts += [f"{k} {row[k]:.4f}" for k in ("loss", "eval_loss", "reward_margin") if k in row]
            parts += [f"{row['tokens_per_s']:.0f} tok/s"] if "tokens_per_s" in row else []
            parts += [f"ETA {row['eta']:.0f}s"]
            log("  ".join(parts))

    return Progress()
