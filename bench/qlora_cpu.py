"""QLoRA on the CPU: what 4-bit base weights cost and save against LoRA, and which model sizes fit in how much RAM.

    python bench/qlora_cpu.py                    # both parts (about 10 minutes on 2 cores)
    python bench/qlora_cpu.py --part learn       # LoRA vs QLoRA on the default model, bench/learn.py's walk
    python bench/qlora_cpu.py --part memory --sizes 360m,1.7b

Part 1 (learn): bench/learn.py's default recipe on the embedded model, once with method lora and once with
qlora, each in its own process: tokens/s, training time, peak RSS of training, final loss and held-out hits.
Part 2 (memory): Llama-shaped models of real sizes built from a config with random weights (memory and speed do
not depend on the values), saved once in bf16, then a Studio run of 3 steps on the sample data with each method
in its own process: peak RSS and seconds a step. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# SmolLM2's 360M and 1.7B shapes, and Llama-3.2-3B's (its 128k vocabulary is most of a 3B model's embeddings).
SHAPES = {
    "360m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                 num_key_value_heads=5, vocab_size=49152),
    "1.7b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                 num_key_value_heads=32, vocab_size=49152),
    "3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
               num_key_value_heads=8, vocab_size=128256),
}


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not getrusage: Linux carries the parent's peak across fork and exec,
    so a child started after the parent built a 1.7B model would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def learn_part() -> list[dict]:
    rows = []
    for method in ("lora", "qlora"):
        out = subprocess.run([sys.executable, str(REPO / "bench" / "learn.py"), "--no-forgetting", "--skip-base",
                              "--set", f"method.name={method}"], capture_output=True, text=True, cwd=REPO)
        line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:])
            raise SystemExit(f"bench/learn.py with {method} printed no result")
        rows.append(json.loads(line))
    print(f"\n{'default model, learn.py':26}{'tokens/s':>10}{'train s':>9}{'peak RSS':>10}{'loss':>7}"
          f"{'everyday':>10}{'reworded':>10}")
    for r in rows:
        print(f"{r['method']:26}{r['tokens_per_s'] or 0:>10.0f}{r['train_seconds']:>9.1f}{r['peak_rss_mb']:>7} MB"
              f"{r['final_loss']:>7.3f}{100 * r['tuned_hit_rate']['everyday']:>9.1f}%"
              f"{100 * r['tuned_hit_rate']['reworded']:>9.1f}%")
    return rows


def build(size: str, folder: Path) -> Path:
    """A Llama-shaped model of `size` with random bf16 weights and the default tokenizer, saved once."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from studio.models import load_tokenizer

    path = folder / f"llama-{size}"
    if (path / "config.json").exists():
        return path
    tokenizer = load_tokenizer("default", log=lambda _: None)
    config = LlamaConfig(**SHAPES[size], max_position_embeddings=2048, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def memory_child(model_dir: str, method: str) -> None:
    """One Studio run of 3 steps; prints its peak RSS and seconds a step as a JSON line."""
    from studio import runs
    from studio.paths import SAMPLE_DATA
    from studio.recipe import Recipe, apply_overrides
    from studio.train import train

    recipe = apply_overrides(Recipe(), [
        f"model.base={model_dir}", f"method.name={method}", "data.paraphrases=0", "data.question_forms=0",
        "data.replay=0", "data.eval_size=0", "data.max_length=256", "training.batch_size=8", "training.max_steps=3",
        "training.logging_steps=1", "training.save_steps=1000", "training.save_seconds=0",
    ])
    started = time.time()
    run_dir = train(recipe, SAMPLE_DATA, Path(tempfile.mkdtemp(prefix="qlora-mem-")), log=lambda _: None)
    status = runs.read_status(run_dir)
    steps = [m for m in runs.read_metrics(run_dir) if "loss" in m]
    per_step = (steps[-1]["elapsed"] - steps[0]["elapsed"]) / max(len(steps) - 1, 1) if steps else None
    print(json.dumps({"state": status.get("state"), "message": status.get("message", "")[:300],
                      "peak_rss_mb": round(peak_rss_mb()),
                      "seconds_per_step": round(per_step, 2) if per_step else None,
                      "wall_s": round(time.time() - started, 1), "params": status.get("total_params")}))


def memory_part(sizes: list[str]) -> list[dict]:
    folder = Path(os.environ.get("QLORA_BENCH_MODELS", tempfile.gettempdir())) / "studio-bench-models"
    rows = []
    for size in sizes:
        path = build(size, folder)
        for method in ("lora", "qlora"):
            out = subprocess.run([sys.executable, __file__, "--child", str(path), method], capture_output=True,
                                 text=True, cwd=REPO)
            line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
            result = json.loads(line) if line else {"state": "crashed", "message": out.stderr[-300:]}
            rows.append({"size": size, "method": method, **result})
    print(f"\n{'model (random weights)':26}{'method':>8}{'params':>8}{'peak RSS':>11}{'s/step':>8}  state")
    for r in rows:
        params = f"{r['params'] / 1e9:.2f}B" if r.get("params") else "-"
        print(f"{'Llama-shaped ' + r['size']:26}{r['method']:>8}{params:>8}{r.get('peak_rss_mb', 0):>8} MB"
              f"{r.get('seconds_per_step') or 0:>8.1f}  {r['state']} {r['message'] if r['state'] != 'done' else ''}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["learn", "memory", "all"], default="all")
    parser.add_argument("--sizes", default="360m,1.7b", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory_child(*args.child)
        return 0
    result = {}
    if args.part in ("learn", "all"):
        result["learn"] = learn_part()
    if args.part in ("memory", "all"):
        result["memory"] = memory_part([s.strip() for s in args.sizes.split(",") if s.strip()])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
