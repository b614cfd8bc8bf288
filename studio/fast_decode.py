"""Streaming chat decodes a 4-bit model from its own 4-bit weights.

The default model ships as a Q4_1 GGUF: every linear weight is q·d + m, with a 4-bit q in groups of
32 along the input. Studio converts it to fp32 once, for training. Decoding one token at a time is
bound by reading the weights, though: 540 MB a token in fp32 at ~24 GB/s on two cores caps chat at
~43 tokens/s before any other work. torch's int4 CPU kernel (`_weight_int4pack_mm_for_cpu`) reads the
same weights as 4-bit groups, an eighth of the bytes, with bf16 activations and bf16 group scales,
the precision the model was trained in (bf16 autocast on bf16 frozen weights). A layer switches only
where its weights are exactly 4-bit groups, so every other model (and a fully fine-tuned one) stays
as it was; the LoRA adapter itself stays fp32. Only single-token steps inside `decoding()` take this
path: prompts (prefill) and batched evaluation keep fp32, where the kernel is no faster.
On the default model one token went from 32 to 19 ms (bench/README.md, "Chat").
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager

import torch

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
    if in_features % GROUP or out_features % 16 or not hasattr(torch, "_weight_int4pack_mm_for_cpu"):
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
    """Give every linear layer whose weights are 4-bit groups a 4-bit single-token path; the count switched."""
    if next(model.parameters()).device.type != "cpu":
        return 0
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
        switched += 1
    return switched


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if not (getattr(_state, "on", False) and x.numel() == x.shape[-1] and not torch.is_grad_enabled()):
        return torch.nn.functional.linear(x, self.weight, self.bias)
    packed, scales_zeros = self._four_bit
    y = torch._weight_int4pack_mm_for_cpu(x.reshape(1, -1).to(torch.bfloat16), packed, GROUP, scales_zeros)
    y = y.to(x.dtype).view(*x.shape[:-1], -1)
    return y if self.bias is None else y + self.bias
