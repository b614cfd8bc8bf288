# Patches TRL's private `trl.trainer.utils._ChunkedLogProbFunction` (trl.kernels.ChunkedLogProbFunction,
# whose `apply` signature DenseLogProbs copies) and `trl.trainer.utils._use_triton` (from
# trl.kernels.chunked_logprob), both read by TRL's fused LM head at each loss.
# Checked against torch 2.13.0, trl 1.16.0.
"""TRL's fused LM-head loss, made cheap on the CPU.

TRL's SFTTrainer scores each token through a "fused LM head" (`trl.trainer.utils.add_fused_lm_head`):
it never builds the [tokens, vocabulary] logits, projecting them in tiles and folding each tile into
running log-sum-exp statistics. That saves GPU memory on long sequences, but on the CPU its torch
fallback makes about ten elementwise passes over every tile in the forward pass, recomputes the tiles
in the backward pass and accumulates the input gradient with an fp32 matmul (no AMX). For a small
model on Q&A data the whole logits of the trained positions are a few tens of MB, so Studio builds
them at once: one bf16 matmul, one fp32 log-softmax, a gather, and autograd's own backward. Same
log-probabilities and gradients to float rounding (tests/test_train.py), half the time of the LM
head; about 10% of a step of the default model (bench/train_speed.py).

TRL also scores prompt positions on the CPU, to keep tile shapes static for graph compilers; eager
CPU training has no such need, and in Q&A data most positions are prompt.
"""

from __future__ import annotations

import torch

# Past this many logits (tokens x vocabulary, 4 bytes each, about three copies alive at once) TRL's tiled
# function takes over again: 32M is ~400 MB at peak, under 1 s of a CPU step of any model that fits.
DENSE_LIMIT = 32 * 2**20


class DenseLogProbs:
    """Drop-in for `trl.kernels.ChunkedLogProbFunction.apply` on the CPU: the full logits of the scored tokens."""

    chunked = None  # TRL's own function, for everything this one does not cover

    @classmethod
    def apply(cls, hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping=None,
              logit_scale=1.0, outputs=("log_probs",)):
        extra = set(outputs) - {"log_probs", "entropy", "is_top1"}
        if (hidden.device.type != "cpu" or final_logit_softcapping is not None or extra
                or hidden.shape[0] * weight.shape[0] > DENSE_LIMIT):
            return cls.chunked.apply(hidden, weight, bias, targets, temperature, chunk_size,
                                     final_logit_softcapping, logit_scale, outputs)
        # Under autocast the projection runs in bf16 (AMX where there is one); the softmax always in fp32.
        logits = torch.nn.functional.linear(hidden, weight, bias).float()
        if logit_scale / temperature != 1.0:
            logits = logits * (logit_scale / temperature)
        log_p = torch.log_softmax(logits, dim=-1)
        log_probs = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        entropy = is_top1 = None
        with torch.no_grad():  # logged only; TRL's compute_loss reads both
            if "entropy" in outputs:
                entropy = -(log_p.exp() * log_p).sum(-1)  # a bmm or an argmax here costs 4x the whole sum
            if "is_top1" in outputs:
                is_top1 = log_probs >= log_p.amax(-1)  # a tie with another token counts as a hit; TRL's does not
        return log_probs, entropy, None, None, is_top1


def use_dense_cpu_log_probs() -> None:
    """Point TRL's fused LM head at DenseLogProbs and at trained positions only, on the CPU (idempotent)."""
    import trl.trainer.utils as trl_utils

    if getattr(trl_utils, "_ChunkedLogProbFunction", None) not in (None, DenseLogProbs):
        DenseLogProbs.chunked = trl_utils._ChunkedLogProbFunction
        trl_utils._ChunkedLogProbFunction = DenseLogProbs
    original = getattr(trl_utils, "_use_triton", None)
    if original is not None and not getattr(original, "_studio", False):

        def compact(device):
            return device.type == "cpu" or original(device)

        compact._studio = True
        trl_utils._use_triton = compact
