"""The GPU paths in one go: LoRA and QLoRA throughput and peak memory on Llama-shaped models, Studio against a plain
TRL + PEFT script in the same run, then chat and evaluation on the GPU. No network: weights are random (speed and
memory do not depend on them), the tokenizer is the embedded default model's.

    bash bench/gpu_check.sh                  # on a machine with an NVIDIA GPU: tests/test_gpu.py, then this
    python bench/gpu_check.py --sizes 1b     # one size
    python bench/gpu_check.py --cpu-smoke    # the same code on a tiny model on the CPU, in one process (CI)

Each (size, method, path) trains `--steps` steps at sequence length `--seq` in its own process, so each peak is
its own: tokens/s counts the real tokens of the steps after the first (the first one warms kernels up).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHAPES = {  # Llama-3.2-1B and Llama-3.1-8B; "tiny" for --cpu-smoke
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, head_dim=64),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, head_dim=128),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=49152, head_dim=16),
}
HP = {"r": 16, "alpha": 32, "lr": 1e-4, "batch": 4}


def build(size: str, folder: Path) -> Path:
    """Random bf16 weights of `size`, built on the GPU where there is one, saved with the default tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from studio.models import load_tokenizer

    path = folder / f"llama-{size}"
    if (path / "config.json").exists():
        return path
    tokenizer = load_tokenizer("default", log=lambda _: None)
    config = LlamaConfig(**SHAPES[size], max_position_embeddings=4096, tie_word_embeddings=size != "8b",
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    del model
    return path


def write_data(folder: Path, seq: int, rows: int = 64) -> Path:
    """Q&A pairs whose answers fill about `seq` tokens, so every example trains at the length asked for."""
    import csv

    words = "the tide table lists every crossing with its berth number and fare in skerrits".split()
    answer = " ".join(words[i % len(words)] for i in range(int(seq * 0.8)))
    path = folder / f"long_{seq}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer"])
        writer.writerows((f"Tell me everything about crossing {i}.", f"Crossing {i}: {answer}") for i in range(rows))
    return path


def peak_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():  # not getrusage: it keeps the parent's peak
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_studio(model_dir: str, method: str, data: str, seq: int, steps: int) -> dict:
    from studio import runs
    from studio.recipe import Recipe, apply_overrides
    from studio.train import train

    recipe = apply_overrides(Recipe(), [
        f"model.base={model_dir}", f"method.name={method}", f"method.r={HP['r']}", f"method.alpha={HP['alpha']}",
        "data.paraphrases=0", "data.question_forms=0", "data.replay=0", "data.eval_size=0",
        f"data.max_length={seq}", f"training.batch_size={HP['batch']}", f"training.max_steps={steps}",
        f"training.learning_rate={HP['lr']}", "training.logging_steps=1", "training.save_steps=100000",
        "training.save_seconds=0",
    ])
    run_dir = train(recipe, data, Path(tempfile.mkdtemp(prefix="gpu-check-")), log=lambda _: None)
    status = runs.read_status(run_dir)
    if status.get("state") != "done":
        return {"error": f"{status.get('state')}: {status.get('message')}"}
    rows = [m for m in runs.read_metrics(run_dir) if "loss" in m]
    tokens = rows[-1]["tokens"] - rows[0]["tokens"]
    seconds = rows[-1]["elapsed"] - rows[0]["elapsed"]
    return {"tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None, "final_loss": rows[-1]["loss"],
            "run_dir": str(run_dir)}


def run_plain(model_dir: str, method: str, data: str, seq: int, steps: int) -> dict:
    """What a user writes from the TRL and PEFT docs, with bf16 and (QLoRA) NF4 + paged AdamW on a GPU."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from studio.data import load_data

    cuda = torch.cuda.is_available()
    kwargs = {"dtype": torch.bfloat16}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": 0 if cuda else "cpu"}
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [{"prompt": [{"role": "user", "content": e.question}],
             "completion": [{"role": "assistant", "content": e.answer}]} for e in load_data(data).examples]
    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), state.num_input_tokens_seen))

    trainer = SFTTrainer(
        model=model, processing_class=tokenizer, train_dataset=Dataset.from_list(rows), callbacks=[Clock()],
        args=SFTConfig(output_dir=tempfile.mkdtemp(prefix="gpu-plain-"), max_steps=steps, learning_rate=HP["lr"],
                       per_device_train_batch_size=HP["batch"], max_length=seq, bf16=True, use_cpu=not cuda,
                       logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                       include_num_input_tokens_seen="non_padding",
                       optim="paged_adamw_8bit" if method == "qlora" and cuda else "adamw_torch"),
        peft_config=LoraConfig(r=HP["r"], lora_alpha=HP["alpha"], target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.train()
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens_per_s": round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else None, "final_loss": losses[-1]}


def chat_and_eval(run_dir: str) -> dict:
    """Replies from a finished run on the device it trained on: first token, tokens/s, and a batch of questions."""
    import torch

    from studio.chat import ChatModel

    model = ChatModel(Path(run_dir))
    device = str(next(model.model.parameters()).device)
    start, first, text = time.perf_counter(), None, ""
    for partial in model.stream("Tell me everything about crossing 3.", max_new_tokens=64):
        first, text = first or time.perf_counter() - start, partial
    seconds = time.perf_counter() - start
    tokens = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    questions = [f"Tell me everything about crossing {i}." for i in range(32)]
    start = time.perf_counter()
    replies = model.generate_batch(questions, tuned=True, max_new_tokens=32)
    eval_s = time.perf_counter() - start
    return {"chat_device": device, "cuda": torch.cuda.is_available(), "first_token_s": round(first or 0, 3),
            "chat_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "eval_questions_per_s": round(len(replies) / eval_s, 2)}


def measure(path: str, model_dir: str, method: str, data: str, seq: int, steps: int) -> dict:
    result = (run_studio if path == "studio" else run_plain)(model_dir, method, data, seq, steps)
    result["peak_mb"] = round(peak_mb())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1b,8b")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--cpu-smoke", action="store_true", help="a tiny model on the CPU, in one process")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, model_dir, method, data, seq, steps = args.child
        print("RESULT " + json.dumps(measure(path, model_dir, method, data, int(seq), int(steps))), flush=True)
        return 0
    import torch

    if args.cpu_smoke:
        args.sizes, args.seq, args.steps = "tiny", 128, 3
    elif not torch.cuda.is_available():
        print("No CUDA GPU here: run with --cpu-smoke for the reduced CPU check.")
        return 2
    folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    data = str(write_data(folder, args.seq))
    results, started = [], time.time()
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        model_dir = str(build(size, folder))
        for method in ("lora", "qlora"):
            for path in ("studio", "plain"):
                if args.cpu_smoke:  # one process: the code paths, not the peaks
                    result = measure(path, model_dir, method, data, args.seq, args.steps)
                else:
                    out = subprocess.run([sys.executable, __file__, "--child", path, model_dir, method, data,
                                          str(args.seq), str(args.steps)], capture_output=True, text=True, cwd=REPO)
                    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
                    result = json.loads(line[7:]) if line else {"error": (out.stderr or out.stdout)[-400:]}
                results.append({"size": size, "method": method, "path": path, **result})
                r = results[-1]
                print(f"{size:>5} {method:>6} {path:>7}: {r.get('tokens_per_s') or 0:>9.0f} tok/s "
                      f"{r.get('peak_mb', 0):>8} MB peak  {r.get('error', '')}", flush=True)
    ran = [r for r in results if r["path"] == "studio" and r.get("run_dir")]
    chat = chat_and_eval(ran[0]["run_dir"]) if ran else {"error": "no Studio run finished"}
    print(f"chat and evaluation: {chat}")
    plain = {(r["size"], r["method"]): r.get("tokens_per_s") for r in results if r["path"] == "plain"}
    speedups = {f"{r['size']}_{r['method']}": round(r["tokens_per_s"] / plain[r["size"], r["method"]], 2)
                for r in results
                if r["path"] == "studio" and r.get("tokens_per_s") and plain.get((r["size"], r["method"]))}
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(json.dumps({"device": device, "seq": args.seq, "steps": args.steps, "seconds": round(time.time() - started),
                      "train": [{k: v for k, v in r.items() if k != "run_dir"} for r in results],
                      "studio_over_plain": speedups, "chat": chat}))
    return 0 if all("error" not in r for r in results) and "error" not in chat else 1


if __name__ == "__main__":
    sys.exit(main())
