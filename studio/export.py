"""Export a finished run: its LoRA adapter as is, the base model with the adapter merged in, or a GGUF file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from studio import runs
from studio.recipe import load

FORMATS = ("adapter", "merged", "gguf")


def export_run(run_dir: Path, fmt: str, out: Path, quant: str = "f16",
               log: Callable[[str], None] = lambda _: None, step: Callable[[str], None] = lambda _: None) -> Path:
    """Write `fmt` of the run to `out` and return it: a folder for 'adapter'/'merged', a .gguf file for 'gguf'.

    `quant` ('f16' or 'q8_0') applies to GGUF only; `log` hears the GGUF check's numbers, `step` each step's name
    as it begins (a merge or a GGUF takes up to a minute: the page says which step it is on).
    """
    if fmt == "gguf":
        return _export_gguf(Path(run_dir), Path(out), quant, log, step)
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

        recipe = load(Path(run_dir) / "recipe.yaml")
        step("loading the base model and merging the adapter into it")
        base = load_model(recipe.model.base, "lora", recipe.model.trust_remote_code, log=lambda _: None)
        merged = PeftModel.from_pretrained(base, str(weights)).merge_and_unload()
        step("saving the merged model")
        merged.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(recipe.model.base, log=lambda _: None).save_pretrained(tmp)
        for extra in ("recipe.yaml", "README.md"):
            if (Path(run_dir) / extra).exists():
                shutil.copy(Path(run_dir) / extra, tmp / extra)
    else:
        raise ValueError(f"Unknown export format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    if out.is_dir():
        out.rmdir()
    tmp.rename(out)
    return out


def _export_gguf(run_dir: Path, out: Path, quant: str, log: Callable[[str], None],
                 step: Callable[[str], None] = lambda _: None) -> Path:
    """Merge into a temporary folder beside `out`, write the GGUF and Modelfile, and keep them only if they
    verify: a GGUF that disagrees with the merged model would fail far from here, in someone's Ollama."""
    from studio.gguf_export import OUTTYPES, GGUFError, describe, export_gguf, modelfile_for, verify_gguf

    if out.suffix.lower() != ".gguf":
        raise ValueError(f"A GGUF export is one file; give it a name ending in .gguf, not {out.name}.")
    if quant not in OUTTYPES:
        raise ValueError(f"Unknown GGUF type '{quant}'. Use one of: {', '.join(OUTTYPES)}.")
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new file name.")
    if runs.final_weights(run_dir) is None:
        raise FileNotFoundError(f"Run {run_dir.name} has no final weights yet; wait for it to finish.")
    out.parent.mkdir(parents=True, exist_ok=True)
    system_prompt = load(run_dir / "recipe.yaml").data.system_prompt
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".studio-merge-") as tmp:
        merged = export_run(run_dir, "merged", Path(tmp) / "merged", step=step)
        step(f"writing the {quant} GGUF file and its Ollama Modelfile")
        export_gguf(merged, out, quant, system_prompt=system_prompt)
        step("checking the GGUF file against the merged model")
        report = verify_gguf(out, merged, outtype=quant)
    log(describe(report))
    if not report["ok"]:
        out.unlink(missing_ok=True)
        modelfile_for(out).unlink(missing_ok=True)
        raise GGUFError(describe(report) + " The file was not kept; please report this with the run's recipe.yaml.")
    return out
