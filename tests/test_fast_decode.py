"""The torch decoding fallback (studio/kernels/fast_decode.py: bf16 copies) and the thread policy behind it."""

from __future__ import annotations

import threading

import pytest
import torch

from studio.hardware import on_fresh_thread
from studio.kernels.fast_decode import decoding, use_fast_decoding


def test_a_model_is_not_switched_where_bf16_does_not_pay(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    import studio.kernels.fast_decode as fast_decode

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert use_fast_decoding(model) == 0
    assert not any(hasattr(m, "_bf16_weight") or "forward" in vars(m) for m in model.modules())


def test_on_fresh_thread_returns_results_and_raises_errors_here():
    caller = threading.get_ident()
    assert on_fresh_thread(threading.get_ident) != caller
    with pytest.raises(ValueError, match="bad"):
        on_fresh_thread(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_single_tokens_decode_from_bf16_copies_where_that_pays(monkeypatch):
    """Any model, every linear layer, adapters lean; prompts and the adapter's switch as before."""
    from peft import LoraConfig, get_peft_model

    import studio.kernels.fast_decode as fast_decode

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 64), torch.nn.Linear(64, 64, bias=False))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], init_lora_weights=False))
    x = torch.randn(1, 1, 96)
    with torch.no_grad():
        exact = peft(x)
        with peft.disable_adapter():
            base_exact = peft(x)

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: False)
    assert use_fast_decoding(peft) == 0, "not where the measurement says bf16 is no faster"
    assert not any(hasattr(m, "_bf16_weight") for m in peft.modules())

    monkeypatch.setattr(fast_decode, "_bf16_gemv_pays", lambda weight: True)
    assert use_fast_decoding(peft) == 2, "the two layers, not the adapter's own A and B"
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
