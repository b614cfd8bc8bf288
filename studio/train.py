"""Training: one function from (recipe, data file, run folder) to a trained adapter.

It reads top to bottom: prepare the folder, read and check the data, tokenize with the model's chat
template (answer tokens only), load the model, apply the method, train with TRL's SFTTrainer, save.
Progress goes to the run folder (`metrics.jsonl`, `status.json`) through a TrainerCallback, which also
watches a stop flag so a run can be stopped cleanly from another thread or process.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.recipe import Recipe, RecipeError, check

STOP_FILE = "STOP"


class TrainingFailed(RuntimeError):
    """A run cannot go on; the message is meant for the user as it is."""


def request_stop(run_dir: Path) -> None:
    """Ask a run to stop at the next step, from any thread or process (the CLI, the UI, the API)."""
    (Path(run_dir) / STOP_FILE).touch()
    status = runs.read_status(run_dir)
    if status.get("state") in ("queued", "running"):
        runs.write_status(run_dir, "stopping", "Stopping after the current step...")


def _progress_callback(run_dir: Path, stop_event: threading.Event | None, log: Callable[[str], None],
                       save_seconds: float = 0):
    from transformers import TrainerCallback

    from studio.monitor import training_warnings

    class Progress(TrainerCallback):
        """Writes each log as a metrics line and the status; stops on request with a checkpoint."""

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
                runs.write_status(run_dir, "running", "Training...", step=state.global_step, total=state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            if (stop_event is not None and stop_event.is_set()) or (run_dir / STOP_FILE).exists():
                control.should_training_stop = True
                control.should_save = True
            elif self.save_seconds and time.monotonic() - self.last_save >= self.save_seconds:
                control.should_save = True

        def on_save(self, args, state, control, **kwargs):
            self.last_save = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if not state.is_world_process_zero or not any(k in logs for k in ("loss", "eval_loss")):
                return
            elapsed = time.time() - self.start
            done = max(state.global_step - self.start_step, 1)
            eta = elapsed / done * max(state.max_steps - state.global_step, 0)
            tokens = state.num_input_tokens_seen - self.start_tokens
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
            row = {k: v for k, v in row.items() if v is not None}
            runs.append_jsonl(run_dir / "metrics.jsonl", row)
            self.rows.append(row)
            loss = row.get("loss", row.get("eval_loss"))
            if loss is not None and not math.isfinite(loss):
                raise TrainingFailed(
                    f"The loss became {loss} at step {state.global_step}: training diverged. "
                    "Lower training.learning_rate (for example to a tenth) and start again."
                )
            stopping = (run_dir / STOP_FILE).exists() or (stop_event is not None and stop_event.is_set())
            runs.write_status(run_dir, "stopping" if stopping else "running",
                              "Stopping after the current step..." if stopping else "Training...",
                              step=state.global_step, total=state.max_steps, loss=row.get("loss"),
                              eval_loss=row.get("eval_loss"), eta=row["eta"], epoch=row["epoch"],
                              tokens_per_s=row.get("tokens_per_s"), warnings=training_warnings(self.rows))
            parts = [f"step {state.global_step}/{state.max_steps}"]
            parts += [f"{k} {row[k]:.4f}" for k in ("loss", "eval_loss", "reward_margin") if k in row]
            parts += [f"{row['tokens_per_s']:.0f} tok/s"] if "tokens_per_s" in row else []
            parts += [f"ETA {eta:.0f}s"]
            log("  ".join(parts))

    return Progress()


class StoppedWhileDrafting(Exception):
    """Stop was asked for before the first step: nothing is trained yet and no draft is half-kept."""


def _read_examples(path: Path) -> list:
    """The examples a data/*.jsonl file of the run folder lists (train, eval, drafts, question forms)."""
    from studio.data import Example

    return [Example(r["messages"], r.get("row", 0)) for r in runs.read_jsonl(path)]


def _write_examples(path: Path, examples) -> None:
    """`examples` as data/*.jsonl lines, written beside `path` and renamed in, never half-written."""
    text = "".join(runs.json.dumps({"messages": e.messages, "row": e.row}, ensure_ascii=False) + "\n"
                   for e in examples)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _drafted_once(run_dir: Path, name: str, draft: Callable[[Callable[[int, int], None]], list],
                  say: Callable[[str], None], doing: str, done: str, key: dict, reused: str,
                  stop_event: threading.Event | None = None) -> list:
    """Examples the base model drafts before training, kept in data/`name` so a resumed run trains on the same.

    `doing` goes to the log and the status while it drafts, and the status adds how far it is and about
    how long is left after each batch (drafting takes a minute on a CPU without bf16); a Stop asked for
    meanwhile ends it there (StoppedWhileDrafting). `done` is formatted with {n} and {seconds}, `reused`
    with {n}.
    Drafts are also kept under STUDIO_HOME/drafts by `key` (everything they depend on), so the next run
    on the same data and settings, the usual way to try another learning rate, starts at once.
    """
    import hashlib

    from studio.paths import studio_home

    path = run_dir / "data" / name
    digest = hashlib.sha256(runs.json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
    cached = studio_home() / "drafts" / f"{digest}.jsonl"
    if not path.exists() and cached.exists():
        try:
            shutil.copyfile(cached, path)
            cached.touch()  # used again: newest for pruning
        except OSError:
            path.unlink(missing_ok=True)  # pruned meanwhile, or unreadable: draft afresh
        else:
            extra = _read_examples(path)
            say(reused.format(n=len(extra)))
            return extra
    if path.exists():
        return _read_examples(path)
    started = time.time()
    say(doing)
    runs.write_status(run_dir, "queued", doing)

    def progress(finished: int, total: int) -> None:
        if (stop_event is not None and stop_event.is_set()) or (run_dir / STOP_FILE).exists():
            raise StoppedWhileDrafting
        left = (time.time() - started) / max(finished, 1) * (total - finished)
        message = f"{doing.rstrip('.')}: {finished} of {total} done, about {left:.0f} s left."
        runs.write_status(run_dir, "queued", message)

    extra = draft(progress)
    for target in (path, cached):
        try:
            _write_examples(target, extra)
        except OSError:
            if target == path:
                raise  # the run's own copy is needed; the shared one is only a shortcut
    say(done.format(n=len(extra), seconds=time.time() - started))
    try:  # the newest few hundred are the ones a rerun can want; another run may be pruning too
        kept = sorted(cached.parent.glob("*.jsonl"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in kept[DRAFTS_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
    return extra


DRAFTS_KEPT = 300  # shared drafts kept in STUDIO_HOME/drafts, newest first (tens of KB each)


def _draft_key(kind: str, recipe: Recipe, model, **inputs) -> dict:
    """What a draft depends on: the base model's weights, their precision, the drafting code and its inputs."""
    from studio.augment import DRAFT_VERSION

    base = recipe.model.base
    files = sorted(Path(base).glob("*")) if Path(base).is_dir() else []
    weights = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files if f.is_file()]
    param = next(model.parameters())
    return {"kind": kind, "version": DRAFT_VERSION, "base": base, "files": weights, "dtype": str(param.dtype),
            "device": param.device.type, **inputs}


def _paraphrases(run_dir: Path, model, tokenizer, examples, recipe: Recipe, say: Callable[[str], None],
                 stop_event: threading.Event | None = None) -> list:
    """Question rewrites by the base model (augment.paraphrase_examples) or by data.rewrite_endpoint's model."""
    from studio.augment import paraphrase_examples

    n = recipe.data.paraphrases
    if recipe.data.rewrite_endpoint.strip():
        return _endpoint_paraphrases(run_dir, examples, recipe, say, stop_event)
    key = _draft_key("paraphrases", recipe, model, n=n, seed=recipe.training.seed,
                     examples=[e.messages for e in examples])
    return _drafted_once(
        run_dir, "paraphrases.jsonl",
        lambda progress: paraphrase_examples(model, tokenizer, examples, n, seed=recipe.training.seed,
                                             progress=progress), say,
        f"Drafting {n} rewrites of each question with the base model (once: later runs on the same data reuse them)...",
        "Added {n} rewritten questions in {seconds:.0f} s.", key,
        "Reused {n} rewritten questions drafted for an earlier run on the same data and settings.", stop_event)


def _endpoint_paraphrases(run_dir: Path, examples, recipe: Recipe, say: Callable[[str], None],
                          stop_event: threading.Event | None = None) -> list:
    """Question rewrites by a larger model behind an OpenAI-compatible endpoint (augment.endpoint_paraphrases).

    The API key comes from the environment, so it is in no recipe, log or cache key; a server that cannot
    be reached fails the run before its first step with the endpoint's own complaint."""
    from studio.augment import DRAFT_VERSION, REWRITE_SYSTEM, endpoint_paraphrases
    from studio.docqa import DocumentError, ask_endpoint

    n, endpoint, name = recipe.data.paraphrases, recipe.data.rewrite_endpoint.strip(), recipe.data.rewrite_model.strip()
    api_key = os.environ.get("STUDIO_REWRITE_API_KEY") or None

    def ask(prompt: str) -> str:
        return ask_endpoint(endpoint, name, prompt, api_key, 400, system=REWRITE_SYSTEM, temperature=0.8)

    def draft(progress):
        try:
            return endpoint_paraphrases(ask, examples, n, progress=progress)
        except DocumentError as exc:
            raise TrainingFailed(f"data.rewrite_endpoint: {exc}") from None

    key = {"kind": "paraphrases", "version": DRAFT_VERSION, "endpoint": endpoint, "model": name, "n": n,
           "seed": recipe.training.seed, "examples": [e.messages for e in examples]}
    return _drafted_once(
        run_dir, "paraphrases.jsonl", draft, say,
        f"Asking {name} at {endpoint} for {n} rewrites of each question (once: later runs on the same data reuse "
        "them)...",
        "Added {n} rewritten questions in {seconds:.0f} s.", key,
        "Reused {n} rewritten questions " + f"{name} wrote for an earlier run on the same data and settings.",
        stop_event)


def _question_forms(run_dir: Path, examples, rewrites, recipe: Recipe, say: Callable[[str], None]) -> list:
    """Rule-based rewordings of each question (studio.question_forms), listed in data/question_forms.jsonl."""
    from studio.question_forms import normalise, question_form_examples

    path = run_dir / "data" / "question_forms.jsonl"
    if path.exists():  # a resumed run trains on what it started with
        return _read_examples(path)
    forms = question_form_examples(examples, recipe.data.question_forms, recipe.training.seed,
                                   taken={normalise(e.question) for e in rewrites})
    _write_examples(path, forms)
    say(f"Added {len(forms)} rewordings of the questions in other question forms.")
    return forms


def _replay(run_dir: Path, model, tokenizer, recipe: Recipe, say: Callable[[str], None],
            stop_event: threading.Event | None = None) -> list:
    """The base model's own answers to general questions (augment.replay_examples)."""
    from studio.augment import replay_examples
    from studio.paths import ASSETS

    prompts = [r["prompt"] for r in runs.read_jsonl(ASSETS / "replay_prompts.jsonl") if r.get("prompt")]
    prompts = list(dict.fromkeys(prompts))[:recipe.data.replay]
    key = _draft_key("replay", recipe, model, prompts=prompts, system_prompt=recipe.data.system_prompt)
    return _drafted_once(
        run_dir, "replay.jsonl",
        lambda progress: replay_examples(model, tokenizer, prompts, recipe.data.system_prompt, progress=progress), say,
        f"Answering {len(prompts)} general questions with the base model, to keep its general answers...",
        "Kept {n} general answers in {seconds:.0f} s.", key,
        "Reused the base model's {n} answers to general questions from an earlier run with the same settings.",
        stop_event)


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
    from studio.models import ModelError

    if isinstance(exc, ModelError):
        return text
    return f"Training failed: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _saved_objective(run_dir: str | Path | None) -> str:
    """The objective a run folder was started with; 'sft' when unreadable, so train() reports the problem."""
    from studio.recipe import load

    try:
        return load(Path(run_dir or "") / "recipe.yaml").method.objective
    except RecipeError:
        return "sft"


def run_trainer(trainer, run_dir: Path, ckpt: Path | None, stop_event: threading.Event | None,
                say: Callable[[str], None]) -> float | None:
    """Train or resume with Studio's progress callback; the seconds trained, or None when stopped on request.

    Shared by the SFT and the preference paths, so both write the run folder the same way.
    """
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our callback prints; the default one dumps raw dicts
    if ckpt is not None:
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
    if (run_dir / STOP_FILE).exists() or (stop_event is not None and stop_event.is_set()):
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
        from studio.card import write_card

        write_card(run_dir)
    except Exception as exc:  # noqa: BLE001 - a card problem must not turn a trained run into a failure
        say(f"Could not write the model card: {exc}")


def record_failure(run_dir: Path, exc: BaseException, say: Callable[[str], None]) -> None:
    """The run ends `failed` with a plain message; the traceback goes to error.log for whoever debugs it."""
    message = _plain_error(exc)
    try:
        (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        runs.write_status(run_dir, "failed", message)
    except OSError:
        pass  # disk full: nothing more can be written; the caller still gets the run folder back
    say(f"Failed: {message}")


def trainer_args(recipe: Recipe, run_dir: Path, precision: str, has_eval: bool, cuda: bool) -> dict:
    """The recipe's training section as Trainer arguments, the same for the SFT and the preference paths."""
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
        report_to="none",
        disable_tqdm=True,
        optim="paged_adamw_8bit" if recipe.method.name == "qlora" else "adamw_torch",
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


def prepare_folder(recipe: Recipe | None, data_path, run_dir: Path, resume: bool) -> tuple[Recipe, Path, Path | None]:
    """(recipe, data file in the folder, checkpoint to resume or None).

    A new run gets a checked recipe and a copy of its data (`recipe.data.path` then points at the copy,
    so the folder alone repeats the run; the caller saves the recipe). A resumed run reads both back.
    """
    if resume:
        from studio.recipe import load

        recipe = load(run_dir / "recipe.yaml")
        ckpt = runs.last_checkpoint(run_dir)
        if ckpt is None:
            raise TrainingFailed("This run has no checkpoint to resume from. Start it again instead.")
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        return recipe, run_dir / "data" / Path(recipe.data.path).name, ckpt
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
    return recipe, data_file, None


def train(
    recipe: Recipe,
    data_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_event: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train and return the run folder. Never raises for a failed run: its status says `failed` and why."""
    if resume and runs.resume_problem(Path(run_dir or "")):
        # Refused, not failed: the run keeps the state it had (an interrupted run stays resumable by hand).
        raise TrainingFailed(runs.resume_problem(Path(run_dir or "")))
    objective = _saved_objective(run_dir) if resume else recipe.method.objective if recipe else "sft"
    if objective != "sft":  # DPO/ORPO: the CLI, the UI and jobs all call train(), so all of them get it here
        from studio.preference import train_preference

        return train_preference(recipe, data_path, run_dir, resume=resume, stop_event=stop_event, log=log)
    run_dir = Path(run_dir) if run_dir else runs.new_run_dir(Path(str(data_path or "run")).stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    say = run_logger(run_dir, log)

    trainer = model = None
    # Every core for the whole job, drafting included (the entry points start threads on one: see
    # models.on_fresh_thread), and chat steps aside while it runs.
    from studio.models import training_threads

    threads = training_threads().__enter__()
    try:
        # 1. The folder: recipe and a copy of the data, so the folder alone repeats the run.
        recipe, data_file, ckpt = prepare_folder(recipe, data_path, run_dir, resume)
        if not resume:
            recipe.save(run_dir / "recipe.yaml")
        runs.write_status(run_dir, "queued", "Preparing data and model...", data_name=data_file.name,
                          recipe={"base": recipe.model.base, "method": recipe.method.name, "r": recipe.method.r,
                                  "alpha": recipe.method.alpha, "epochs": recipe.training.epochs,
                                  "learning_rate": recipe.training.learning_rate,
                                  "batch_size": recipe.training.batch_size})

        # 2. Data: read, check, split (seeded), tokenize with answer-only labels.
        from studio import data as studio_data
        from studio.models import apply_method, bf16_supported, count_parameters, load_model, load_tokenizer

        report = studio_data.load_data(data_file, columns=recipe.data.columns or None)
        if not report.ok:
            raise TrainingFailed("The data cannot be trained on: " + "; ".join(p.message for p in report.errors[:5]))
        say(report.summary())
        train_ex, eval_ex = studio_data.split_examples(report.examples, recipe.data.eval_size, recipe.training.seed)
        for name, rows in (("train", train_ex), ("eval", eval_ex)):
            _write_examples(run_dir / "data" / f"{name}.jsonl", rows)
        tokenizer = load_tokenizer(recipe.model.base, recipe.model.trust_remote_code, log=say)

        def encode(rows):
            out = []
            for ex in rows:
                enc = studio_data.tokenize_example(tokenizer, ex, recipe.data.system_prompt, recipe.data.max_length)
                if any(enc["completion_mask"]):
                    out.append({"input_ids": enc["input_ids"], "completion_mask": enc["completion_mask"]})
            return out

        from datasets import Dataset

        train_rows, eval_rows = encode(train_ex), encode(eval_ex)
        if not train_rows:
            raise TrainingFailed("No example has any answer tokens left after cutting to data.max_length. "
                                 "Raise data.max_length.")
        say(f"{len(train_rows)} training examples, {len(eval_rows)} held out.")

        # 3. Model and method.
        say(f"Loading {recipe.model.base} for {recipe.method.name}...")
        import torch

        t = recipe.training
        cuda = torch.cuda.is_available()
        precision = t.precision if t.precision != "auto" else ("bf16" if bf16_supported() else "fp32")
        model = load_model(recipe.model.base, recipe.method.name, recipe.model.trust_remote_code, log=say,
                           frozen_bf16=precision == "bf16" and not cuda)
        from transformers import set_seed

        set_seed(recipe.training.seed)  # the adapter's random start, so the same recipe repeats in any process
        rewrites = _paraphrases(run_dir, model, tokenizer, train_ex, recipe, say, stop_event) \
            if recipe.data.paraphrases > 0 else []
        train_rows += encode(rewrites)
        if recipe.data.question_forms > 0:
            train_rows += encode(_question_forms(run_dir, train_ex, rewrites, recipe, say))
        if recipe.data.replay > 0:
            train_rows += encode(_replay(run_dir, model, tokenizer, recipe, say, stop_event))
        model = apply_method(model, recipe.method, recipe.training.gradient_checkpointing)
        trainable, total = count_parameters(model)
        say(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%).")
        runs.write_status(run_dir, "queued", "Starting training...", trainable_params=trainable, total_params=total,
                          train_examples=len(train_rows), eval_examples=len(eval_rows))

        # 4. Train.
        from trl import SFTConfig, SFTTrainer

        from studio.lm_head_loss import use_dense_cpu_log_probs

        use_dense_cpu_log_probs()

        has_eval = bool(eval_rows)
        config = SFTConfig(
            **trainer_args(recipe, run_dir, precision, has_eval, cuda),
            neftune_noise_alpha=t.neftune_noise_alpha or None,
            completion_only_loss=True,
            max_length=None,  # tokenize_example already cut every example to data.max_length
            include_num_input_tokens_seen="non_padding",
            # Padding-free: each batch is one packed row with restarting position ids, so no FLOP is spent on pad
            # tokens; on the CPU each example attends within itself (studio.packed_attention), on GPUs
            # transformers builds the block-diagonal mask for sdpa from the position ids.
            padding_free=True,
            # Packed rows rounded up to a multiple of 64 tokens on the CPU: oneDNN builds a kernel per new matmul
            # shape, and a handful of shapes reused beat a new shape every step (~10% faster there).
            pad_to_multiple_of=None if cuda else 64,
        )
        model.config.use_cache = False  # a KV cache in training wastes memory and disables packed-sequence masks
        if precision in ("bf16", "fp16"):
            from peft.tuners.lora import LoraLayer

            # PEFT casts each adapter's input up to the fp32 adapter weights, and autocast casts it straight back
            # down for the matmul: two copies of every activation per adapted layer, for the same numbers.
            for module in model.modules():
                if isinstance(module, LoraLayer):
                    module.cast_input_dtype_enabled = False
        packed = False
        if not cuda:
            from studio.packed_attention import use_packed_attention

            packed = use_packed_attention(model.get_base_model() if hasattr(model, "get_base_model") else model)
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if has_eval else None,
            processing_class=tokenizer,
            callbacks=[_progress_callback(run_dir, stop_event, say, recipe.training.save_seconds)],
        )
        if packed:  # the system prompt once per packed row instead of once per example
            from studio.packed_attention import share_prefix

            share_prefix(trainer, config.pad_to_multiple_of)
        seconds = run_trainer(trainer, run_dir, ckpt, stop_event, say)
        if seconds is None:
            return run_dir

        # 5. Done: final eval, then the weights, never half-written.
        target = run_dir / ("adapter" if recipe.method.name in ("lora", "qlora") else "model")
        saved = save_weights(trainer, tokenizer, target, has_eval, run_dir)
        if saved is None:
            return run_dir  # under `accelerate launch`, process 0 alone writes the weights and the status
        losses = [r["loss"] for r in saved["metrics"] if "loss" in r]
        runs.write_status(
            run_dir, "done", f"Finished in {seconds:.0f} s.", step=trainer.state.global_step,
            total=trainer.state.global_step, loss=losses[-1] if losses else None, eta=0,
            eval_loss=saved["eval_loss"], train_seconds=seconds,
        )
        say(f"Done in {seconds:.0f} s. Weights in {target}.")
        write_card_safely(run_dir, say)
        return run_dir
    except StoppedWhileDrafting:
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        runs.write_status(run_dir, "stopped", "Stopped while drafting, before the first step: nothing was trained. "
                          "Start a new run to train; the drafts finished so far are reused.", step=0)
        say("Stopped.")
        return run_dir
    except BaseException as exc:  # noqa: BLE001 - a failed run must end as `failed`, whatever happened
        record_failure(run_dir, exc, say)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return run_dir
    finally:
        threads.__exit__(None, None, None)
        del trainer, model
        gc.collect()
