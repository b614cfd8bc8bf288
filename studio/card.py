"""The model card: a run folder's README.md, so the folder explains itself wherever it is copied or uploaded.

Everything in it is read from the folder (recipe, data, metrics, status, eval and forgetting reports), so
the card can be written again at any time and never disagrees with the run. The YAML front matter is the
Hugging Face Hub's model-card metadata; the rest is for the person who finds the folder in a year.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import shlex
from pathlib import Path

import yaml

from studio import runs
from studio.evaluate import format_forgetting, format_table
from studio.monitor import training_warnings
from studio.recipe import load as load_recipe

HUB_DEFAULT = "HuggingFaceTB/SmolLM2-135M-Instruct"
SAMPLES = 5
PLOT_SIZE = (720, 400)


def md(text) -> str:
    """A user string made safe for one Markdown table cell: no pipes, newlines or raw HTML to break it."""
    text = html.escape(str(text), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _nice_step(span: float, ticks: int = 5) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    import math

    raw = max(span, 1e-12) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def plot_losses(metrics: list[dict], path: Path) -> bool:
    """Draw training and held-out loss against step as a PNG; False when there is nothing to draw.

    Pillow, not matplotlib: it is already installed (through gradio), and a line chart needs no more.
    """
    import math

    from PIL import Image, ImageDraw, ImageFont

    series = {
        "training loss": [(r["step"], r["loss"]) for r in metrics if r.get("loss") is not None and "step" in r],
        "held-out loss": [(r["step"], r["eval_loss"]) for r in metrics
                          if r.get("eval_loss") is not None and "step" in r],
    }
    series = {k: [(x, y) for x, y in v if math.isfinite(y)] for k, v in series.items()}
    points = [p for v in series.values() for p in v]
    if not points:
        return False
    colors = {"training loss": (31, 119, 180), "held-out loss": (255, 127, 14)}
    width, height = PLOT_SIZE
    left, right, top, bottom = 70, 20, 40, 50
    try:
        font = ImageFont.load_default(size=13)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    x0, x1 = min(x for x, _ in points), max(x for x, _ in points)
    y0, y1 = 0.0, max(y for _, y in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 * 1.05 if y1 > 0 else 1.0)

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))

    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 12), "Loss by step", fill="black", font=font)
    step = _nice_step(y1 - y0)
    tick = 0.0
    while tick <= y1:
        _, y = at(x0, tick)
        draw.line([(left, y), (width - right, y)], fill=(230, 230, 230))
        draw.text((left - 8, y), f"{tick:g}", fill="black", font=font, anchor="rm")
        tick = round(tick + step, 10)
    step = max(1, round(_nice_step(x1 - x0)))
    tick = math.ceil(x0 / step) * step
    while tick <= x1:
        x, _ = at(tick, y0)
        draw.line([(x, height - bottom), (x, height - bottom + 5)], fill="black")
        draw.text((x, height - bottom + 8), str(tick), fill="black", font=font, anchor="mt")
        tick += step
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], fill="black")
    draw.text(((left + width - right) / 2, height - 14), "step", fill="black", font=font, anchor="mm")
    legend_y = 12
    for name, values in series.items():
        if not values:
            continue
        xy = [at(x, y) for x, y in values]
        if len(xy) > 1:
            draw.line(xy, fill=colors[name], width=2)
        for x, y in xy if len(xy) <= 40 else xy[-1:]:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colors[name])
        draw.line([(width - 170, legend_y + 7), (width - 145, legend_y + 7)], fill=colors[name], width=3)
        draw.text((width - 140, legend_y), name, fill="black", font=font)
        legend_y += 18
    image.save(path, format="PNG")
    return True


def _data_section(run_dir: Path, data_file: Path | None) -> list[str]:
    train = [r for r in runs.read_jsonl(run_dir / "data" / "train.jsonl") if r.get("messages")]
    held = [r for r in runs.read_jsonl(run_dir / "data" / "eval.jsonl") if r.get("messages")]
    lines = ["## Data", "", "| | |", "|---|---|"]
    if data_file is not None and data_file.is_file():
        lines += [f"| File | {md(data_file.name)} ({data_file.stat().st_size:,} bytes) |",
                  f"| SHA-256 | `{sha256(data_file)}` |"]
    else:
        lines.append("| File | not found in `data/` |")
    lines += [f"| Examples | {len(train) + len(held)} |", f"| Training | {len(train)} |",
              f"| Held out | {len(held)} |"]
    for name, label in (("paraphrases", "Question rewrites by the base model"),
                        ("question_forms", "Question forms (rule-based rewordings)"),
                        ("replay", "General answers kept (the base model's own)")):
        added = run_dir / "data" / f"{name}.jsonl"
        if added.exists():
            lines.append(f"| {label} | {len(runs.read_jsonl(added))}, listed in `data/{name}.jsonl` |")
    for role, label in (("user", "Question"), ("assistant", "Answer")):
        sizes = [sum(len(m["content"]) for m in r["messages"] if m.get("role") == role) for r in train + held]
        if sizes:
            lines.append(f"| {label} length (characters) | mean {sum(sizes) / len(sizes):.0f}, max {max(sizes)} |")
    return lines


def _eval_section(report: dict) -> list[str]:

    lines = ["## Evaluation: base vs tuned", "", format_table(report), ""]
    rows = report.get("rows", [])[:SAMPLES]
    if rows:
        lines += [f"Sample answers (greedy, first {len(rows)}):", "", "| Question | Reference | Base | Tuned |",
                  "|---|---|---|---|"]
        lines += [f"| {md(r['question'])} | {md(r.get('answer', ''))} | {md(r['base'])} | {md(r['tuned'])} |"
                  for r in rows]
    return lines


def _settings_table(recipe) -> list[str]:
    lines = ["| Setting | Value |", "|---|---|"]
    for section, values in recipe.to_dict().items():
        for key, value in values.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
            lines.append(f"| `{section}.{key}` | {md('' if shown is None else shown)} |")
    return lines


def _results_section(run_dir: Path, status: dict, metrics: list[dict]) -> list[str]:
    """Final and lowest losses, steps, time, trainable share, the loss plot and the live warnings."""

    lines = []
    losses = [r["loss"] for r in metrics if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in metrics if r.get("eval_loss") is not None]
    train_loss = status.get("loss", losses[-1] if losses else None)
    eval_loss = status.get("eval_loss", evals[-1] if evals else None)
    lines += ["## Results", "", "| | |", "|---|---|",
              f"| Final training loss | {_fmt(train_loss)} |", f"| Final held-out loss | {_fmt(eval_loss)} |",
              f"| Lowest held-out loss | {_fmt(min(evals) if evals else None)} |",
              f"| Steps | {_fmt(status.get('step', metrics[-1].get('step') if metrics else None))} |",
              f"| Training time (s) | {_fmt(status.get('train_seconds'), 0)} |"]
    if status.get("trainable_params") and status.get("total_params"):
        share = 100 * status["trainable_params"] / status["total_params"]
        lines.append(f"| Trainable parameters | {status['trainable_params']:,} of {status['total_params']:,} "
                     f"({share:.2f}%) |")
    lines.append("")
    plot = run_dir / "loss.png"
    try:
        drawn = plot_losses(metrics, plot)
    except ImportError:  # Pillow comes with gradio; an engine-only install still gets a card
        drawn = False
    if drawn:
        lines += ["![Training and held-out loss by step](loss.png)", ""]
    for warning in training_warnings(metrics):
        lines += [f"> ⚠ {md(warning)}", ""]

    return lines


def _use_section(run_dir: Path, recipe, hub_base: str, data_name: str) -> list[str]:
    """How to ask the tuned model (CLI, PEFT or transformers) and how to repeat the run."""
    from studio.models import is_default

    base, is_adapter = recipe.model.base, recipe.method.name in ("lora", "qlora")
    lines = []
    weights = json.dumps(str(run_dir / ("adapter" if is_adapter else "model")))
    lines += ["## Use", "", "Ask it from the command line:", "", "```bash",
              f"python -m studio chat {shlex.quote(str(run_dir))} \"your question\"", "```", ""]
    if is_adapter and is_default(base):
        lines += [(f"Or load the adapter with PEFT. Studio's default model is the GGUF build of {HUB_DEFAULT}, "
                   "converted once; load that same base for the same answers (the hub's full-precision weights "
                   "give close, not identical, ones):"), "", "```python",
                  "from peft import PeftModel", "from studio.models import load_model, load_tokenizer", "",
                  f'model = PeftModel.from_pretrained(load_model("default"), {weights})',
                  'tokenizer = load_tokenizer("default")', "```", ""]
    elif is_adapter:
        lines += ["Or load the adapter with PEFT:", "", "```python", "from peft import PeftModel",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f"base = AutoModelForCausalLM.from_pretrained({json.dumps(hub_base)})",
                  f"model = PeftModel.from_pretrained(base, {weights})",
                  f"tokenizer = AutoTokenizer.from_pretrained({weights})", "```", ""]
    else:
        lines += ["Or load the model with transformers:", "", "```python",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f"model = AutoModelForCausalLM.from_pretrained({weights})",
                  f"tokenizer = AutoTokenizer.from_pretrained({weights})", "```", ""]
    if recipe.data.system_prompt:
        lines += [f"It was trained with the system prompt \"{md(recipe.data.system_prompt)}\"; use the same one.", ""]
    lines += ["## Repeat this run", "", "The folder holds the recipe and a copy of the data:", "", "```bash",
              (f"python -m studio train {shlex.quote(str(run_dir / 'recipe.yaml'))} "
               f"--data {shlex.quote(str(run_dir / 'data' / data_name))}"), "```", ""]

    return lines


def write_card(run_dir: str | Path) -> Path:
    """Write `run_dir/README.md` (and `loss.png`) from what the run folder holds; return the card's path."""
    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / "recipe.yaml")
    status = runs.read_status(run_dir)
    metrics = runs.read_metrics(run_dir)
    method = recipe.method.name
    is_adapter = method in ("lora", "qlora")
    from studio.models import DEFAULT_NAME, is_default

    base = recipe.model.base
    hub_base = HUB_DEFAULT if is_default(base) else base
    data_name = Path(recipe.data.path).name or status.get("data_name", "")
    data_file = run_dir / "data" / data_name if data_name else None

    front = {"base_model": hub_base, "library_name": "peft" if is_adapter else "transformers",
             "pipeline_tag": "text-generation", "tags": ["studio", "sft", "trl", method]}
    title = f"{run_dir.name}: {method.upper()} fine-tune of {DEFAULT_NAME if is_default(base) else base}"
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# {md(title)}", ""]
    lines += [f"Fine-tuned with Studio from {md(base)} ({hub_base}) on {md(data_name)}, using {method}"
              + (f" (rank {recipe.method.r}, alpha {recipe.method.alpha:g})" if is_adapter else "") + ".", ""]
    if status.get("state") and status["state"] != "done":
        lines += [f"**State: {md(status['state'])}.** {md(status.get('message', ''))}", ""]

    lines += _results_section(run_dir, status, metrics)
    eval_report = _read_json(run_dir / "eval.json")
    if eval_report:
        lines += _eval_section(eval_report) + [""]
    forgetting = _read_json(run_dir / "forgetting.json")
    if forgetting:

        lines += ["## Forgetting check", "", "General questions the data never mentions, base vs tuned.", "",
                  format_forgetting(forgetting), ""]

    lines += _data_section(run_dir, data_file) + [""]
    lines += ["## Recipe", "", f"Method: **{method}**. Every setting of `recipe.yaml`:", ""]
    lines += _settings_table(recipe) + [""]
    versions = ", ".join(f"{p} {_version(p)}" for p in ("torch", "transformers", "peft", "trl"))
    lines += ["## Environment", "", f"Seed {recipe.training.seed}; {versions}.", ""]

    lines += _use_section(run_dir, recipe, hub_base, data_name)

    card = run_dir / "README.md"
    tmp = card.with_name(".README.md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(card)
    return card
