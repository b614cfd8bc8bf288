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

from studio import hardware
from studio.jobs import jobs
from studio.paths import studio_home
from studio.recipe import MethodSection, Recipe

# Values kept per token per layer for the backward pass, in units of the hidden size (attention inputs,
# q/k/v, the MLP's wider intermediate, norms, residuals). About 34 bytes x hidden in 16-bit is the
# classic figure (Korthikanti et al., 2022) for a 4x MLP; ~18 values covers the narrower Llama-style MLPs.
ACTIVATION_VALUES_PER_HIDDEN = 18
# Copies of the logits alive at the peak: the logits, their log-softmax and its gradient.
LOGIT_COPIES = 3
# Model FLOPs per second of a real training step as a share of the measured fp32 (CPU) or bf16 (GPU) matmul
# speed, per kind of machine: a step also runs thousands of small ops whose cost does not shrink with the row, and
# CPUs with AVX-512 bf16 but no AMX train in bf16 faster than their fp32 peak. Fitted to bench/train_speed.py and
# bench/learn.py on each kind of build machine (bench/README.md, "How the estimates are calibrated"). GPU: not
# measured yet; 0.3 is a placeholder.
EFFICIENCY = {"cpu-bf16": 0.56, "cpu-bf16-avx512": 1.12, "cpu-fp32": 0.48, "gpu": 0.3}
# NF4 weights with double quantization: 4 bits plus a scale per 64 weights, itself 8-bit per 256 blocks.
QLORA_BYTES = 0.53
# QLoRA on the CPU unpacks every 4-bit weight for each matmul: time over LoRA's on the same run, 1.06-1.27x in
# bench/qlora_cpu.py (135M, 360M and 1.7B models, AVX-512 bf16 CPU).
QLORA_CPU_TIME = 1.2
# Python, torch, transformers, TRL, the tokenizer and the data: what a training process holds before the model
# counts, plus the Trainer's and the allocator's share at the peak; fitted to bench/train_speed.py's peak RSS.
RUNTIME_BYTES_CPU = 600 * 2**20
# Drafting before the first step (data.paraphrases, data.replay) with the 139.4M default model: seconds per
# sampled question rewrite, seconds per general answer, and the fp32 matmul FLOP/s of the machine they were
# measured on (bench/first_loss.py, bench/learn.py); scaled by model size and matmul speed. Drafting runs in the
# training's precision, and in fp32 it is slower than matmul speed predicts, hence a pair per kind of machine.
# GPU: not measured; the bf16 figures stand in. A run that reuses earlier drafts skips this.
DRAFT_TIMES = {"cpu-bf16": (0.045, 0.155, 337e9), "cpu-bf16-avx512": (0.06, 0.125, 184e9),
               "cpu-fp32": (0.22, 0.78, 117e9)}
DRAFT_MODEL_SIZE = 139.4e6
# Share of a Q&A example's positions that carry a label (the answer); only these reach the LM head.
LABELLED_SHARE = 0.5


@dataclass
class Estimate:
    trainable: int | None
    total: int | None
    memory_bytes: int | None
    seconds: float | None
    note: str = ""  # why a figure is missing, in plain words
    prep_seconds: float | None = None  # drafting rewrites and general answers before the first step

    @property
    def trainable_pct(self) -> float | None:
        return 100 * self.trainable / self.total if self.trainable is not None and self.total else None


@functools.lru_cache(maxsize=16)
def _meta_counts(base: str, method: str, r: int, target_modules: str, trust_remote_code: bool
                 ) -> tuple[int, int, dict]:
    """(trainable, total, config dict) for a model built on the meta device: shapes only, no weights read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.models import apply_method, build_lock, count_parameters, resolve_model  # imports torch

    name = resolve_model(base, log=lambda _: None)
    config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    with build_lock, torch.device("meta"):  # never while another thread builds a model (see models.build_lock)
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
        "tied": bool(getattr(config, "tie_word_embeddings", False)),
    }
    return trainable, total, shape


_measured: float | None = None


def matmul_flops_per_second() -> float:
    """This machine's fp32 (CPU) or bf16 (GPU) matmul speed: the best seen, kept in STUDIO_HOME.

    A measurement taken while the machine is busy (a run training, drafting ahead) reads low, so each process
    keeps the first figure measured when neither runs, and the best figure ever seen on this machine wins.
    """
    global _measured
    if _measured is not None:
        return _measured
    import json
    import os

    import torch

    machine = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu x{os.cpu_count()}"
    cache = studio_home() / "matmul_flops.json"
    saved = 0.0
    try:
        data = json.loads(cache.read_text())
        saved = float(data["flops_per_second"]) if data["machine"] == machine else 0.0
    except (OSError, ValueError, KeyError):
        pass
    from studio.predraft import predraft

    # Busy: a run training, or drafting ahead (which begins the moment data loads, as the form is estimated): a
    # figure taken then is used only until a quiet moment measures again, never kept for the process.
    busy = jobs.active() is not None or predraft.running()
    fresh = _measure_matmul() if not busy or not saved else 0.0
    if fresh > saved:
        cache.write_text(json.dumps({"machine": machine, "flops_per_second": fresh}))
    best = max(saved, fresh)
    if not busy:
        _measured = best
    return best


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


def memory_bytes(recipe: Recipe, trainable: int, total: int, shape: dict, gpu: bool,
                 token_lengths: list[int] | None = None, shared_prefix: int = 0) -> int:
    """Peak training memory: weights + grads/AdamW for the trainable part + activations + logits + runtime.

    Batches are padding-free, so a step holds the real tokens of its longest possible batch (from the
    data when known, else batch x max_length), and the LM head sees only labelled positions.
    """
    method, t, length = recipe.method.name, recipe.training, recipe.data.max_length
    bf16 = t.precision in ("bf16", "fp16") or (t.precision == "auto" and _bf16_ok())
    frozen_bytes = 2 if (gpu or bf16) and method != "full" else 4
    frozen = total - trainable if method in ("lora", "qlora", "head") else 0
    if method == "qlora":
        # NF4 with double quantization is ~0.53 bytes a weight, for the linear layers only: the embeddings (and an
        # untied head) stay unquantized, and PEFT's k-bit preparation keeps them in fp32.
        embeddings = min(frozen, shape["vocab"] * shape["hidden"] * (1 if shape.get("tied", True) else 2))
        weights = (frozen - embeddings) * QLORA_BYTES + embeddings * 4
    else:
        weights = frozen * frozen_bytes
    weights += trainable * 4  # trained weights stay fp32
    optimizer = trainable * (4 + 8)  # the gradient plus AdamW's two moments, fp32
    value_bytes = 2 if gpu or bf16 else 4
    if token_lengths:
        longest = sorted((min(n, length) for n in token_lengths), reverse=True)[:t.batch_size]
        tokens = sum(longest) - (0 if gpu else min(shared_prefix, *longest) * (len(longest) - 1))
    else:
        tokens = t.batch_size * length
    per_layer = tokens * shape["hidden"] * ACTIVATION_VALUES_PER_HIDDEN * value_bytes
    # With checkpointing only each layer's input is kept, plus one layer recomputed at a time.
    if t.gradient_checkpointing:
        activations = tokens * shape["hidden"] * value_bytes * shape["layers"] + per_layer
    else:
        activations = per_layer * shape["layers"]
    logits = tokens * LABELLED_SHARE * shape["vocab"] * 4 * LOGIT_COPIES
    # On the CPU the checkpoint file is read whole while loading (fp32 for the default model).
    loading = 0 if gpu else total * 4
    return int(weights + optimizer + activations + logits + (0 if gpu else RUNTIME_BYTES_CPU + loading))


def _cpu_class(recipe: Recipe) -> str:
    t = recipe.training
    if not (t.precision in ("bf16", "fp16") or (t.precision == "auto" and _bf16_ok())):
        return "cpu-fp32"
    return "cpu-bf16" if _amx() else "cpu-bf16-avx512"


def _amx() -> bool:
    return hardware.cpu_has_amx()


def _bf16_ok() -> bool:
    return hardware.bf16_supported()


def training_examples(recipe: Recipe, n: int) -> float:
    """Examples a run trains on, epochs included: the data plus what drafting adds, capped by max_steps."""
    t = recipe.training
    # Question rewrites (data.paraphrases) add about 0.6 of the asked-for copies after filtering (89 of 160 kept
    # on bench/learn.py's data); question forms (data.question_forms) add every one asked for (the wrappers fill
    # up); data.replay adds the base model's general answers, about as long as a Q&A example here.
    rows = n * (1 + 0.6 * recipe.data.paraphrases + recipe.data.question_forms) + 0.9 * recipe.data.replay
    examples = rows * t.epochs
    if t.max_steps:
        examples = min(examples, t.max_steps * t.batch_size * t.grad_accum)
    return examples


def training_flops(recipe: Recipe, trainable: int, total: int, token_lengths: list[int],
                   shared_prefix: int = 0) -> float:
    """Forward 2N, backward 2N for activation gradients plus 2T for weight gradients, per token.

    A full fine-tune is the familiar 6N; LoRA saves the weight gradients of the frozen part (~4N).
    Checkpointing recomputes the forward pass (+2N). Attention's own FLOPs are left out: at the
    sequence lengths of Q&A data they are a few percent. `shared_prefix` tokens of every example but
    one a batch are computed once (CPU packed rows: kernels.packed_attention.SharedPrefixCollator).
    """
    t = recipe.training
    per_token = 4 * total + 2 * trainable + (2 * total if t.gradient_checkpointing else 0)
    cut = [min(n, recipe.data.max_length) for n in token_lengths]
    mean = sum(cut) / max(len(cut), 1)
    mean -= min(shared_prefix, mean) * (1 - 1 / max(t.batch_size, 1))
    return per_token * mean * training_examples(recipe, len(cut))


def estimate(recipe: Recipe, token_lengths: list[int] | None = None, shared_prefix: int = 0) -> Estimate:
    """Trainable params, peak memory and training time for `recipe` on this machine.

    `token_lengths` are the training examples' lengths (from `studio.data.token_lengths`); without
    data the time is left out. `shared_prefix`: the tokens every example starts with
    (`studio.data.shared_prefix_length`), computed once a batch on the CPU.
    """
    import torch

    try:
        trainable, total, shape = _meta_counts(recipe.model.base.strip(), recipe.method.name, recipe.method.r,
                                               recipe.method.target_modules, recipe.model.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - an estimate must never break the form; say why instead
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Estimate(None, None, None, None, note=f"Cannot read the model's config: {first[:300]}")
    gpu = torch.cuda.is_available()
    memory = memory_bytes(recipe, trainable, total, shape, gpu, token_lengths, shared_prefix)
    seconds = None
    if token_lengths:
        flops = training_flops(recipe, trainable, total, token_lengths, 0 if gpu else shared_prefix)
        efficiency = EFFICIENCY["gpu" if gpu else _cpu_class(recipe)]
        seconds = flops / (matmul_flops_per_second() * efficiency)
        if recipe.method.name == "qlora" and not gpu:
            seconds *= QLORA_CPU_TIME
    prep = None
    if token_lengths and (recipe.data.paraphrases or recipe.data.replay):
        per_sample, per_answer, speed = DRAFT_TIMES["cpu-bf16" if gpu else _cpu_class(recipe)]
        local = recipe.data.paraphrases and not recipe.data.rewrite_endpoint.strip()  # an endpoint's time is its own
        samples = len(token_lengths) * (recipe.data.paraphrases + 1) if local else 0
        work = samples * per_sample + recipe.data.replay * per_answer
        prep = work * (total / DRAFT_MODEL_SIZE) * (speed / matmul_flops_per_second())
    return Estimate(trainable, total, memory, seconds, prep_seconds=prep)


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
