"""Training speed, honestly: a plain TRL + PEFT script (fp32, then bf16) against Studio's own path.

    python bench/train_speed.py [--epochs 3] [--data assets/sample_qa.csv]

Each configuration runs in its own process (so peak RSS is its own) on the same data with identical
hyperparameters: the default model, LoRA r=16 alpha=32 on all linear layers, lr 1e-3, batch 8,
max length 256, answer-only loss. Tokens are the data's real (non-pad) tokens as the Trainer counts
them, the system prompt of every example included (Studio computes it once per packed row, and counts
it as the plain script does, so tokens/s is the rate at which the same data trains).
MFU = tokens the model ran on per second x 4 x parameters / measured matmul peak (LoRA: forward 2N +
input-gradient backward 2N FLOP per token; the adapter's own weight gradients are negligible).
On a CPU without bf16 instructions the plain bf16 script is left out (emulated bf16 would take hours)
and MFU is given against the fp32 peak only. Prints a table, then one JSON line.
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
HP = {"r": 16, "alpha": 32, "lr": 1e-3, "batch": 8, "max_length": 256, "dropout": 0.0}


def matmul_peak(dtype_name: str, seconds: float = 3.0) -> float:
    """Best FLOP/s of square matmuls in this process, the ceiling MFU is measured against."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_plain(data: str, epochs: float, bf16: bool) -> dict:
    """What a user writes from the TRL docs: prompt-completion data, SFTTrainer, a LoraConfig."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from studio.data import load_data
    from studio.models import ensure_default_model

    path = str(ensure_default_model(log=lambda _: None))
    rows = [{"prompt": [{"role": "user", "content": e.question}],
             "completion": [{"role": "assistant", "content": e.answer}]} for e in load_data(data).examples]
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    out = tempfile.mkdtemp(prefix="plain-")
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=out, num_train_epochs=epochs, learning_rate=HP["lr"],
                       per_device_train_batch_size=HP["batch"], max_length=HP["max_length"], bf16=bf16,
                       use_cpu=True, logging_steps=1, save_strategy="no", report_to="none", seed=42,
                       include_num_input_tokens_seen="non_padding", disable_tqdm=True),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=HP["r"], lora_alpha=HP["alpha"], lora_dropout=HP["dropout"],
                               target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens": trainer.state.num_input_tokens_seen, "seconds": seconds, "final_loss": losses[-1],
            "params": sum(p.numel() for p in model.parameters())}


def run_studio(data: str, epochs: float) -> dict:
    """Studio's own training path: the function the UI and the CLI call."""
    from studio.recipe import apply_overrides, load
    from studio.runs import read_metrics, read_status
    from studio.train import train

    recipe = apply_overrides(load(REPO / "recipes" / "smollm2_135m_lora_cpu.yaml"), [
        f"training.epochs={epochs}", f"training.learning_rate={HP['lr']}", f"training.batch_size={HP['batch']}",
        f"method.r={HP['r']}", f"method.alpha={HP['alpha']}", f"data.max_length={HP['max_length']}",
        "data.eval_size=0", "training.save_steps=100000",
        "training.lr_scheduler=linear", "training.warmup_ratio=0",  # TRL's defaults, as in the plain script
        # The same data and LoRA dropout as the plain script: no question rewrites or forms, no general answers.
        "data.paraphrases=0", "data.question_forms=0", "data.replay=0", f"method.dropout={HP['dropout']}",
    ])
    run_dir = Path(tempfile.mkdtemp(prefix="studio-"))
    train(recipe, data, run_dir, log=lambda _: None)
    status = read_status(run_dir)
    if status.get("state") != "done":
        raise SystemExit(f"studio run {status.get('state')}: {status.get('message')}")
    rows = [m for m in read_metrics(run_dir) if "loss" in m]
    # What the Model tab would have promised for this recipe and data, to hold against the measurement.
    from studio.data import load_data, shared_prefix_length, token_lengths
    from studio.estimate import estimate
    from studio.models import load_tokenizer

    tokenizer = load_tokenizer(recipe.model.base, log=lambda _: None)
    guess = estimate(recipe, token_lengths(tokenizer, load_data(data).examples, recipe.data.system_prompt),
                     shared_prefix_length(tokenizer, recipe.data.system_prompt))
    return {"tokens": rows[-1]["tokens"], "tokens_computed": rows[-1].get("tokens_computed"),
            "seconds": status["train_seconds"], "final_loss": rows[-1]["loss"],
            "params": status["total_params"], "estimate_seconds": guess.seconds,
            "estimate_mb": (guess.memory_bytes or 0) / 2**20}


def child(which: str, data: str, epochs: float) -> None:
    result = run_studio(data, epochs) if which == "studio" else run_plain(data, epochs, bf16=which == "trl_bf16")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "sample_qa.csv"))
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--only", choices=["trl_fp32", "trl_bf16", "studio"], action="append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.epochs)
        return 0

    peaks = {name: matmul_peak(name) for name in ("float32", "bfloat16")}
    print(f"matmul peak on {os.cpu_count()} cores: fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s")
    from studio.hardware import bf16_supported

    fast_bf16 = bf16_supported()
    runs_asked = args.only or ["trl_fp32", "trl_bf16", "studio"]
    if not fast_bf16 and not args.only:
        runs_asked.remove("trl_bf16")
        print("no bf16 instructions on this CPU (no AVX512-BF16 or AMX): bf16 matmuls are emulated, so the plain "
              "bf16=True script would run for hours and is left out (--only trl_bf16 runs it anyway); "
              "Studio trains in fp32 here")
    results = {}
    for which in runs_asked:
        proc = subprocess.run([sys.executable, __file__, "--child", which, "--data", args.data,
                               "--epochs", str(args.epochs)], capture_output=True, text=True, cwd=REPO)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:])
            return 1
        r = json.loads(line[7:])
        r["tok_s"] = r["tokens"] / r["seconds"]
        # Model FLOPs of the tokens the model ran on: with a shared system prompt (Studio) fewer than the data's.
        flops = (r.get("tokens_computed") or r["tokens"]) / r["seconds"] * 4 * r["params"]
        r["mfu_fp32"], r["mfu_bf16"] = flops / peaks["float32"], flops / peaks["bfloat16"]
        results[which] = r
        bf16_mfu = f" / {100 * r['mfu_bf16']:.0f}% of bf16 peak" if fast_bf16 else ""
        print(f"{which:9} {r['tok_s']:8.0f} tok/s  {r['seconds']:7.1f} s  {r['peak_rss_mb']:7.0f} MB peak RSS  "
              f"final loss {r['final_loss']:.3f}  MFU {100 * r['mfu_fp32']:.0f}% of fp32{bf16_mfu}", flush=True)
    studio = results.get("studio")
    if studio and studio.get("estimate_seconds"):
        off_s = 100 * (studio["estimate_seconds"] / studio["seconds"] - 1)
        off_mb = 100 * (studio["estimate_mb"] / studio["peak_rss_mb"] - 1)
        print(f"Model tab estimate for the studio run: {studio['estimate_seconds']:.1f} s, "
              f"{studio['estimate_mb']:.0f} MB "
              f"(measured {studio['seconds']:.1f} s: {off_s:+.0f}%; {studio['peak_rss_mb']:.0f} MB: {off_mb:+.0f}%)")
    get = lambda k: results.get(k, {}).get("tok_s")  # noqa: E731
    ratio = lambda a, b: round(get(a) / get(b), 2) if get(a) and get(b) else None  # noqa: E731
    print(f"studio / trl fp32: {ratio('studio', 'trl_fp32')}x   studio / trl bf16: {ratio('studio', 'trl_bf16')}x")
    print(json.dumps({
        "studio_tok_s": round(get("studio") or 0, 1), "trl_fp32_tok_s": round(get("trl_fp32") or 0, 1),
        "trl_bf16_tok_s": round(get("trl_bf16") or 0, 1), "ratio_fp32": ratio("studio", "trl_fp32"),
        "ratio_bf16": ratio("studio", "trl_bf16"),
        "mfu_bf16": round(results.get("studio", {}).get("mfu_bf16", 0), 3) if fast_bf16 else None,
        "peak_rss_mb": round(results.get("studio", {}).get("peak_rss_mb", 0)),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
