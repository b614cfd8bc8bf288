"""Chat and evaluation speed as the app serves them, next to llama.cpp on the same GGUF file.

    python bench/chat_speed.py [--tokens 96] [--prompts 3] [--questions 80] [--rank 64]

Streaming: the app's own path (`ChatModel.stream` on a thread of its own, the model loaded on another, as a web
handler does) on the default model with a LoRA adapter (all linear layers, random non-zero weights: speed does not
depend on what was learned), first token and tokens/s of each side, greedy, medians. Studio's paths, as far as
this machine has them: llama.cpp (`studio/kernels/gguf_decode.py`, what chat uses when llama-cpp-python is
installed), torch's 4-bit / bf16-copy decoding (`studio/kernels/fast_decode.py`) and plain fp32. The llama.cpp
column is llama-cpp-python's own `Llama.generate` on the same Q4_1 file, with the same adapter as a GGUF LoRA for
the tuned side: what a user gets from llama.cpp or Ollama on that file.

Evaluation: the held-out questions of `bench/learning/heldout.csv` answered by both sides
(`ChatModel.generate_batch`, 48 new tokens, as the evaluation table asks), questions per second, and llama.cpp
answering them one at a time. The share of greedy replies identical to fp32's is printed for each path.
Ends with one JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as app.py: see studio.hardware.on_fresh_thread

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTS = [
    "Explain in detail how a bicycle gear system works and why it helps riders on hills.",
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "What should I pack for a week-long hiking trip in the mountains?",
    "Describe the water cycle to a ten-year-old.",
    "Give me three tips for writing a clear email to a busy manager.",
]
FAST_ATTRS = ("_bf16_weight", "_lean")


def adapter_dir(rank: int = 64, scale: float = 0.01) -> Path:
    """A LoRA adapter on the default model with random weights, saved like a run's."""
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.models import load_model

    torch.manual_seed(0)
    model = load_model("default", "lora", log=lambda _: None)
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                                            init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.mul_(scale)  # small, as after training, so replies stay text
    path = Path(tempfile.mkdtemp(prefix="chat-bench-")) / "adapter"
    peft.save_pretrained(path)
    return path


def time_side(chat, tuned: bool, prompts: list[str], tokens: int) -> tuple[list[float], list[float], list[str]]:
    firsts, rates, texts = [], [], []
    for prompt in prompts:
        start, first, text = time.perf_counter(), None, ""
        for partial in chat.stream(prompt, tuned=tuned, max_new_tokens=tokens):
            first, text = first or time.perf_counter() - start, partial
        total = time.perf_counter() - start
        n = len(chat.tokenizer(text, add_special_tokens=False)["input_ids"])
        firsts.append(first)
        rates.append((n - 1) / (total - first))
        texts.append(text)
    return firsts, rates, texts


def llama_cpp_side(llm, chat, prompts: list[str], tokens: int, stop: set[int]):
    """llama-cpp-python's own loop: the same prompt tokens, greedy, first token and tokens/s."""
    firsts, rates, texts = [], [], []
    for prompt in prompts:
        ids = chat._inputs(prompt, None)["input_ids"][0].tolist()
        llm.reset()
        start, first, out = time.perf_counter(), None, []
        for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            if token in stop or len(out) == tokens:
                break
            first = first or time.perf_counter() - start
            out.append(token)
        total = time.perf_counter() - start
        firsts.append(first)
        rates.append((len(out) - 1) / (total - first))
        texts.append(chat.tokenizer.decode(out, skip_special_tokens=True))
    return firsts, rates, texts


def torch_path(chat, fp32: bool) -> None:
    """Chat on torch from here on: llama.cpp off, and with `fp32` every fast decoding path off too."""
    chat.llama = None
    if fp32:
        for module in chat.model.modules():
            for attr in FAST_ATTRS:
                if hasattr(module, attr):
                    delattr(module, attr)
                    vars(module).pop("forward", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--questions", type=int, default=80, help="held-out questions for the evaluation timing")
    parser.add_argument("--rank", type=int, default=64, help="the adapter's rank (the default for small uploads)")
    args = parser.parse_args()

    from studio.chat import ChatModel
    from studio.hardware import cpu_threads, on_fresh_thread
    from studio.kernels import gguf_decode
    from studio.models import default_gguf

    prompts = PROMPTS[: args.prompts]
    with open(REPO / "bench" / "learning" / "heldout.csv", encoding="utf-8") as f:
        questions = [row["question"] for row in csv.DictReader(f)][: args.questions]
    weights = on_fresh_thread(lambda: adapter_dir(args.rank))
    start = time.perf_counter()
    chat = ChatModel(weights=weights)  # on this long-lived thread, as a web handler loads it
    print(f"chat model loaded in {time.perf_counter() - start:.1f} s; replies from {chat.engine}; "
          f"adapter r {args.rank}; {cpu_threads()} threads")
    chat.stream(prompts[0], tuned=False, max_new_tokens=4).__next__()  # warm-up
    result, texts, answers, eval_s = {"engine": chat.engine, "rank": args.rank}, {}, {}, {}
    paths = (["llama.cpp"] if chat.llama is not None else []) + ["torch", "fp32"]
    for path in paths:
        if path != "llama.cpp":
            torch_path(chat, fp32=path == "fp32")
        for side in ("base", "tuned"):
            firsts, rates, texts[path, side] = time_side(chat, side == "tuned", prompts, args.tokens)
            result[f"{path}_{side}_tok_s"] = round(statistics.median(rates), 1)
            result[f"{path}_{side}_first_s"] = round(statistics.median(firsts), 3)
            print(f"studio {path:9} {side:6} first token {statistics.median(firsts):.3f} s   "
                  f"{statistics.median(rates):6.1f} tokens/s   (per prompt: {', '.join(f'{r:.1f}' for r in rates)})")
        if path != "fp32" and args.questions:  # batched evaluation is fp32 on torch whichever decoding path
            begin = time.perf_counter()
            for side in ("base", "tuned"):
                answers[path, side] = chat.generate_batch(questions, tuned=side == "tuned", max_new_tokens=48)
            eval_s[path] = time.perf_counter() - begin
            result[f"{path}_eval_q_s"] = round(2 * len(questions) / eval_s[path], 2)
            print(f"studio {path:9} evaluation: {len(questions)} questions x 2 sides in {eval_s[path]:.1f} s "
                  f"({2 * len(questions) / eval_s[path]:.2f} questions/s)")

    if gguf_decode.available():
        from llama_cpp import Llama

        from studio.chat import _adapter_gguf

        base = Llama(model_path=str(default_gguf()), n_threads=cpu_threads(), n_ctx=4096, verbose=False)
        tuned = Llama(model_path=str(default_gguf()), n_threads=cpu_threads(), n_ctx=4096, verbose=False,
                      lora_path=str(_adapter_gguf(weights)))
        llama_eval = 0.0
        for side, llm in (("base", base), ("tuned", tuned)):
            firsts, rates, texts["llama.cpp alone", side] = llama_cpp_side(llm, chat, prompts, args.tokens, chat.stop)
            result[f"llamacpp_{side}_tok_s"] = round(statistics.median(rates), 1)
            result[f"llamacpp_{side}_first_s"] = round(statistics.median(firsts), 3)
            print(f"llama.cpp alone  {side:6} first token {statistics.median(firsts):.3f} s   "
                  f"{statistics.median(rates):6.1f} tokens/s   (per prompt: {', '.join(f'{r:.1f}' for r in rates)})")
            begin = time.perf_counter()
            llama_cpp_side(llm, chat, questions, 48, chat.stop)
            llama_eval += time.perf_counter() - begin
        result["llamacpp_one_by_one_eval_q_s"] = round(2 * len(questions) / llama_eval, 2)
        print(f"llama.cpp alone  evaluation one question at a time: {llama_eval:.1f} s "
              f"({2 * len(questions) / llama_eval:.2f} questions/s)")
        if "llama.cpp" in paths:
            for side in ("base", "tuned"):
                result[f"vs_llamacpp_{side}"] = round(result[f"llama.cpp_{side}_tok_s"]
                                                      / result[f"llamacpp_{side}_tok_s"], 2)
    if "torch" in eval_s and "llama.cpp" in eval_s:
        result["eval_speedup_vs_torch"] = round(eval_s["torch"] / eval_s["llama.cpp"], 2)
    for path in paths[:-1]:
        same = sum(a == b for side in ("base", "tuned") for a, b in zip(texts[path, side], texts["fp32", side],
                                                                        strict=True))
        same_eval = sum(a == b for side in ("base", "tuned") for a, b in zip(answers.get((path, side), []),
                                                                             answers.get(("torch", side), []),
                                                                             strict=False))
        result[f"{path}_identical_to_fp32"] = f"{same}/{2 * len(prompts)} chat, {same_eval}/{2 * len(questions)} eval"
        print(f"{path}: greedy replies identical to fp32's: {same} of {2 * len(prompts)} chat replies, "
              f"{same_eval} of {2 * len(questions)} evaluation answers")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
