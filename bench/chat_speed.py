"""Chat speed as the app serves it: first token and streaming tokens/s, base and tuned side.

    python bench/chat_speed.py [--tokens 96] [--prompts 3]

Runs the app's own path (`ChatModel.stream` on a thread of its own, the model loaded on another
thread, as a web handler does) on the default model with a LoRA adapter (r=16, all linear layers,
random non-zero weights: speed does not depend on what was learned). Each side is timed with the
fast decoding path (studio/kernels/fast_decode.py: 4-bit kernels on CPUs with bf16 instructions, bf16 weight
copies on others) and without it (fp32), and the share of greedy replies
that come out identical on both paths is printed. Ends with one JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as app.py: see studio.hardware.on_fresh_thread

import argparse  # noqa: E402
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


def adapter_dir() -> Path:
    """A LoRA adapter on the default model with random weights, saved like a run's."""
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.models import load_model

    torch.manual_seed(0)
    model = load_model("default", "lora", log=lambda _: None)
    peft = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                            init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.mul_(0.01)  # small, as after training, so replies stay text
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--prompts", type=int, default=3)
    args = parser.parse_args()

    from studio.chat import ChatModel
    from studio.hardware import on_fresh_thread

    prompts = PROMPTS[: args.prompts]
    weights = on_fresh_thread(adapter_dir)
    start = time.perf_counter()
    chat = ChatModel(weights=weights)  # on this long-lived thread, as a web handler loads it
    print(f"chat model loaded in {time.perf_counter() - start:.1f} s; "
          f"{sum(hasattr(m, '_four_bit') for m in chat.model.modules())} layers decode from 4-bit groups, "
          f"{sum(hasattr(m, '_bf16_weight') for m in chat.model.modules())} from bf16 copies")
    chat.stream(prompts[0], tuned=False, max_new_tokens=4).__next__()  # warm-up
    result, texts = {}, {}
    fast = "4bit" if any(hasattr(m, "_four_bit") for m in chat.model.modules()) else "bf16"
    for path in (fast, "fp32"):
        if path == "fp32":  # every fast path off: 4-bit layers, bf16 copies, the packed head, the lean adapters
            for module in chat.model.modules():
                for attr in ("_four_bit", "_bf16_weight", "_bf16_packed", "_lean"):
                    if hasattr(module, attr):
                        delattr(module, attr)
                        vars(module).pop("forward", None)
        for side in ("base", "tuned"):
            firsts, rates, texts[path, side] = time_side(chat, side == "tuned", prompts, args.tokens)
            result[f"{path}_{side}_tok_s"] = round(statistics.median(rates), 1)
            result[f"{path}_{side}_first_s"] = round(statistics.median(firsts), 3)
            print(f"{path:5} {side:6} first token {statistics.median(firsts):.3f} s   "
                  f"{statistics.median(rates):5.1f} tokens/s   (per prompt: {', '.join(f'{r:.1f}' for r in rates)})")
    same = sum(a == b for side in ("base", "tuned") for a, b in zip(texts[fast, side], texts["fp32", side],
                                                                    strict=True))
    result["identical_replies"] = f"{same}/{2 * len(prompts)}"
    print(f"greedy replies identical on both paths: {same} of {2 * len(prompts)}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
