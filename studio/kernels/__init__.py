"""Code that patches or reaches into torch, transformers, PEFT or TRL internals, kept here to check on upgrades.

Each module's opening comment names the private API it uses and the versions it was checked against.

- complete: batched completion loop, with a KV-cache layer (a transformers DynamicLayer) that grows in place.
- fast_decode: single-token chat steps on torch from bf16 weight copies, lean PEFT LoRA forwards (the fallback).
- gguf_decode: chat and evaluation decoded by llama.cpp over the base's GGUF, the adapter switched per request.
- lm_head_loss: TRL's fused LM-head loss swapped for whole logits of trained positions on the CPU.
- packed_attention: per-example attention for padding-free packed rows, registered with transformers.
"""
