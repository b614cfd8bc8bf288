"""Training: one lifecycle from (recipe, data file, run folder) to trained weights, for every objective.

It reads top to bottom in `train`: prepare the folder -> read and split the data once -> load the model -> the
examples to train on (SFT drafts its extras here) and the method -> the objective's trainer -> train -> finish
(final eval, the weights never half-written, the status, the model card). SFT (`studio.sft`) and DPO/ORPO
(`studio.preference`) differ only in those modules' `read_data`, `examples`, `apply` and `build_trainer`.
Progress goes to the run folder through `studio.progress`, which also watches for a stop.
"""

from __future__ import annotations

import errno
import gc
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from studio import preference, runs, sft
from studio.card import write_card
from studio.drafts import StoppedWhileDrafting
from studio.hardware import MainProcessEnded, bf16_supported, main_process_first, process_rank, training_threads
from studio.models import ModelError, count_parameters, load_model, load_tokenizer
from studio.progress import STOP_FILE, progress_callback, request_stop
from studio.recipe import Recipe, RecipeError, check, load
from studio.runs import TrainingFailed

__all__ = ["TrainingFailed", "request_stop", "train"]


def train(
    recipe: Recipe | None,
    data_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_event: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train and return the run folder. Never raises for a failed run: its status says `failed` and why.

    A refused resume (no checkpoint, another process owns the run) raises TrainingFailed and changes nothing.
    Under `accelerate launch` every process calls this with the same run folder: process 0 prepares the folder,
    drafts and writes every file; the others read what it prepared, train their share and write nothing.
    """
    main = process_rank()[0] == 0
    if main and resume and (problem := runs.resume_problem(Path(run_dir or ""))):
        raise TrainingFailed(problem)
    run_dir = Path(run_dir) if run_dir else runs.new_run_dir(Path(str(data_path or "run")).stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    say = run_logger(run_dir, log) if main else lambda _: None
    trainer = model = None
    # Every core for the whole job, drafting included (the entry points start threads on one: see
    # hardware.on_fresh_thread), and chat steps aside while it runs.
    with training_threads():
        try:
            with main_process_first():  # one process alone: just runs the block
                # 1. The folder: recipe, data and starting adapter copied in, so the folder alone repeats the run.
                recipe, data_file, ckpt = prepare_folder(recipe, data_path, run_dir, resume, say, main)
                # 2-4. The data, the model, the examples (below: the same steps drafting ahead runs).
                objective, data, tokenizer, model, rows = data_model_rows(recipe, data_file, run_dir, say, stop_event)
                precision, cuda = training_precision(recipe)
            from transformers import set_seed

            # Seeded after drafting, which samples: the adapter's start and the data order are then the same whether
            # the drafts were made now or reused, so the same recipe repeats in any process and on any rerun.
            set_seed(recipe.training.seed)
            model = objective.apply(model, recipe, run_dir, say)
            trainable, total = count_parameters(model)
            say(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%).")
            if main:
                runs.write_status(run_dir, "queued", "Starting training...", trainable_params=trainable,
                                  total_params=total, train_examples=len(rows.train), eval_examples=len(rows.eval),
                                  user_examples=len(data.train),
                                  reworded_examples=len(runs.read_jsonl(run_dir / "data" / "reworded.jsonl")))
            # 5. Train.
            model.config.use_cache = False  # a KV cache in training wastes memory and disables packed-row masks
            progress = progress_callback(run_dir, stop_event, say, recipe.training.save_seconds)
            trainer = objective.build_trainer(model, tokenizer, rows, recipe,
                                              trainer_args(recipe, run_dir, precision, bool(rows.eval), cuda),
                                              precision, cuda, [progress])
            seconds = run_trainer(trainer, run_dir, ckpt, progress, say)
            if seconds is not None:
                finish(trainer, tokenizer, recipe, run_dir, bool(rows.eval), seconds, say)
            return run_dir
        except MainProcessEnded:  # process 0 wrote why
            return run_dir
        except StoppedWhileDrafting:
            (run_dir / STOP_FILE).unlink(missing_ok=True)
            runs.write_status(run_dir, "stopped", "Stopped while drafting, before the first step: nothing was "
                              "trained. Start a new run to train; the drafts finished so far are reused.", step=0)
            say("Stopped.")
            return run_dir
        except BaseException as exc:  # noqa: BLE001 - a failed run must end as `failed`, whatever happened
            record_failure(run_dir, exc, say, main)
            if isinstance(exc, KeyboardInterrupt):
                raise
            return run_dir
        finally:
            del trainer, model
            gc.collect()


def data_model_rows(recipe: Recipe, data_file: Path, run_dir: Path, say: Callable[[str], None],
                    stop_event: threading.Event | None = None) -> tuple:
    """(objective, data, tokenizer, model, rows): steps 2-4 of a run, also run ahead of a run by `studio.predraft`
    (whose drafts a run with the same data and settings then reuses)."""
    objective = sft if recipe.method.objective == "sft" else preference
    # 2. The data, read once: checked, split (seeded), listed in data/train.jsonl and data/eval.jsonl.
    data = objective.read_data(recipe, data_file, run_dir, say)
    # 3. The model, in the precision this machine trains fastest in.
    tokenizer = load_tokenizer(recipe.model.base, recipe.model.trust_remote_code, log=say)
    precision, cuda = training_precision(recipe)
    say(f"Loading {recipe.model.base} for {recipe.method.objective.upper()} with {recipe.method.name}...")
    model = load_model(recipe.model.base, recipe.method.name, recipe.model.trust_remote_code, log=say,
                       frozen_bf16=precision == "bf16" and not cuda)
    # 4. What it trains on (SFT drafts its extra examples with the base model first; the other processes of a
    # data-parallel run read process 0's drafts from the folder).
    rows = objective.examples(data, run_dir, model, tokenizer, recipe, say, stop_event)
    return objective, data, tokenizer, model, rows


def prepare_folder(recipe: Recipe | None, data_path, run_dir: Path, resume: bool, say: Callable[[str], None],
                   main: bool = True) -> tuple[Recipe, Path, Path | None]:
    """(recipe, data file in the folder, checkpoint to resume or None).

    A new run gets a checked recipe, a copy of its data and of its starting adapter (`data.path` and
    `method.init_adapter` then point at the copies, so the folder alone repeats the run) and its recipe saved.
    A resumed run reads both back, and so do the other processes of a data-parallel run, after process 0.
    """
    if not main:
        recipe = load(run_dir / "recipe.yaml")
        return recipe, run_dir / "data" / Path(recipe.data.path).name, runs.last_checkpoint(run_dir) if resume else None
    if resume:
        recipe = load(run_dir / "recipe.yaml")
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        data_file, ckpt = run_dir / "data" / Path(recipe.data.path).name, runs.last_checkpoint(run_dir)
    else:
        data_file, ckpt = _new_folder(recipe, data_path, run_dir, say), None
    runs.write_status(run_dir, "queued", "Reading the data and loading the model...", phase="preparing",
                      data_name=data_file.name, recipe=runs.recipe_summary(recipe))
    return recipe, data_file, ckpt


def _new_folder(recipe: Recipe, data_path, run_dir: Path, say: Callable[[str], None]) -> Path:
    check(recipe)
    if not str(data_path or recipe.data.path):
        raise TrainingFailed("No data file given. Pass --data FILE or set data.path in the recipe.")
    source = Path(data_path or recipe.data.path)
    if not source.is_file():
        raise TrainingFailed(f"The data file {source} does not exist.")
    (run_dir / "data").mkdir(exist_ok=True)
    data_file = run_dir / "data" / source.name
    if source.resolve() != data_file.resolve():
        shutil.copyfile(source, data_file)
    recipe.data.path = f"data/{source.name}"
    if recipe.method.init_adapter.strip():
        preference.copy_init_adapter(recipe, run_dir, say)
    recipe.save(run_dir / "recipe.yaml")
    return data_file


def training_precision(recipe: Recipe) -> tuple[str, bool]:
    """(precision, on a GPU): 'auto' is bf16 where the CPU or GPU computes it natively, else fp32."""
    import torch

    cuda = torch.cuda.is_available()
    t = recipe.training.precision
    return (t if t != "auto" else "bf16" if bf16_supported() else "fp32"), cuda


def finish(trainer, tokenizer, recipe: Recipe, run_dir: Path, has_eval: bool, seconds: float,
           say: Callable[[str], None]) -> None:
    """Final eval, the weights (an adapter, or the whole model for a full fine-tune), the status, the card."""
    lora = recipe.method.name in ("lora", "qlora")
    if trainer.is_world_process_zero():
        runs.write_status(run_dir, "running", "Saving the weights...", phase="saving", eta=0)
    target = run_dir / ("adapter" if lora else "model")
    # A DPO model also holds TRL's frozen "ref" copy of the adapter: only the trained one is kept.
    saved = save_weights(trainer, tokenizer, target, has_eval, run_dir,
                         **({"selected_adapters": ["default"]} if lora else {}))
    if saved is None:
        return  # under `accelerate launch`, process 0 alone writes the weights and the status
    logged = [r for r in saved["metrics"] if "loss" in r]
    last = logged[-1] if logged else {}
    rewards = {k: last[k] for k in ("reward_margin", "reward_accuracy") if k in last}
    wall = runs.wall_summary(runs.read_status(run_dir), until=time.time())
    runs.write_status(run_dir, "done", f"Finished: {wall}." if wall else f"Finished in {seconds:.0f} s.",
                      step=trainer.state.global_step,
                      total=trainer.state.global_step, loss=last.get("loss"), eta=0, eval_loss=saved["eval_loss"],
                      train_seconds=seconds, **rewards)
    say(f"Done in {seconds:.0f} s. Weights in {target}.")
    write_card_safely(run_dir, say)


def run_trainer(trainer, run_dir: Path, ckpt: Path | None, progress, say: Callable[[str], None]) -> float | None:
    """Train or resume with Studio's progress callback; the seconds trained, or None when stopped on request."""
    from transformers import PrinterCallback

    main = trainer.is_world_process_zero()
    trainer.remove_callback(PrinterCallback)  # our callback prints; the default one dumps raw dicts
    if ckpt is not None and main:
        # Lines logged after the checkpoint belong to the lost tail; the resumed run writes them again.
        step = int(ckpt.name.split("-")[-1])
        kept = [r for r in runs.read_metrics(run_dir) if r.get("step", 0) <= step]
        tmp = run_dir / ".metrics.jsonl.tmp"
        tmp.write_text("".join(runs.json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(run_dir / "metrics.jsonl")
        say(f"Resuming from {ckpt.name}.")
    started = time.time()
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)  # the caller holds training_threads
    seconds = time.time() - started + runs.read_status(run_dir).get("train_seconds", 0) * bool(ckpt)
    if progress.stopped:  # decided by every process at the same step (see studio.progress)
        if not main:
            return None
        # The checkpoint the callback asked for is the resumable state.
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        runs.write_status(run_dir, "stopped", f"Stopped at step {trainer.state.global_step}. Resume to continue.",
                          step=trainer.state.global_step, train_seconds=seconds)
        say("Stopped.")
        return None
    return seconds


def save_weights(trainer, tokenizer, target: Path, has_eval: bool, run_dir: Path, **save_kwargs) -> dict | None:
    """Final eval loss, then the weights written beside `target` and renamed in, never half-written.

    Returns {"metrics": rows, "eval_loss": ...}, or None on processes other than 0 under `accelerate launch`.
    """
    metrics = runs.read_metrics(run_dir)
    evals = [r for r in metrics if "eval_loss" in r and r["step"] == trainer.state.global_step]
    final_eval = ({"eval_loss": evals[-1]["eval_loss"]} if evals else trainer.evaluate()) if has_eval else {}
    if trainer.is_fsdp_enabled:  # the weights are split across processes: every one of them hands in its share
        save_kwargs["state_dict"] = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if not trainer.is_world_process_zero():
        return None
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp, safe_serialization=True, **save_kwargs)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return {"metrics": metrics, "eval_loss": final_eval.get("eval_loss")}


def write_card_safely(run_dir: Path, say: Callable[[str], None]) -> None:
    try:
        write_card(run_dir)
    except Exception as exc:  # noqa: BLE001 - a card problem must not turn a trained run into a failure
        say(f"Could not write the model card: {exc}")


def record_failure(run_dir: Path, exc: BaseException, say: Callable[[str], None], main: bool = True) -> None:
    """The run ends `failed` with a plain message; the traceback goes to error.log for whoever debugs it (from
    the other processes of a data-parallel run, to error.rankN.log: process 0 alone writes the status)."""
    message = _plain_error(exc)
    try:
        log_name = "error.log" if main else f"error.rank{process_rank()[0]}.log"
        (run_dir / log_name).write_text(traceback.format_exc(), encoding="utf-8")
        if main:
            runs.write_status(run_dir, "failed", message)
    except OSError:
        pass  # disk full: nothing more can be written; the caller still gets the run folder back
    say(f"Failed: {message}")


def trainer_args(recipe: Recipe, run_dir: Path, precision: str, has_eval: bool, cuda: bool) -> dict:
    """The recipe's training section as Trainer arguments, the same for every objective."""
    t = recipe.training
    return dict(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # below 1 it is read as a share of the steps
        weight_decay=t.weight_decay,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        activation_checkpointing=t.gradient_checkpointing,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=2,
        eval_strategy=("steps" if t.eval_steps else "epoch") if has_eval else "no",
        eval_steps=t.eval_steps or None,
        seed=t.seed,
        data_seed=t.seed,
        report_to=t.report_to,  # "none" unless the expert chose a tracker (checked installed by recipe.validate)
        disable_tqdm=True,
        # Paged 8-bit AdamW pages its state through CUDA unified memory: a GPU's alone. A CPU's RAM has no
        # such ceiling to dodge, and the adapter's AdamW state is a few MB, so QLoRA there uses plain AdamW.
        optim="paged_adamw_8bit" if recipe.method.name == "qlora" and cuda else "adamw_torch",
        dataloader_pin_memory=cuda,
    )


def run_logger(run_dir: Path, log: Callable[[str], None]) -> Callable[[str], None]:
    """`say`: each message to the run's train.log (best effort) and to the caller's `log`."""
    log_file = run_dir / "train.log"

    def say(message: str) -> None:
        try:
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        except OSError:
            pass  # a full disk must not turn a log line into a crash; the status says what happened
        log(message)

    return say


def _plain_error(exc: BaseException) -> str:
    import torch

    text = str(exc)
    if isinstance(exc, (TrainingFailed, RecipeError)):
        return text
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text.lower():
        return ("Out of memory. Lower training.batch_size or data.max_length, turn on gradient checkpointing, "
                "or use LoRA/QLoRA instead of a full fine-tune.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "The disk is full. Free some space (old runs can be deleted) and resume the run."
    if isinstance(exc, ModelError):
        return text
    return f"Training failed: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
