# Uses torch's private CPU kernels `torch._convert_weight_to_int4pack_for_cpu` and
# `torch._weight_int4pack_mm_for_cpu`, and mkldnn internals (`torch.ops.mkldnn._reorder_linear_weight`,
# `torch.ops.mkldnn._linear_pointwise`); replaces `forward` on nn.Linear and PEFT LoRA layers, reading
# PEFT internals (lora_A, lora_B, scaling, lora_variant, use_dora, merged, active_adapters).
# A layer whose kernel fails a self-test at switch-over stays as it was.
# Checked against torch 2.13.0, peft 0.21.2.
"""Streaming chat decodes a 4-bit model from its own 4-bit weights.

The default model ships as a Q4_1 GGUF: every linear weight is q·d + m, with a 4-bit q in groups of
32 along the input. Studio converts it to fp32 once, for training. Decoding one token at a time is
bound by reading the weights, though: 540 MB a token in fp32 at ~24 GB/s on two cores caps chat at
~43 tokens/s before any other work. torch's int4 CPU kernel (`_weight_int4pack_mm_for_cpu`) reads the
same weights as 4-bit groups, an eighth of the bytes, with bf16 activations and bf16 group scales,
the precision the model was trained in (bf16 autocast on bf16 frozen weights). A layer switches only
where its weights are exactly 4-bit groups, so every other model (and a fully fine-tuned one) stays
as it was; the LoRA adapter itself stays fp32. Only single-token steps inside `decoding()` take this
path: prompts (prefill) and batched evaluation keep fp32, where the kernel is no faster. On the
default model a token takes about 40% less time (bench/README.md, "Chat").

A CPU without AVX512-BF16 or AMX runs the int4 kernel no faster than fp32 (it is compute bound there),
but a bf16 gemv still reads half of fp32's bytes: on a 2-core AVX2 machine the default model decodes
a token from bf16 copies in under half of fp32's time. There every linear layer of any model decodes
from a bf16 copy of its weight, where a quick measurement at load says it pays.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager

import torch

from studio import hardware

GROUP = 32
_state = threading.local()


@contextmanager
def decoding():
    """Single-token steps of this thread may use the 4-bit kernels."""
    before = getattr(_state, "on", False)
    _state.on = True
    try:
        yield
    finally:
        _state.on = before


def four_bit_groups(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(packed int4 weight, [groups, out, 2] bf16 scales and zeros) if `weight` is exactly 4-bit groups, else None.

    Q4_1 sets each group's step to (max - min) / 15 and its offset to the min, so both ends are in every
    group and they give back the step and offset exactly (to fp32 rounding, checked).
    """
    out_features, in_features = weight.shape
    if (in_features % GROUP or out_features % 16 or not hasattr(torch, "_weight_int4pack_mm_for_cpu")
            or not hasattr(torch, "_convert_weight_to_int4pack_for_cpu")):
        return None
    w = weight.detach().float().reshape(out_features, in_features // GROUP, GROUP)
    low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    step = (high - low) / 15
    q = ((w - low) / torch.where(step > 0, step, 1)).round_().clamp_(0, 15)
    if (q * step + low - w).abs().max() > 1e-5 * w.abs().max().clamp(min=1e-30):
        return None
    packed = torch._convert_weight_to_int4pack_for_cpu(q.reshape(out_features, in_features).to(torch.int32), 1)
    # The kernel computes (q - 8) * scale + zero.
    scales_zeros = torch.stack([step.reshape(out_features, -1).t(), (low + 8 * step).reshape(out_features, -1).t()], -1)
    return packed, scales_zeros.contiguous().bfloat16()


def use_four_bit_decoding(model: torch.nn.Module) -> int:
    """Give a 4-bit model's linear layers a single-token path; the count of layers switched.

    Besides the 4-bit layers: a LoRA adapter on them skips PEFT's per-call bookkeeping (two small
    matmuls, its scale folded into B once), and the LM head, 8-bit in the GGUF and so not 4-bit groups,
    reads a bf16 copy packed for oneDNN (half the bytes of fp32). On a CPU without bf16 instructions
    any model's linear layers decode from bf16 copies instead, where that measures faster.
    """
    if next(model.parameters()).device.type != "cpu":
        return 0
    if not hardware.cpu_has_bf16():
        return _use_bf16_decoding(model)
    switched = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or hasattr(module, "_four_bit"):
            continue
        found = four_bit_groups(module.weight)
        if found is None:
            if switched == 0 and module.weight.shape[0] * module.weight.shape[1] > 2**18:
                return 0  # the first large layer already says this is not a 4-bit model
            continue
        module._four_bit = found
        module.forward = types.MethodType(_forward, module)
        if switched == 0 and not _agrees(module):
            del module.forward, module._four_bit
            return 0  # this torch's kernel is missing or computes something else: stay on fp32
        switched += 1
    if not switched:
        return 0
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is torch.nn.Linear and not hasattr(head, "_four_bit") and _packed_bf16_available():
        head._bf16_packed = torch.ops.mkldnn._reorder_linear_weight(head.weight.detach().bfloat16(), 1)
        head.forward = types.MethodType(_forward, head)
    for module in model.modules():
        _lean_lora(module)
    return switched


def _use_bf16_decoding(model: torch.nn.Module) -> int:
    """Single-token steps of every linear layer from a bf16 copy of its weight, if that is faster here."""
    import psutil

    linears = [m for name, m in model.named_modules()
               if type(m) is torch.nn.Linear and "forward" not in vars(m) and ".lora_" not in name]
    copies = sum(2 * m.weight.numel() for m in linears)
    if not linears or copies > psutil.virtual_memory().available // 4:
        return 0  # the copies must not crowd out a training job or the other side's model
    if not _bf16_gemv_pays(max(linears, key=lambda m: m.weight.numel()).weight):
        return 0
    for module in linears:
        module._bf16_weight = module.weight.detach().bfloat16()
        module.forward = types.MethodType(_forward, module)
    for module in model.modules():
        _lean_lora(module)
    return len(linears)


_bf16_pays: dict[tuple, bool] = {}


def _bf16_gemv_pays(weight: torch.Tensor) -> bool:
    """Whether one token through `weight` takes at most 3/4 of fp32's time in bf16 (once per shape and thread count).

    Without bf16 instructions torch converts on the fly; where memory is fast and cores slow that can cost
    more than the bytes it saves, so it is measured rather than assumed (~0.1 s).
    """
    import time

    key = (tuple(weight.shape), torch.get_num_threads())
    if key not in _bf16_pays:
        x = torch.randn(1, weight.shape[1])
        w32, w16, x16 = weight.detach().float(), weight.detach().bfloat16(), x.bfloat16()

        def best(w, v):
            times = []
            with torch.no_grad():
                for _ in range(6):
                    start = time.perf_counter()
                    torch.nn.functional.linear(v, w)
                    times.append(time.perf_counter() - start)
            return min(times[1:])

        try:
            _bf16_pays[key] = best(w16, x16) <= 0.75 * best(w32, x)
        except RuntimeError:
            _bf16_pays[key] = False
    return _bf16_pays[key]


def _agrees(module: torch.nn.Linear) -> bool:
    """The 4-bit path runs and gives the layer's own output to bf16 precision (the kernels are private torch ops)."""
    x = torch.randn(1, 1, module.in_features, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), decoding():
            fast = module(x)
    except (RuntimeError, NotImplementedError):
        return False
    exact = torch.nn.functional.linear(x, module.weight, module.bias)
    return bool(torch.allclose(fast, exact, atol=0.02 * exact.abs().max().item() + 1e-6))


def _packed_bf16_available() -> bool:
    return hasattr(torch.ops.mkldnn, "_linear_pointwise") and torch.backends.mkldnn.is_available()


def _lean_lora(layer: torch.nn.Module) -> None:
    """A LoRA layer over a 4-bit or bf16-copy layer: its adapter as two plain matmuls on single-token steps."""
    base = getattr(layer, "base_layer", None)
    if not (hasattr(base, "_four_bit") or hasattr(base, "_bf16_weight")) or not hasattr(layer, "lora_A") \
            or len(layer.lora_A) != 1:
        return
    (name,) = layer.lora_A.keys()
    if getattr(layer, "lora_variant", {}) or getattr(layer, "use_dora", {}).get(name):
        return  # DoRA and other variants keep PEFT's own path
    with torch.no_grad():
        a_t = layer.lora_A[name].weight.detach().t().contiguous()
        b_t = (layer.lora_B[name].weight.detach() * layer.scaling[name]).t().contiguous()
    layer._lean = (name, a_t, b_t)
    layer.forward = types.MethodType(_lora_forward, layer)


def _single_token(x: torch.Tensor) -> bool:
    return getattr(_state, "on", False) and x.numel() == x.shape[-1] and not torch.is_grad_enabled()


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if not _single_token(x):
        return torch.nn.functional.linear(x, self.weight, self.bias)
    flat = x.reshape(1, -1).to(torch.bfloat16)
    if hasattr(self, "_four_bit"):
        packed, scales_zeros = self._four_bit
        y = torch._weight_int4pack_mm_for_cpu(flat, packed, GROUP, scales_zeros)
    elif hasattr(self, "_bf16_weight"):
        y = torch.nn.functional.linear(flat, self._bf16_weight)
    else:
        y = torch.ops.mkldnn._linear_pointwise(flat, self._bf16_packed, None, "none", [], "")
    y = y.to(x.dtype).view(*x.shape[:-1], -1)
    return y if self.bias is None else y + self.bias


def _lora_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    name, a_t, b_t = self._lean
    if (args or kwargs or not _single_token(x) or self.merged or self.disable_adapters
            or list(self.active_adapters) != [name]):
        return type(self).forward(self, x, *args, **kwargs)
    y = self.base_layer(x)
    flat = x.reshape(1, -1).to(a_t.dtype)
    return torch.addmm(y.reshape(1, -1), flat @ a_t, b_t).to(y.dtype).view_as(y)
