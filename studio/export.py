"""Export a finished run: its LoRA adapter as is, or the base model with the adapter merged in."""

from __future__ import annotations

import shutil
from pathlib import Path

from studio import runs


def export_run(run_dir: Path, fmt: str, out: Path) -> Path:
    """Write `fmt` ('adapter' or 'merged') of the run to the folder `out` and return it."""
    weights = runs.final_weights(run_dir)
    if weights is None:
        raise FileNotFoundError(f"Run {Path(run_dir).name} has no final weights yet; wait for it to finish.")
    out = Path(out)
    if out.exists() and any(out.iterdir()) if out.is_dir() else out.exists():
        raise ValueError(f"{out} already exists and is not empty; choose a new folder.")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if fmt == "adapter" or weights.name == "model":
        shutil.copytree(weights, tmp)
        for extra in ("recipe.yaml", "README.md"):
            if (Path(run_dir) / extra).exists():
                shutil.copy(Path(run_dir) / extra, tmp / extra)
    elif fmt == "merged":
        from peft import PeftModel

        from studio.models import load_model, load_tokenizer
        from studio.recipe import load

        recipe = load(Path(run_dir) / "recipe.yaml")
        base = load_model(recipe.model.base, "lora", recipe.model.trust_remote_code, log=lambda _: None)
        merged = PeftModel.from_pretrained(base, str(weights)).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(recipe.model.base, log=lambda _: None).save_pretrained(tmp)
        for extra in ("recipe.yaml", "README.md"):
            if (Path(run_dir) / extra).exists():
                shutil.copy(Path(run_dir) / extra, tmp / extra)
    else:
        raise ValueError(f"Unknown export format '{fmt}'. Use 'adapter' or 'merged'.")
    if out.is_dir():
        out.rmdir()
    tmp.rename(out)
    return out
