"""Preference tuning: one function from (recipe, preference file, run folder) to a trained LoRA adapter.

It mirrors `studio.train.train` step for step and keeps the same run-folder contract (recipe.yaml, data copy,
metrics.jsonl, status.json, checkpoints/, adapter/), so runs, chat, export and the UI treat a DPO or ORPO run like
any other. Only the data (prompt, chosen, rejected rows) and the trainer differ:

- DPO (TRL's `DPOTrainer`, sigmoid loss) pushes the chosen answer's likelihood up and the rejected one's down,
  relative to a frozen reference. No second model is loaded: TRL keeps a frozen copy of the starting adapter as a
  second adapter named "ref". For a fresh adapter that copy is exactly the base model (LoRA starts at zero); when
  starting from an SFT run's adapter (`method.init_adapter`) it is that SFT model, the usual DPO set-up.
- ORPO (TRL's `trl.experimental.orpo.ORPOTrainer`) needs no reference: it learns the chosen answers (plain NLL)
  plus an odds-ratio term against the rejected ones, so it can start from the base model in one stage.
"""

from __future__ import annotations

import gc
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.recipe import Recipe
from studio.train import (
    TrainingFailed,
    _progress_callback,
    prepare_folder,
    record_failure,
    run_logger,
    run_trainer,
    save_weights,
    trainer_args,
    write_card_safely,
)

INIT_DIR = "init_adapter"  # the starting adapter, copied into the run folder so resume never depends on another run


def _find_init_adapter(spec: str, base: str) -> Path:
    """The adapter folder behind `method.init_adapter` (a run id, a run folder or an adapter folder), checked."""
    from studio.models import is_default
    from studio.recipe import load

    path = Path(spec).expanduser()
    if not path.is_dir():
        try:
            path = runs.resolve_run(spec)
        except runs.RunNotFound:
            raise TrainingFailed(f"method.init_adapter: no run or folder named '{spec}'. Give a finished LoRA run's "
                                 "id (see `python -m studio runs`) or its folder.") from None
    if (path / "adapter_config.json").is_file():
        return path
    if (path / "model").is_dir() and not (path / "adapter").is_dir():
        raise TrainingFailed(f"method.init_adapter: the run {path.name} trained all weights (method full), so it has "
                             "no adapter to start from. Pick a LoRA run, or leave init_adapter empty.")
    if not (path / "adapter" / "adapter_config.json").is_file():
        state = runs.read_status(path).get("state", "unknown")
        raise TrainingFailed(f"method.init_adapter: the run {path.name} has no finished adapter (its state is "
                             f"{state}). Let it finish, or pick another run.")
    if (path / "recipe.yaml").is_file():
        theirs = load(path / "recipe.yaml").model.base
        if theirs != base and not (is_default(theirs) and is_default(base)):
            raise TrainingFailed(f"method.init_adapter: the run {path.name} was trained on '{theirs}', but this "
                                 f"recipe's model.base is '{base}'. Set model.base to '{theirs}', or pick a run on "
                                 f"'{base}'.")
    return path / "adapter"


def train_preference(
    recipe: Recipe | None,
    data_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_event: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train with DPO or ORPO and return the run folder. Never raises for a failed run: its status says why."""
    run_dir = Path(run_dir) if run_dir else runs.new_run_dir(Path(str(data_path or "run")).stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    say = run_logger(run_dir, log)

    trainer = model = None
    # Every core for the whole job, drafting included (the entry points start threads on one: see
    # models.on_fresh_thread), and chat steps aside while it runs.
    from studio.models import training_threads

    threads = training_threads().__enter__()
    try:
        # 1. The folder: recipe, a copy of the data and of the starting adapter, so the folder alone repeats the run.
        recipe, data_file, ckpt = prepare_folder(recipe, data_path, run_dir, resume)
        if not resume:
            if recipe.method.init_adapter.strip():
                start = _find_init_adapter(recipe.method.init_adapter.strip(), recipe.model.base)
                shutil.rmtree(run_dir / INIT_DIR, ignore_errors=True)
                shutil.copytree(start, run_dir / INIT_DIR)
                say(f"Starting from the adapter in {start}.")
                recipe.method.init_adapter = INIT_DIR  # relative to the run folder, like data.path
            recipe.save(run_dir / "recipe.yaml")
        m = recipe.method
        runs.write_status(run_dir, "queued", "Preparing data and model...", data_name=data_file.name,
                          recipe={"base": recipe.model.base, "method": m.name, "objective": m.objective,
                                  "beta": m.beta, "r": m.r, "alpha": m.alpha, "epochs": recipe.training.epochs,
                                  "learning_rate": recipe.training.learning_rate,
                                  "batch_size": recipe.training.batch_size})

        # 2. Data: read, check, split (seeded); the trainer applies the chat template to the conversations.
        from studio.data import split_examples
        from studio.models import apply_method, bf16_supported, count_parameters, load_model, load_tokenizer
        from studio.preference_data import load_preferences

        report = load_preferences(data_file, columns=recipe.data.columns or None)
        if not report.ok:
            raise TrainingFailed("The preference data cannot be trained on: "
                                 + "; ".join(p.message for p in report.errors[:5]))
        say(report.summary())
        # split_examples only counts and indexes, so it splits pairs exactly as it splits Q&A examples.
        train_pairs, eval_pairs = split_examples(report.pairs, recipe.data.eval_size, recipe.training.seed)
        train_rows = [p.conversation(recipe.data.system_prompt) for p in train_pairs]
        eval_rows = [p.conversation(recipe.data.system_prompt) for p in eval_pairs]
        for name, pairs, rows in (("train", train_pairs, train_rows), ("eval", eval_pairs, eval_rows)):
            with open(run_dir / "data" / f"{name}.jsonl", "w", encoding="utf-8") as fh:
                for pair, row in zip(pairs, rows, strict=True):
                    runs.json.dump({**row, "row": pair.row}, fh, ensure_ascii=False)
                    fh.write("\n")
        tokenizer = load_tokenizer(recipe.model.base, recipe.model.trust_remote_code, log=say)
        say(f"{len(train_rows)} training pairs, {len(eval_rows)} held out.")

        # 3. Model and adapter: a fresh LoRA on the base model, or the starting run's adapter, still trainable.
        say(f"Loading {recipe.model.base} for {m.objective.upper()} with {m.name}...")
        import torch

        t = recipe.training
        cuda = torch.cuda.is_available()
        precision = t.precision if t.precision != "auto" else ("bf16" if bf16_supported() else "fp32")
        model = load_model(recipe.model.base, m.name, recipe.model.trust_remote_code, log=say,
                           frozen_bf16=precision == "bf16" and not cuda)
        from transformers import set_seed

        set_seed(recipe.training.seed)
        if m.init_adapter:
            from peft import PeftModel, prepare_model_for_kbit_training

            if m.name == "qlora":
                model = prepare_model_for_kbit_training(model, recipe.training.gradient_checkpointing)
            model = PeftModel.from_pretrained(model, str(run_dir / m.init_adapter), is_trainable=True)
            say("The starting adapter's own rank, alpha and target modules apply; method.r/alpha are not used.")
        else:
            model = apply_method(model, m, recipe.training.gradient_checkpointing)
        trainable, total = count_parameters(model)
        say(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%).")
        runs.write_status(run_dir, "queued", "Starting training...", trainable_params=trainable, total_params=total,
                          train_examples=len(train_rows), eval_examples=len(eval_rows))

        # 4. Train.
        from datasets import Dataset

        has_eval = bool(eval_rows)
        common = dict(
            **trainer_args(recipe, run_dir, precision, has_eval, cuda),
            beta=m.beta,
            max_length=recipe.data.max_length,  # prompt plus one answer, in tokens
        )
        if m.objective == "dpo":
            from trl import DPOConfig, DPOTrainer

            config = DPOConfig(**common, loss_type=["sigmoid"], include_num_input_tokens_seen="non_padding")
            trainer_class = DPOTrainer
        else:
            # ORPO lives under trl.experimental in TRL 1.x; its batches have no `input_ids`, so no token count.
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer

            config = ORPOConfig(**common)
            trainer_class = ORPOTrainer
        model.config.use_cache = False
        trainer = trainer_class(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if has_eval else None,
            processing_class=tokenizer,
            callbacks=[_progress_callback(run_dir, stop_event, say, recipe.training.save_seconds)],
        )
        seconds = run_trainer(trainer, run_dir, ckpt, stop_event, say)
        if seconds is None:
            return run_dir

        # 6. Done: the trained adapter only (not TRL's frozen "ref" copy), never half-written.
        target = run_dir / "adapter"
        saved = save_weights(trainer, tokenizer, target, has_eval, run_dir, selected_adapters=["default"])
        if saved is None:
            return run_dir  # under `accelerate launch`, process 0 alone writes the weights and the status
        logged = [r for r in saved["metrics"] if "loss" in r]
        last = logged[-1] if logged else {}
        runs.write_status(
            run_dir, "done", f"Finished in {seconds:.0f} s.", step=trainer.state.global_step,
            total=trainer.state.global_step, loss=last.get("loss"), reward_margin=last.get("reward_margin"),
            reward_accuracy=last.get("reward_accuracy"), eta=0, eval_loss=saved["eval_loss"],
            train_seconds=seconds,
        )
        say(f"Done in {seconds:.0f} s. Adapter in {target}.")
        write_card_safely(run_dir, say)
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
