"""Defaults that learn: epochs, learning rate, rank and batch size picked from the data's size.

Small fact sets need many passes at a high LoRA learning rate to be learned at all (the usual
"I trained it and it answers the same"); large sets need fewer passes and a gentler rate. The figures
come from the learning benchmark in `bench/learning/`; the user sees them and can override any.
"""

from __future__ import annotations

import re
from pathlib import Path

from studio.data import load_data, split_examples
from studio.recipe import MethodSection, Recipe

METHOD = MethodSection()  # rank and alpha: the recipe's own defaults, written once there


def suggest(n_examples: int, method: str = "lora") -> dict[str, dict]:
    """Settings for `n_examples` training examples, as {section: {field: value}}, with no side effects."""
    n = max(n_examples, 1)
    if n <= 60:
        epochs, lr, batch = 2, 3e-3, 8
    elif n <= 300:
        epochs, lr, batch = 6, 5e-4, 8
    elif n <= 2000:
        epochs, lr, batch = 3, 2e-4, 8
    else:
        epochs, lr, batch = 2, 2e-4, 16
    if method == "full":
        lr = min(lr, 2e-5) if n > 60 else 5e-5
    elif method == "head":
        lr = 1e-4
    # Small fact sets are taught in several wordings: rule-based question forms (exact, free) and rewrites by the
    # base model (looser, but they change the words too), a few passes at a high rate; bench/README.md has the
    # runs behind these figures. Many passes over few facts pull general answers towards them, so up to a few
    # hundred rows also train on the base model's own answers to general questions (data.replay), which keeps
    # the forgetting check level. Larger sets already vary their wording.
    sft = method in ("lora", "qlora", "full")
    small = n <= 60 and sft
    return {
        "training": {"epochs": epochs, "learning_rate": lr, "batch_size": min(batch, n), "warmup_ratio": 0.05},
        # no dropout: ~17% of a CPU step, no gain. A small fact set gets rank 64 (alpha 128, the same scale): facts
        # with close numbers (27 vs 31 days) need the capacity, and the adapter's cost is small next to the base
        # model's passes (bench/README.md, "Learning that transfers": +32 points on the HR handbook, ~10% time);
        # and 30 general answers, not 20, so the extra capacity does not pull general answers towards the facts.
        "method": {"r": 64 if small else METHOD.r, "alpha": 128 if small else METHOD.alpha, "dropout": 0.0},
        "data": {"paraphrases": 2 if small else 0, "question_forms": 4 if small else 0,
                 "replay": 30 if small else 20 if n <= 300 and sft else 0},
    }


_NOT_A_TOPIC = {"qa", "faq", "faqs", "q", "a", "data", "dataset", "questions", "question", "answers", "answer", "pairs",
                "train", "training", "sample", "samples", "test", "final", "my", "our", "new", "copy", "export", "and"}


def own_system_prompt(recipe: Recipe, data_path: str | Path, example) -> str:
    """A system prompt of the user's own, named after the data ("You answer questions about the bakery."), in place
    of the base model's persona ("You are SmolLM, trained by Hugging Face") that its template adds when none is
    given: the same line then goes into training, chat, evaluation, the card and every export. Empty for a base
    model whose chat template takes no system turn (older Gemma and Mistral ones), whose tokenizer cannot load, or
    that this studio refuses (a shared studio's checks come first)."""
    from studio.data import template_problem
    from studio.models import load_tokenizer
    from studio.policy import recipe_problems

    if recipe_problems(recipe):  # a shared studio loads no tokenizer from a folder or code it refuses to train with
        return ""

    words = [w for w in re.split(r"[\W_]+", Path(str(data_path)).stem) if w and w.lower() not in _NOT_A_TOPIC
             and not w.isdigit()]
    prompt = (f"You answer questions about {' '.join(words)}, briefly and exactly." if words else
              "You answer questions briefly and exactly, from what you were taught.")
    try:
        tokenizer = load_tokenizer(recipe.model.base, recipe.model.trust_remote_code, log=lambda _: None)
        return "" if template_problem(tokenizer, example, prompt) else prompt
    except Exception:  # noqa: BLE001 - no tokenizer here (a hub id offline): the run reports that itself
        return ""


def size_to_data(recipe: Recipe, data_path: str | Path | None, explicit: list[str] | tuple = ()) -> Recipe:
    """Apply `suggest()` for the data in `data_path`, keeping every setting the user set explicitly."""
    if not data_path:
        return recipe

    report = load_data(data_path, columns=recipe.data.columns or None)
    if not report.ok:
        return recipe  # the training run reports the data problems itself
    train, _ = split_examples(report.examples, recipe.data.eval_size, recipe.training.seed)
    chosen = {item.split("=", 1)[0].strip() for item in explicit}
    if "data.system_prompt" not in chosen and not recipe.data.system_prompt.strip():
        recipe.data.system_prompt = own_system_prompt(recipe, data_path, report.examples[0])
    for section, values in suggest(len(train), recipe.method.name).items():
        for key, value in values.items():
            if f"{section}.{key}" not in chosen:
                setattr(getattr(recipe, section), key, value)
    return recipe
