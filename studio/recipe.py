"""A recipe: everything a run needs, as typed dataclasses that round-trip through YAML.

Each field carries its help text in `metadata["help"]`; the CLI, the docs and the UI's labels and
tooltips all read it from there, so it is written exactly once.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

METHODS = ("lora", "qlora", "full", "head")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
TRACKERS = ("none", "tensorboard", "trackio", "wandb")
TRACKER_MODULES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
OBJECTIVES = ("sft", "dpo", "orpo")


def _f(default: Any, help: str, choices: tuple | None = None, label: str | None = None) -> Any:
    meta = {"help": help, "choices": choices, "label": label}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelSection:
    base: str = _f(
        "default",
        "Base model to fine-tune: 'default' for the embedded SmolLM2-135M-Instruct, a local folder "
        "with a Hugging Face model, or a hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'.",
        label="Base model",
    )
    trust_remote_code: bool = _f(
        False,
        "Run Python code shipped with the model. Only tick this for models whose authors you trust.",
        label="Trust remote code",
    )


@dataclass
class DataSection:
    path: str = _f("", "The Q&A file to train on (CSV, TSV, Excel, JSON or JSONL).", label="Data file")
    columns: dict = _f(
        {},
        "Override the detected column mapping, e.g. {question: Frage, answer: Antwort}. "
        "Roles: question, answer, context, system.",
        label="Column mapping",
    )
    system_prompt: str = _f(
        "",
        "Optional instruction put before every question, e.g. 'You answer questions about our products.' "
        "Use the same one when chatting.",
        label="System prompt",
    )
    max_length: int = _f(
        512,
        "Longest example in tokens; longer ones are cut at the end. Higher: fewer cut answers, more memory.",
        label="Max length (tokens)",
    )
    paraphrases: int = _f(
        0,
        "Rewrites of each question drafted by the base model before training (0: off). They teach the facts "
        "in more than one wording, so the tuned model also answers questions asked differently. Listed in the "
        "run's data/paraphrases.jsonl.",
        label="Question rewrites",
    )
    question_forms: int = _f(
        0,
        "Rule-based rewordings of each English question added before training (0: off): other question words "
        "and forms ('What is X called?' -> 'What is the name of X?', 'Name X.'; 'How much is X?' -> 'What does "
        "X cost?') and everyday ones ('Quick question: ...', all lower case). Exact and free: no drafting. "
        "Listed in the run's data/question_forms.jsonl.",
        label="Question forms",
    )
    rewrite_endpoint: str = _f(
        "",
        "OpenAI-compatible URL of a larger model to write the question rewrites instead of the base model, "
        "e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM, llama.cpp). Better rewrites "
        "teach more: one human-quality rewrite per fact added ~11 points of paraphrased-question hits in "
        "bench/learn.py. Empty: the base model writes them. Its API key, if it needs one, is read from the "
        "STUDIO_REWRITE_API_KEY environment variable and never stored.",
        label="Rewrites by (endpoint URL)",
    )
    rewrite_model: str = _f(
        "",
        "The model name data.rewrite_endpoint knows, e.g. llama3.1:8b or gpt-4o-mini.",
        label="Rewrite model name",
    )
    replay: int = _f(
        0,
        "General questions (from the studio's own list) answered by the base model and mixed into training "
        "(0: off). They keep a model tuned hard on a few facts from answering everything with those facts. "
        "Listed in the run's data/replay.jsonl.",
        label="General answers kept",
    )
    eval_size: float | None = _f(
        None,
        "Held-out examples for evaluation: empty for automatic (about 10%, at most 100), a count such as "
        "20, a fraction such as 0.1, or 0 for none.",
        label="Held-out size",
    )


@dataclass
class MethodSection:
    name: str = _f(
        "lora",
        "How to train: 'lora' adds small trainable matrices (fast, little memory); 'qlora' does the same on a "
        "4-bit base model (about a quarter of the memory for the base, on a GPU or the CPU; slower per step); "
        "'full' trains every weight (most memory); 'head' trains only the output layer.",
        choices=METHODS,
        label="Method",
    )
    r: int = _f(16, "LoRA rank. Higher: more capacity to learn, more memory and time. 8-64 is typical.", label="Rank r")
    alpha: float = _f(
        32, "LoRA alpha: scales the update (effective scale alpha/r). Usually 1-2x the rank.", label="Alpha"
    )
    dropout: float = _f(0.05, "LoRA dropout: randomly drops the adapter's input to fight overfitting.", label="Dropout")
    target_modules: str = _f(
        "all-linear",
        "Layers that get adapters: 'all-linear' or a comma-separated list such as 'q_proj,v_proj'.",
        label="Target modules",
    )
    objective: str = _f(
        "sft",
        "What to learn from: 'sft' imitates the answers of a Q&A file; 'dpo' and 'orpo' learn from a preference "
        "file (prompt, chosen, rejected) to prefer the chosen answer. DPO usually starts from an SFT run's adapter "
        "(see init_adapter); ORPO also learns the chosen answers, so it can start from the base model.",
        choices=OBJECTIVES,
        label="Objective",
    )
    beta: float = _f(
        0.1,
        "DPO/ORPO strength. DPO: how far the model may move from where it started (higher: stays closer); "
        "ORPO: weight of the preference term next to learning the chosen answers. 0.1 is typical.",
        label="Beta",
    )
    init_adapter: str = _f(
        "",
        "A finished LoRA run (its folder or run id) whose adapter to start from and keep improving: for DPO/ORPO "
        "typically an SFT run on the same base model, for SFT a run to continue on new or corrected data. Empty: "
        "start a fresh adapter on the base model.",
        label="Start from run",
    )


@dataclass
class TrainingSection:
    epochs: float = _f(3, "Passes over the training data. More: learns facts better, may memorise.", label="Epochs")
    learning_rate: float = _f(
        2e-4, "Step size of the optimiser. Too high: loss jumps; too low: nothing learned.", label="Learning rate"
    )
    batch_size: int = _f(8, "Examples per step on each device. Higher: faster, more memory.", label="Batch size")
    grad_accum: int = _f(
        1, "Gradient accumulation: steps summed before one update (effective batch = batch x this).", label="Grad accum"
    )
    max_steps: int = _f(0, "Stop after this many updates (0: run all epochs).", label="Max steps")
    lr_scheduler: str = _f("cosine", "How the learning rate changes over the run.", choices=SCHEDULERS,
                           label="Schedule")
    warmup_ratio: float = _f(0.05, "Share of the run spent ramping the learning rate up.", label="Warm-up ratio")
    weight_decay: float = _f(0.0, "Pulls weights toward zero; a mild regulariser.", label="Weight decay")
    neftune_noise_alpha: float = _f(
        0.0, "NEFTune: noise added to embeddings while training (0: off, 5 is common).", label="NEFTune noise"
    )
    precision: str = _f(
        "auto",
        "Number format: 'auto' picks bf16 where the CPU or GPU supports it, else fp32.",
        choices=PRECISIONS,
        label="Precision",
    )
    gradient_checkpointing: bool = _f(
        False, "Recompute activations instead of storing them: less memory, about 30% slower.",
        label="Grad checkpointing",
    )
    save_steps: int = _f(
        50, "Write a resumable checkpoint every this many updates (at most this much is lost on a crash).",
        label="Checkpoint every",
    )
    save_seconds: int = _f(
        60, "Also write a checkpoint once this many seconds of training have passed since the last one, so a crash "
        "loses at most about this much (0: by updates only). Single-process runs; under accelerate launch, by "
        "updates only.", label="Checkpoint every (seconds)",
    )
    eval_steps: int = _f(0, "Evaluate every this many updates (0: once per epoch).", label="Eval every")
    logging_steps: int = _f(1, "Record the loss every this many updates.", label="Log every")
    report_to: str = _f(
        "none", "Also send the loss to an experiment tracker you already use: 'tensorboard' (logs in the run's "
        "checkpoints/runs folder), 'trackio' or 'wandb', where installed. The run folder stays the record either "
        "way.", choices=TRACKERS, label="Experiment tracker",
    )
    seed: int = _f(42, "Random seed for the split, the adapter's start and the data order.", label="Seed")


@dataclass
class Recipe:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    method: MethodSection = field(default_factory=MethodSection)
    training: TrainingSection = field(default_factory=TrainingSection)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "data": DataSection,
    "method": MethodSection,
    "training": TrainingSection,
}


class RecipeError(ValueError):
    """Every problem with a recipe at once, one per line, each naming the field and the fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def field_help(section: str, name: str) -> dict:
    """Help, label and choices of `section.name`, for tooltips and the CLI."""
    for f in fields(SECTIONS[section]):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(f"{section}.{name}")


def _type_ok(value: Any, annotation: Any) -> bool:
    hint = eval(annotation, vars(typing), {}) if isinstance(annotation, str) else annotation  # noqa: S307 - our own source
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option in (str, bool, dict) and isinstance(value, option):
            return True
    return False


def from_dict(raw: Any) -> Recipe:
    """Build a recipe from plain data, collecting every unknown key and wrong type before failing."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError([f"recipe: expected a mapping of sections (model, data, method, training), "
                           f"got {type(raw).__name__}."])
    problems: list[str] = []
    sections = {}
    for key in raw:
        if key not in SECTIONS:
            hint = difflib.get_close_matches(str(key), SECTIONS, n=1)
            problems.append(f"{key}: unknown section." + (f" Did you mean '{hint[0]}'?" if hint else "")
                            + " Sections are: model, data, method, training.")
    for name, cls in SECTIONS.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            problems.append(f"{name}: expected a mapping of settings, got {type(values).__name__}.")
            sections[name] = cls()
            continue
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                hint = difflib.get_close_matches(str(key), known, n=1)
                problems.append(f"{name}.{key}: unknown setting." + (f" Did you mean '{hint[0]}'?" if hint else ""))
                continue
            if name == "method" and key == "target_modules" and isinstance(value, list):
                value = ",".join(str(v) for v in value)
            if isinstance(value, str) and known[key].type in ("float", "int", "float | None"):
                try:
                    value = float(value) if "." in value or "e" in value.lower() else int(value)
                except ValueError:
                    pass
            if not _type_ok(value, known[key].type):
                problems.append(f"{name}.{key}: expected {known[key].type}, got {value!r}.")
                continue
            if "float" in known[key].type and isinstance(value, int) and abs(value) > 1e300:
                problems.append(f"{name}.{key}: {str(value)[:12]}... is far too large a number.")
                continue
            if known[key].type == "float" and isinstance(value, int):
                value = float(value)
            kwargs[key] = value
        sections[name] = cls(**kwargs)
    if problems:
        raise RecipeError(problems)
    return Recipe(**sections)


def loads(text: str) -> Recipe:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError([f"recipe: not valid YAML{where}: {getattr(exc, 'problem', exc)}."]) from None
    return from_dict(raw)


def load(path: str | Path) -> Recipe:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError([f"recipe: cannot read {path}: {exc}"]) from None
    return loads(text)


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply `section.key=value` strings (values parsed as YAML), as the CLI's `--set` does."""
    raw = recipe.to_dict()
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2:
            problems.append(f"--set {item}: write it as section.setting=value, e.g. training.epochs=5.")
            continue
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        raw.setdefault(parts[0], {})
        if isinstance(raw[parts[0]], dict):
            raw[parts[0]][parts[1]] = parsed
        else:
            raw[parts[0]] = {parts[1]: parsed}
    if problems:
        raise RecipeError(problems)
    return from_dict(raw)


def validate(recipe: Recipe) -> list[str]:
    """Every out-of-range setting, each with the field name and how to fix it. Empty means valid."""
    m, d, t = recipe.method, recipe.data, recipe.training
    problems = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    need(bool(recipe.model.base.strip()), "model.base: empty. Use 'default', a local folder or a hub id.")
    need(m.name in METHODS, f"method.name: '{m.name}' is not one of {', '.join(METHODS)}.")
    need(t.report_to in TRACKERS, f"training.report_to: '{t.report_to}' is not one of {', '.join(TRACKERS)}.")
    need(t.report_to not in TRACKER_MODULES or importlib.util.find_spec(TRACKER_MODULES[t.report_to]) is not None,
         f"training.report_to: {t.report_to} is not installed here. Install it (pip install {t.report_to}) or set "
         "it to none.")
    need(m.r >= 1, f"method.r: must be at least 1 (got {m.r}). Try 16.")
    need(m.r <= 1024, f"method.r: {m.r} is far larger than useful. Try 8-64.")
    need(m.alpha > 0, f"method.alpha: must be above 0 (got {m.alpha}). Try twice the rank.")
    need(0 <= m.dropout < 1, f"method.dropout: must be from 0 up to (not including) 1 (got {m.dropout}). Try 0.05.")
    need(bool(m.target_modules.strip()), "method.target_modules: empty. Use 'all-linear' or e.g. 'q_proj,v_proj'.")
    need(m.objective in OBJECTIVES, f"method.objective: '{m.objective}' is not one of {', '.join(OBJECTIVES)}.")
    need(m.objective == "sft" or m.name in ("lora", "qlora"),
         f"method.objective: {m.objective} trains a LoRA adapter; set method.name to lora or qlora (got {m.name}).")
    need(m.beta > 0, f"method.beta: must be above 0 (got {m.beta}). Try 0.1.")
    need(m.beta <= 10, f"method.beta: {m.beta} is far too strong. Try 0.1 (0.05-0.5 is typical).")
    need(not m.init_adapter.strip() or m.name != "full",
         "method.init_adapter: a full fine-tune has no adapter to start from. Clear it, or use LoRA.")
    need(0 <= d.replay <= 200, f"data.replay: must be from 0 to 200 (got {d.replay}). Try 20.")
    need(0 <= d.question_forms <= 8,
         f"data.question_forms: must be from 0 to 8 (got {d.question_forms}). Try 2.")
    need(0 <= d.paraphrases <= 8, f"data.paraphrases: must be from 0 to 8 (got {d.paraphrases}). Try 2.")
    endpoint = d.rewrite_endpoint.strip()
    need(not endpoint or re.match(r"^https?://[^\s/]+", endpoint) is not None,
         f"data.rewrite_endpoint: '{endpoint[:80]}' is not an http:// or https:// URL. Try http://localhost:11434/v1, "
         "or leave it empty for the base model's own rewrites.")
    need(not endpoint or bool(d.rewrite_model.strip()),
         "data.rewrite_endpoint: set data.rewrite_model too, the model name that server knows (e.g. llama3.1:8b).")
    need(d.max_length >= 16, f"data.max_length: must be at least 16 tokens (got {d.max_length}). Try 512.")
    need(d.max_length <= 131072, f"data.max_length: {d.max_length} is beyond any supported model. Try 512-4096.")
    if d.eval_size is not None:
        need(d.eval_size >= 0, f"data.eval_size: cannot be negative (got {d.eval_size}). Use 0 for none.")
        need(d.eval_size < 1 or float(d.eval_size).is_integer(),
             f"data.eval_size: {d.eval_size} is neither a fraction below 1 nor a whole count.")
    need(t.epochs > 0, f"training.epochs: must be above 0 (got {t.epochs}). Try 3.")
    need(t.epochs <= 1000, f"training.epochs: {t.epochs} is too many. Try 1-20.")
    need(t.learning_rate > 0, f"training.learning_rate: must be above 0 (got {t.learning_rate}). Try 2e-4 for LoRA.")
    need(t.learning_rate < 1, f"training.learning_rate: {t.learning_rate} is far too high. Try 2e-4 for LoRA.")
    need(t.batch_size >= 1, f"training.batch_size: must be at least 1 (got {t.batch_size}).")
    need(t.grad_accum >= 1, f"training.grad_accum: must be at least 1 (got {t.grad_accum}).")
    need(t.max_steps >= 0, f"training.max_steps: cannot be negative (got {t.max_steps}). Use 0 to run all epochs.")
    need(t.lr_scheduler in SCHEDULERS,
         f"training.lr_scheduler: '{t.lr_scheduler}' is not one of {', '.join(SCHEDULERS)}.")
    need(0 <= t.warmup_ratio < 1, f"training.warmup_ratio: must be from 0 up to 1 (got {t.warmup_ratio}). Try 0.05.")
    need(t.weight_decay >= 0, f"training.weight_decay: cannot be negative (got {t.weight_decay}).")
    need(t.neftune_noise_alpha >= 0, f"training.neftune_noise_alpha: cannot be negative (got {t.neftune_noise_alpha}).")
    need(t.precision in PRECISIONS, f"training.precision: '{t.precision}' is not one of {', '.join(PRECISIONS)}.")
    need(t.save_steps >= 1, f"training.save_steps: must be at least 1 (got {t.save_steps}).")
    need(t.save_seconds >= 0, f"training.save_seconds: cannot be negative (got {t.save_seconds}). Use 0 to save by "
         "updates only.")
    need(t.eval_steps >= 0, f"training.eval_steps: cannot be negative (got {t.eval_steps}). Use 0 for once per epoch.")
    need(t.logging_steps >= 1, f"training.logging_steps: must be at least 1 (got {t.logging_steps}).")
    return problems


def check(recipe: Recipe) -> Recipe:
    problems = validate(recipe)
    if problems:
        raise RecipeError(problems)
    return recipe
