"""The 4-bit decoding path (studio/kernels/fast_decode.py) and the thread policy behind it (on_fresh_thread)."""

from __future__ import annotations

import threading

import pytest
import torch

from studio.hardware import cpu_has_bf16, on_fresh_thread
from studio.kernels.fast_decode import GROUP, decoding, four_bit_groups, use_four_bit_decoding

pytestmark = pytest.mark.skipif(not hasattr(torch, "_weight_int4pack_mm_for_cpu"), reason="no int4 CPU kernel")
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="4-bit decoding is off without AVX512-BF16 or AMX")


def q4_1_weight(out_features: int, in_features: int, seed: int = 0) -> torch.Tensor:
    """A weight as a Q4_1 GGUF dequantizes it: q * d + m per group of 32, both ends of q in every group."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (out_features, in_features // GROUP, GROUP), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15
    d = (torch.rand(out_features, in_features // GROUP, 1, generator=g) * 0.01).half().float()
    m = (-torch.rand(out_features, in_features // GROUP, 1, generator=g) * 0.05).half().float()
    return (q * d + m).reshape(out_features, in_features)


def test_four_bit_weights_are_found_and_others_left_alone():
    assert four_bit_groups(q4_1_weight(64, 96)) is not None
    assert four_bit_groups(torch.randn(64, 96)) is None, "a float weight is never quantized"
    assert four_bit_groups(q4_1_weight(64, 96)[:, :80]) is None, "inputs not a multiple of the group size"


@needs_bf16
def test_single_token_steps_use_the_4bit_kernel_only_inside_decoding():
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 64, bias=True)
    with torch.no_grad():
        linear.weight.copy_(q4_1_weight(64, 96))
    x = torch.randn(1, 1, 96)
    exact = torch.nn.functional.linear(x, linear.weight, linear.bias)
    assert use_four_bit_decoding(torch.nn.Sequential(linear)) == 1
    with torch.no_grad():
        assert torch.equal(linear(x), exact), "outside decoding() the layer is untouched"
        with decoding():
            fast = linear(x)
            prompt = torch.randn(1, 5, 96)
            assert torch.equal(linear(prompt), torch.nn.functional.linear(prompt, linear.weight, linear.bias))
    assert fast.shape == exact.shape and fast.dtype == exact.dtype
    assert not torch.equal(fast, exact), "the 4-bit kernel ran"
    assert torch.allclose(fast, exact, atol=0.02 * exact.abs().max().item()), "bf16 precision, same weights"
    with decoding(), torch.enable_grad():
        assert torch.equal(linear(x), exact), "never while gradients are recorded"


def test_a_float_model_is_not_switched(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    import studio.kernels.fast_decode as fast_decode

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: False)  # no bf16 copies either
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert use_four_bit_decoding(model) == 0
    assert not any(hasattr(m, "_four_bit") for m in model.modules())


def test_on_fresh_thread_returns_results_and_raises_errors_here():
    caller = threading.get_ident()
    assert on_fresh_thread(threading.get_ident) != caller
    with pytest.raises(ValueError, match="bad"):
        on_fresh_thread(lambda: (_ for _ in ()).throw(ValueError("bad")))


@needs_bf16
def test_lora_over_4bit_layers_matches_peft_and_honours_disable_adapter():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 64, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(q4_1_weight(64, 96, seed=1))
        model[1].weight.copy_(q4_1_weight(64, 64, seed=2))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["0", "1"], init_lora_weights=False))
    x = torch.randn(1, 1, 96)
    with torch.no_grad():
        tuned_exact = peft(x)
        with peft.disable_adapter():
            base_exact = peft(x)
    assert use_four_bit_decoding(peft) == 2
    assert all(hasattr(m, "_lean") for m in (peft.base_model.model[0], peft.base_model.model[1]))
    with torch.no_grad(), decoding():
        tuned = peft(x)
        with peft.disable_adapter():
            base = peft(x)
    tol = 0.02 * tuned_exact.abs().max().item()
    assert torch.allclose(tuned, tuned_exact, atol=tol) and torch.allclose(base, base_exact, atol=tol)
    assert not torch.allclose(tuned, base, atol=tol), "the adapter is applied on the tuned side only"


@needs_bf16
def test_a_kernel_that_fails_its_self_test_leaves_the_model_on_fp32(monkeypatch):
    linear = torch.nn.Linear(96, 64, bias=False)
    with torch.no_grad():
        linear.weight.copy_(q4_1_weight(64, 96))

    def broken(*args):
        raise RuntimeError("not on this CPU")

    monkeypatch.setattr(torch, "_weight_int4pack_mm_for_cpu", broken)
    assert use_four_bit_decoding(torch.nn.Sequential(linear)) == 0
    assert not hasattr(linear, "_four_bit") and "forward" not in vars(linear)


def test_without_bf16_instructions_single_tokens_decode_from_bf16_copies_where_that_pays(monkeypatch):
    """The fallback for CPUs without AVX512-BF16 or AMX: any model, every linear layer, adapters lean."""
    from peft import LoraConfig, get_peft_model

    import studio.hardware as hardware
    import studio.kernels.fast_decode as fast_decode

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 64, bias=False))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], init_lora_weights=False))
    x = torch.randn(1, 1, 96)
    with torch.no_grad():
        exact = peft(x)
        with peft.disable_adapter():
            base_exact = peft(x)

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: False)
    assert use_four_bit_decoding(peft) == 0, "not where the measurement says bf16 is no faster"
    assert not any(hasattr(m, "_bf16_weight") for m in peft.modules())

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: True)
    assert use_four_bit_decoding(peft) == 2, "the two layers, not the adapter's own A and B"
    assert hasattr(peft.base_model.model[0], "_lean") and not hasattr(peft.base_model.model[1], "_lean")
    with torch.no_grad():
        assert torch.equal(peft(x), exact), "outside decoding() nothing changes"
        prompt = torch.randn(1, 5, 96)
        prompt_exact = peft(prompt)
        with decoding():
            fast = peft(x)
            with peft.disable_adapter():
                base = peft(x)
            assert torch.equal(peft(prompt), prompt_exact), "prompts (prefill) stay fp32"
    tol = 0.02 * exact.abs().max().item()
    assert not torch.equal(fast, exact), "the bf16 copies ran"
    assert torch.allclose(fast, exact, atol=tol) and torch.allclose(base, base_exact, atol=tol)
    assert not torch.allclose(fast, base, atol=tol), "the adapter is applied on the tuned side only"


def test_the_bf16_measurement_answers_and_is_kept():
    from studio.kernels.fast_decode import _bf16_gemv_pays, _bf16_pays

    weight = torch.randn(256, 128)
    answer = _bf16_gemv_pays(weight)
    assert isinstance(answer, bool) and _bf16_pays[(256, 128), torch.get_num_threads()] is answer
