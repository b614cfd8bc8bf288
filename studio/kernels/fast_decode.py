# Replaces `forward` on nn.Linear and PEFT LoRA layers, reading PEFT internals (lora_A, lora_B, scaling,
# lora_variant, use_dora, merged, active_adapters). Public torch ops only.
# Checked against torch 2.13.0, peft 0.21.2.
"""Single-token chat steps on torch read bf16 copies of the weights, where that is measured to be faster.

Decoding one token at a time is bound by reading the weights: a bf16 copy is half of fp32's bytes. On a 2-core
AVX2 machine the default model decodes a token from bf16 copies in under half of fp32's time; where memory is
fast and bf16 is converted on the fly it can cost more, so a quick measurement at load decides (`_bf16_gemv_pays`).
Only single-token steps inside `decoding()` take this path: prompts and batched evaluation stay fp32.

This is the torch fallback. The default model's chat runs on llama.cpp (studio/kernels/gguf_decode.py), which
retired the 4-bit path that used to be here on torch's private int4 and mkldnn kernels.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager

import torch

_state = threading.local()


@contextmanager
def decoding():
    """Single-token steps of this thread may use the bf16 copies."""
    before = getattr(_state, "on", False)
    _state.on = True
    try:
        yield
    finally:
        _state.on = before


def use_fast_decoding(model: torch.nn.Module) -> int:
    """Give a CPU model's linear layers a bf16-copy path for single tokens where it pays; the count switched.

    A LoRA adapter on them skips PEFT's per-call bookkeeping on those steps (two small matmuls, its scale folded
    into B once).
    """
    import psutil

    if next(model.parameters()).device.type != "cpu":
        return 0
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


def _lean_lora(layer: torch.nn.Module) -> None:
    """A LoRA layer over a bf16-copy layer: its adapter as two plain matmuls on single-token steps."""
    base = getattr(layer, "base_layer", None)
    if not hasattr(base, "_bf16_weight") or not hasattr(layer, "lora_A") \
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
    y = torch.nn.functional.linear(x.reshape(1, -1).to(torch.bfloat16), self._bf16_weight)
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
