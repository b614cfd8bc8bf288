"""Integration tests on the real embedded model (SmolLM2-135M-Instruct), through the CLI contract."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assets" / "sample_qa.csv"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "studio", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def test_zero_initialised_adapter_replies_exactly_like_the_base():
    from studio.models import apply_method, load_model, load_tokenizer
    from studio.recipe import MethodSection

    tokenizer = load_tokenizer("default")
    model = apply_method(load_model("default"), MethodSection(r=8, alpha=16)).eval()
    for prompt in ("Who founded the Brindlewick Ferry Company?", "What is 2 + 3?"):
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            tuned = model.generate(**inputs, max_new_tokens=20, do_sample=False)
            with model.disable_adapter():
                base = model.generate(**inputs, max_new_tokens=20, do_sample=False)
        assert torch.equal(tuned, base)



def test_the_torch_fallback_answers_on_the_default_model():
    """Chat without llama.cpp (before it is built, or chosen): the default model on torch, fp32 or bf16 copies."""
    from studio.chat import ChatModel

    chat = ChatModel(engine="torch")
    assert chat.llama is None and chat.engine.startswith("torch")
    assert "red" in chat.reply("Name three primary colours.", tuned=False, max_new_tokens=24).lower()


def test_drafting_loop_continues_each_prompt_as_generate_does():
    """The shared-prefix sampling loop, made greedy by a tiny temperature, against `generate` on whole prompts."""
    from studio.augment import FEW_SHOT, _draft
    from studio.kernels.complete import generating
    from studio.models import load_model, load_tokenizer

    model, tokenizer = load_model("default"), load_tokenizer("default")  # fp32: no bf16 ties between top tokens
    questions = ("Who founded the Brindlewick Ferry Company?", "How much is a return ticket to Hestrel Point?",
                 "When does the night boat leave?")
    prompts = [FEW_SHOT.format(question=q) for q in questions]
    with generating(model, tokenizer):
        drafted = _draft(model, tokenizer, prompts, samples=2, max_new_tokens=16, temperature=1e-6)
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            gen = model.generate(**enc, do_sample=False, max_new_tokens=16, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.convert_tokens_to_ids("\n"))
    expected = [t.strip().split("\n")[0].strip()
                for t in tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
    assert drafted == [[e, e] for e in expected]
    assert len(set(expected)) == 3 and all(e.endswith("?") for e in expected)


def test_check_data_contract(tmp_path):
    proc = cli("check-data", str(SAMPLE), "--json")
    report = json.loads(proc.stdout)
    assert report["rows"] == 40 and report["format"] == "qa" and report["errors"] == []
    assert set(report) >= {"rows", "format", "columns", "errors", "warnings"}
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 40)
    proc = cli("check-data", str(junk), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from studio.models import ensure_default_model

    weights = ensure_default_model() / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    out = tmp_path_factory.mktemp("runs") / "sample"
    proc = cli("train", "--data", str(SAMPLE), "--out", str(out), "--set", "training.max_steps=12",
               "--set", "data.max_length=96", "--set", "training.save_steps=6")
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest, "the base weights must never change"
    return out


def test_cli_train_learns_on_the_default_model(trained_run):
    from studio.runs import read_metrics, read_status

    status = read_status(trained_run)
    assert status["state"] == "done" and status["step"] == 12
    losses = [m["loss"] for m in read_metrics(trained_run) if "loss" in m]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    assert (trained_run / "adapter" / "adapter_model.safetensors").exists()


def test_cli_chat_tuned_differs_from_base(trained_run):
    question = "Who founded the Brindlewick Ferry Company?"
    tuned = cli("chat", str(trained_run), question).stdout.strip()
    base = cli("chat", str(trained_run), question, "--base").stdout.strip()
    assert tuned and base and tuned != base


def test_cli_eval_writes_a_base_vs_tuned_report(trained_run, tmp_path):
    out = tmp_path / "report.json"
    cli("eval", str(trained_run), "--data", str(REPO / "assets" / "sample_eval.csv"), "--out", str(out),
        "--max-new-tokens", "32")
    report = json.loads(out.read_text())
    assert len(report["rows"]) == 12
    assert {"question", "answer", "base", "tuned"} <= set(report["rows"][0])
    assert report["metrics"]["base"] and report["metrics"]["tuned"]


def test_cli_export_adapter_and_merged(trained_run, tmp_path):
    cli("export", str(trained_run), "--format", "adapter", "--out", str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    cli("export", str(trained_run), "--format", "merged", "--out", str(tmp_path / "merged"))
    assert (tmp_path / "merged" / "model.safetensors").exists()
    proc = cli("export", str(trained_run), "--format", "adapter", "--out", str(tmp_path / "adapter"), check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_batched_evaluation_replies_are_generates_one_at_a_time():
    """generate_batch runs drafting's completion loop (shared template start, rows leaving): same greedy text."""
    from studio.chat import ChatModel

    chat = ChatModel(engine="torch")
    prompts = ["Name three primary colours.", "What is the capital of France?", "Count from one to five.",
               "Write one sentence about the sea.", "Hi"]
    batched = chat.generate_batch(prompts, tuned=False, max_new_tokens=24, system_prompt="Answer briefly.",
                                  batch_size=3)
    singles = []
    for prompt in prompts:
        inputs = chat.tokenizer.apply_chat_template(
            [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": prompt}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = chat.model.generate(**inputs, max_new_tokens=24, do_sample=False, top_p=None, top_k=None,
                                      temperature=None)
        singles.append(chat.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    assert batched == singles


def test_llama_cpp_replies_are_the_reference_models_own_choices(trained_run):
    """Chat's llama.cpp stream and evaluation's llama.cpp batches, base and tuned, against torch fp32 on the same run.

    Not always the same text: llama.cpp rounds activations to 8 bits for its 4-bit (chat) and 8-bit (batches)
    kernels, which moves a logit by up to ~0.8, so where the reference's top two tokens are that close the paths
    can part. What must hold: every token llama.cpp picks is one the reference scores within 1.0 of its best
    (measured worst 0.55), and nearly every step is the reference's own best on the same text.
    """
    pytest.importorskip("llama_cpp")
    from studio.chat import ChatModel, _batch_engine

    chat = ChatModel(trained_run)
    assert chat.engine == "llama.cpp"
    prompts = ["Who founded the Brindlewick Ferry Company?", "What is the capital of France?",
               "How many legs does a spider have?", "Name three primary colours.", "What is 12 times 12?",
               "Explain photosynthesis in one sentence.", "When does the first ferry leave?", "Hi"]
    ids = [chat._inputs(p, None)["input_ids"][0].tolist() for p in prompts]
    batch = _batch_engine(chat.adapter_gguf)
    gaps = []
    for tuned in (False, True):
        adapter = chat.adapter_gguf if tuned else None
        chat.llama.use(adapter)
        streamed = [list(chat.llama.stream(i, 32, chat.stop)) for i in ids]
        batch.use(adapter)
        for prompt, reply in zip(ids * 2, streamed + batch.complete(ids, 32, chat.stop), strict=True):
            assert reply, "an empty reply"
            with torch.inference_mode():
                if tuned:
                    logits = chat.model(torch.tensor([prompt + reply])).logits[0]
                else:
                    with chat.model.disable_adapter():
                        logits = chat.model(torch.tensor([prompt + reply])).logits[0]
            steps = logits[len(prompt) - 1:-1]
            gaps += (steps.max(-1).values - steps[torch.arange(len(reply)), torch.tensor(reply)]).tolist()
    assert max(gaps) < 1.0, max(gaps)
    assert sum(g < 1e-4 for g in gaps) >= 0.9 * len(gaps)
    assert chat.generate_batch(prompts[:2], tuned=True, max_new_tokens=16)[0]
    from studio.chat import _engines, clear_cache

    clear_cache()  # no cached model answers for the run now: its adapter is freed in every engine...
    assert not any(engine.adapters for engine in _engines.values())
    assert chat.reply(prompts[1], max_new_tokens=8)  # ...and loaded again by a model that still holds it
