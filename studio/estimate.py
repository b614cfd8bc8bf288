"""Before a run starts: how many weights it trains, how much memory it needs and how long it takes.

The figures are back-of-the-envelope on purpose; the UI shows them so a user sees "this will take
2 hours and 9 GB" before pressing Start, not to the last percent. Each estimate is one formula with
its constants named below, so the speed benchmark can calibrate them without touching the callers.

- Parameters are counted exactly, without loading any weights: the model is built from its config on
  PyTorch's meta device (shapes only, no memory), the method is applied, and the tensors are counted.
- Memory = weights + gradients and AdamW state of the trainable part + activations + logits + runtime.
- Time = training FLOPs / (this CPU's or GPU's measured matmul speed x an efficiency factor).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from studio.recipe import Recipe

# Values kept per token per layer for the backward pass, in units of the hidden size (attention inputs,
# q/k/v, the MLP's wider intermediate, norms, residuals). About 34 bytes x hidden in 16-bit is the
# classic figure (Korthikanti et al., 2022) for a 4x MLP; ~18 values covers the narrower Llama-style MLPs.
ACTIVATION_VALUES_PER_HIDDEN = 18
# Copies of the logits alive at the peak: the logits, their log-softmax and its gradient.
LOGIT_COPIES = 3
# Python, PyTorch, the tokenizer and the data: what a process holds before the model counts.
RUNTIME_BYTES = 600 * 2**20
# Share of the measured matmul peak that a real training step reaches (small matrices, elementwise
# work, the optimizer step, padding, data loading). Measured once: a 240-step LoRA run on the default
# model (batch 2, ~60-token examples, bf16 autocast) went at ~41 tokens/s on a 2-vCPU box whose fp32
# matmul peak measures ~78 GFLOP/s: 41 x 5.7e8 FLOPs / 78e9 = 0.30. bench/train_speed.py should refine it.
EFFICIENCY = 0.3


@dataclass
class Estimate:
    trainable: int | None
    total: int | None
    memory_bytes: int | None
    seconds: float | None
    note: str = ""  # why a figure is missing, in plain words

    @property
    def trainable_pct(self) -> float | None:
        return 100 * self.trainable / self.total if self.trainable is not None and self.total else None


@functools.lru_cache(maxsize=16)
def _meta_counts(base: str, method: str, r: int, target_modules: str, trust_remote_code: bool
                 ) -> tuple[int, int, dict]:
    """(trainable, total, config dict) for a model built on the meta device: shapes only, no weights read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.models import apply_method, count_parameters, resolve_model
    from studio.recipe import MethodSection

    name = resolve_model(base, log=lambda _: None)
    config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    # QLoRA trains the same adapter as LoRA; only the frozen weights' storage differs (handled in memory).
    section = MethodSection(name="lora" if method == "qlora" else method, r=r, target_modules=target_modules)
    model = apply_method(model, section)
    trainable, total = count_parameters(model)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    shape = {
        "hidden": getattr(text, "hidden_size", 0) or 0,
        "layers": getattr(text, "num_hidden_layers", 0) or 0,
        "vocab": getattr(text, "vocab_size", 0) or 0,
    }
    return trainable, total, shape


@functools.cache
def matmul_flops_per_second() -> float:
    """This machine's fp32 (CPU) or bf16 (GPU) matmul speed, measured once and kept in STUDIO_HOME.

    Kept because a measurement taken while the machine is busy (a run training, the page loading) reads
    low; the best of a few rounds after a warm-up, on a quiet machine, is the one worth keeping.
    """
    import json
    import os

    import torch

    from studio.jobs import jobs
    from studio.paths import studio_home

    machine = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu x{os.cpu_count()}"
    cache = studio_home() / "matmul_flops.json"
    try:
        saved = json.loads(cache.read_text())
        if saved["machine"] == machine:
            return float(saved["flops_per_second"])
    except (OSError, ValueError, KeyError):
        pass
    flops = _measure_matmul()
    if jobs.active() is None:  # only a quiet measurement is worth keeping
        cache.write_text(json.dumps({"machine": machine, "flops_per_second": flops}))
    return flops


def _measure_matmul() -> float:
    import torch

    cuda = torch.cuda.is_available()
    device, dtype, n = ("cuda", torch.bfloat16, 4096) if cuda else ("cpu", torch.float32, 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * 3 / max(best, 1e-9)


def memory_bytes(recipe: Recipe, trainable: int, total: int, shape: dict, gpu: bool) -> int:
    """Peak training memory: weights + grads/AdamW for the trainable part + activations + logits + runtime."""
    method, t, length = recipe.method.name, recipe.training, recipe.data.max_length
    weight_bytes = 0.55 if method == "qlora" else (2 if gpu and method != "full" else 4)
    weights = (total - trainable if method in ("lora", "qlora") else total) * weight_bytes
    weights += trainable * 4 if method in ("lora", "qlora") else 0  # adapters stay fp32
    optimizer = trainable * (4 + 8)  # the gradient plus AdamW's two moments, fp32
    value_bytes = 2 if gpu or t.precision in ("bf16", "fp16") else 4
    tokens = t.batch_size * length
    per_layer = tokens * shape["hidden"] * ACTIVATION_VALUES_PER_HIDDEN * value_bytes
    # With checkpointing only each layer's input is kept, plus one layer recomputed at a time.
    if t.gradient_checkpointing:
        activations = tokens * shape["hidden"] * value_bytes * shape["layers"] + per_layer
    else:
        activations = per_layer * shape["layers"]
    logits = tokens * shape["vocab"] * 4 * LOGIT_COPIES
    return int(weights + optimizer + activations + logits + (0 if gpu else RUNTIME_BYTES))


def training_flops(recipe: Recipe, trainable: int, total: int, token_lengths: list[int]) -> float:
    """Forward 2N, backward 2N for activation gradients plus 2T for weight gradients, per token.

    A full fine-tune is the familiar 6N; LoRA saves the weight gradients of the frozen part (~4N).
    Checkpointing recomputes the forward pass (+2N). Attention's own FLOPs are left out: at the
    sequence lengths of Q&A data they are a few percent. `max_steps` caps the examples seen.
    """
    t = recipe.training
    per_token = 4 * total + 2 * trainable + (2 * total if t.gradient_checkpointing else 0)
    cut = [min(n, recipe.data.max_length) for n in token_lengths]
    examples = len(cut) * t.epochs
    if t.max_steps:
        examples = min(examples, t.max_steps * t.batch_size * t.grad_accum)
    mean = sum(cut) / max(len(cut), 1)
    return per_token * mean * examples


def estimate(recipe: Recipe, token_lengths: list[int] | None = None) -> Estimate:
    """Trainable params, peak memory and training time for `recipe` on this machine.

    `token_lengths` are the training examples' lengths (from `studio.data.token_lengths`); without
    data the time is left out.
    """
    import torch

    try:
        trainable, total, shape = _meta_counts(recipe.model.base.strip(), recipe.method.name, recipe.method.r,
                                               recipe.method.target_modules, recipe.model.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - an estimate must never break the form; say why instead
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Estimate(None, None, None, None, note=f"Cannot read the model's config: {first[:300]}")
    gpu = torch.cuda.is_available()
    memory = memory_bytes(recipe, trainable, total, shape, gpu)
    seconds = None
    if token_lengths:
        flops = training_flops(recipe, trainable, total, token_lengths)
        seconds = flops / (matmul_flops_per_second() * EFFICIENCY)
    return Estimate(trainable, total, memory, seconds)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB", "MB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
