"""Supervised fine-tuning on question/answer pairs: where an SFT run differs from a preference run.

`studio.train.train` calls these at the steps where objectives differ: the data's shape (Q&A examples, answer
tokens only), the examples drafted before training (rewrites, question forms, general answers), the method on
the model, and TRL's SFTTrainer with Studio's CPU speed-ups (packed rows, one shared system prompt per row).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from studio import drafts
from studio.data import Example, load_data, split_examples, template_problem, tokenize_example
from studio.models import apply_method
from studio.recipe import Recipe
from studio.runs import Split, TrainingFailed


def read_data(recipe: Recipe, data_file: Path, run_dir: Path, say: Callable[[str], None]) -> Split:
    """The Q&A file checked and split (seeded), both parts listed in data/train.jsonl and data/eval.jsonl."""
    report = load_data(data_file, columns=recipe.data.columns or None)
    if not report.ok:
        raise TrainingFailed("The data cannot be trained on: " + "; ".join(p.message for p in report.errors[:5]))
    say(report.summary())
    train_ex, eval_ex = split_examples(report.examples, recipe.data.eval_size, recipe.training.seed)
    for name, rows in (("train", train_ex), ("eval", eval_ex)):
        drafts.write_examples(run_dir / "data" / f"{name}.jsonl", rows)
    return Split(train_ex, eval_ex)


def _encode(tokenizer, examples: list[Example], recipe: Recipe) -> list[dict]:
    """Token ids with the answer marked; examples cut to nothing of their answer are dropped."""
    out = []
    for ex in examples:
        enc = tokenize_example(tokenizer, ex, recipe.data.system_prompt, recipe.data.max_length)
        if any(enc["completion_mask"]):
            out.append({"input_ids": enc["input_ids"], "completion_mask": enc["completion_mask"]})
    return out


def examples(data: Split, run_dir: Path, model, tokenizer, recipe: Recipe, say: Callable[[str], None],
             stop_event: threading.Event | None) -> Split:
    """The tokenized rows to train on: the user's pairs plus what the base model drafts before any training."""
    if data.train and (problem := template_problem(tokenizer, data.train[0], recipe.data.system_prompt)):
        raise TrainingFailed(problem)
    train_rows, eval_rows = _encode(tokenizer, data.train, recipe), _encode(tokenizer, data.eval, recipe)
    if not train_rows:
        raise TrainingFailed("No example has any answer tokens left after cutting to data.max_length. "
                             "Raise data.max_length.")
    say(f"{len(train_rows)} training examples, {len(eval_rows)} held out.")
    d = recipe.data
    rewrites = drafts.paraphrases(run_dir, model, tokenizer, data.train, recipe, say, stop_event) \
        if d.paraphrases > 0 else []
    train_rows += _encode(tokenizer, rewrites, recipe)
    # Nothing held out (a small upload): one rewording of each question is kept out of training to check it on.
    reworded = [] if data.eval else drafts.held_out_rewordings(run_dir, data.train, rewrites, recipe, say)
    if d.question_forms > 0:
        train_rows += _encode(tokenizer, drafts.question_forms(run_dir, data.train, rewrites + reworded, recipe, say),
                              recipe)
    if d.replay > 0:
        train_rows += _encode(tokenizer, drafts.replay(run_dir, model, tokenizer, recipe, say, stop_event), recipe)
    return Split(train_rows, eval_rows)


def apply(model, recipe: Recipe, run_dir: Path, say: Callable[[str], None]):
    """A fresh LoRA, or (method.init_adapter) the run's starting adapter to keep training: "train again" on
    corrected data continues from where the earlier run left off."""
    if recipe.method.init_adapter.strip():
        from studio.preference import apply as start_from

        return start_from(model, recipe, run_dir, say)
    return apply_method(model, recipe.method, recipe.training.gradient_checkpointing)


def build_trainer(model, tokenizer, rows: Split, recipe: Recipe, args: dict, precision: str, cuda: bool,
                  callbacks: list):
    from datasets import Dataset
    from peft.tuners.lora import LoraLayer
    from trl import SFTConfig, SFTTrainer

    from studio.kernels.lm_head_loss import use_dense_cpu_log_probs
    from studio.kernels.packed_attention import share_prefix, use_packed_attention

    use_dense_cpu_log_probs()
    config = SFTConfig(
        **args,
        neftune_noise_alpha=recipe.training.neftune_noise_alpha or None,
        completion_only_loss=True,
        max_length=None,  # tokenize_example already cut every example to data.max_length
        include_num_input_tokens_seen="non_padding",
        # Padding-free: each batch is one packed row with restarting position ids, so no FLOP is spent on pad
        # tokens; on the CPU each example attends within itself (studio.kernels.packed_attention), on GPUs
        # transformers builds the block-diagonal mask for sdpa from the position ids.
        padding_free=True,
        # Packed rows rounded up to a multiple of 64 tokens on the CPU: oneDNN builds a kernel per new matmul
        # shape, and a handful of shapes reused beat a new shape every step (~10% faster there).
        pad_to_multiple_of=None if cuda else 64,
    )
    if precision in ("bf16", "fp16"):
        # PEFT casts each adapter's input up to the fp32 adapter weights, and autocast casts it straight back
        # down for the matmul: two copies of every activation per adapted layer, for the same numbers.
        for module in model.modules():
            if isinstance(module, LoraLayer):
                module.cast_input_dtype_enabled = False
    packed = not cuda and use_packed_attention(model.get_base_model() if hasattr(model, "get_base_model") else model)
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(rows.train),
        eval_dataset=Dataset.from_list(rows.eval) if rows.eval else None, processing_class=tokenizer,
        callbacks=callbacks,
    )
    if packed:  # the system prompt once per packed row instead of once per example
        share_prefix(trainer, config.pad_to_multiple_of)
    return trainer
