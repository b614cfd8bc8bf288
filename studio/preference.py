"""Preference tuning (DPO, ORPO): where a preference run differs from an SFT run.

`studio.train.train` runs it through the same lifecycle and run-folder contract (recipe.yaml, data copy,
metrics.jsonl, status.json, checkpoints/, adapter/), so runs, chat, export and the UI treat a DPO or ORPO run like
any other. Only the data (prompt, chosen, rejected rows), the starting adapter and the trainer differ:

- DPO (TRL's `DPOTrainer`, sigmoid loss) pushes the chosen answer's likelihood up and the rejected one's down,
  relative to a frozen reference. No second model is loaded: TRL keeps a frozen copy of the starting adapter as a
  second adapter named "ref". For a fresh adapter that copy is exactly the base model (LoRA starts at zero); when
  starting from an SFT run's adapter (`method.init_adapter`) it is that SFT model, the usual DPO set-up.
- ORPO (TRL's `trl.experimental.orpo.ORPOTrainer`) needs no reference: it learns the chosen answers (plain NLL)
  plus an odds-ratio term against the rejected ones, so it can start from the base model in one stage.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.data import load_preferences, split_examples
from studio.models import apply_method, is_default
from studio.recipe import Recipe, load
from studio.runs import Split, TrainingFailed

INIT_DIR = "init_adapter"  # the starting adapter, copied into the run folder so resume never depends on another run


def find_init_adapter(spec: str, base: str) -> Path:
    """The adapter folder behind `method.init_adapter` (a run id, a run folder or an adapter folder), checked."""
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


def copy_init_adapter(recipe: Recipe, run_dir: Path, say: Callable[[str], None]) -> None:
    """The starting adapter copied into the run folder; `method.init_adapter` then names the copy, like data.path."""
    start = find_init_adapter(recipe.method.init_adapter.strip(), recipe.model.base)
    shutil.rmtree(run_dir / INIT_DIR, ignore_errors=True)
    shutil.copytree(start, run_dir / INIT_DIR)
    say(f"Starting from the adapter in {start}.")
    recipe.method.init_adapter = INIT_DIR


def read_data(recipe: Recipe, data_file: Path, run_dir: Path, say: Callable[[str], None]) -> Split:
    """The preference file checked and split (seeded) into conversations, listed in data/train.jsonl and eval.jsonl.

    The trainer applies the chat template to them itself.
    """
    report = load_preferences(data_file, columns=recipe.data.columns or None)
    if not report.ok:
        raise TrainingFailed("The preference data cannot be trained on: "
                             + "; ".join(p.message for p in report.errors[:5]))
    say(report.summary())
    # split_examples only counts and indexes, so it splits pairs exactly as it splits Q&A examples.
    train_pairs, eval_pairs = split_examples(report.pairs, recipe.data.eval_size, recipe.training.seed)
    rows = {name: [p.conversation(recipe.data.system_prompt) for p in pairs]
            for name, pairs in (("train", train_pairs), ("eval", eval_pairs))}
    for name, pairs in (("train", train_pairs), ("eval", eval_pairs)):
        lines = [runs.json.dumps({**row, "row": pair.row}, ensure_ascii=False) + "\n"
                 for pair, row in zip(pairs, rows[name], strict=True)]
        (run_dir / "data" / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
    return Split(rows["train"], rows["eval"])


def examples(data: Split, run_dir: Path, model, tokenizer, recipe: Recipe, say: Callable[[str], None],
             stop_event: threading.Event | None) -> Split:
    """The conversations as they are: nothing is drafted for preference pairs."""
    say(f"{len(data.train)} training pairs, {len(data.eval)} held out.")
    return data


def apply(model, recipe: Recipe, run_dir: Path, say: Callable[[str], None]):
    """A fresh LoRA on the base model, or the starting run's adapter, still trainable."""
    m = recipe.method
    if not m.init_adapter:
        return apply_method(model, m, recipe.training.gradient_checkpointing)
    from peft import PeftModel, prepare_model_for_kbit_training

    if m.name == "qlora":
        model = prepare_model_for_kbit_training(model, recipe.training.gradient_checkpointing)
    model = PeftModel.from_pretrained(model, str(run_dir / m.init_adapter), is_trainable=True)
    say("The starting adapter's own rank, alpha and target modules apply; method.r/alpha are not used.")
    return model


def build_trainer(model, tokenizer, rows: Split, recipe: Recipe, args: dict, precision: str, cuda: bool,
                  callbacks: list):
    from datasets import Dataset

    common = dict(**args, beta=recipe.method.beta, max_length=recipe.data.max_length)  # prompt plus one answer
    if recipe.method.objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common, loss_type=["sigmoid"], include_num_input_tokens_seen="non_padding")
        trainer_class = DPOTrainer
    else:
        # ORPO lives under trl.experimental in TRL 1.x; its batches have no `input_ids`, so no token count.
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        config = ORPOConfig(**common)
        trainer_class = ORPOTrainer
    return trainer_class(
        model=model, args=config, train_dataset=Dataset.from_list(rows.train),
        eval_dataset=Dataset.from_list(rows.eval) if rows.eval else None, processing_class=tokenizer,
        callbacks=callbacks,
    )
