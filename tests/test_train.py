"""Fast engine tests on a tiny random Llama (2 layers, 16 wide) with the real tokenizer."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from safetensors.torch import load_file

from studio import runs
from studio.recipe import Recipe, apply_overrides
from studio.train import request_stop, train


def tiny_recipe(model_dir, *overrides: str) -> Recipe:
    return apply_overrides(Recipe(), [
        f"model.base={model_dir}", "data.max_length=64", "data.eval_size=2", "training.batch_size=4",
        "training.learning_rate=0.01", "training.epochs=4", "training.save_steps=5", "training.precision=fp32",
        "method.r=4", "method.alpha=8", *overrides,
    ])


def test_lora_run_writes_a_complete_folder_and_learns(tiny_model_dir, pairs_csv, tmp_path):
    run_dir = train(tiny_recipe(tiny_model_dir), pairs_csv, tmp_path / "run", log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    for name in ("recipe.yaml", "metrics.jsonl", "status.json", "data/pairs.csv", "data/train.jsonl",
                 "data/eval.jsonl", "adapter/adapter_model.safetensors", "adapter/adapter_config.json"):
        assert (run_dir / name).exists(), name
    metrics = runs.read_metrics(run_dir)
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == status["step"] == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.03, losses
    assert any("eval_loss" in m for m in metrics)
    last_train = [m for m in metrics if "loss" in m][-1]
    for key in ("step", "total", "epoch", "lr", "tokens_per_s", "elapsed", "eta"):
        assert key in last_train
    assert 0 < status["trainable_params"] < status["total_params"]
    assert status["train_examples"] == 10 and status["eval_examples"] == 2
    # LoRA B starts at zero; after training it is not, and only adapter tensors were saved.
    adapter = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    # The folder alone repeats the run: the recipe points at the copied data.
    assert "data/pairs.csv" in (run_dir / "recipe.yaml").read_text()


def test_base_weights_do_not_change_under_lora(tiny_model_dir, pairs_csv, tmp_path):
    before = load_file(tiny_model_dir / "model.safetensors")
    train(tiny_recipe(tiny_model_dir, "training.max_steps=3"), pairs_csv, tmp_path / "run", log=lambda _: None)
    after = load_file(tiny_model_dir / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("method", ["full", "head"])
def test_full_and_head_methods_save_a_model(tiny_model_dir, pairs_csv, tmp_path, method):
    run_dir = train(tiny_recipe(tiny_model_dir, f"method.name={method}", "training.max_steps=3"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    assert (run_dir / "model" / "model.safetensors").exists()
    status = runs.read_status(run_dir)
    if method == "head":
        assert status["trainable_params"] < status["total_params"]
    else:
        assert status["trainable_params"] == status["total_params"]


def test_stop_leaves_a_checkpoint_and_resume_finishes(tiny_model_dir, pairs_csv, tmp_path):
    stop = threading.Event()
    seen = []

    def log(line):
        seen.append(line)
        if line.startswith("step 2/"):
            stop.set()

    run_dir = train(tiny_recipe(tiny_model_dir), pairs_csv, tmp_path / "run", stop_event=stop, log=log)
    status = runs.read_status(run_dir)
    assert status["state"] == "stopped", status
    assert runs.last_checkpoint(run_dir) is not None
    assert not (run_dir / "adapter").exists()
    stopped_at = status["step"]
    run_dir = train(None, None, run_dir, resume=True, log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "done", status
    steps = [m["step"] for m in runs.read_metrics(run_dir) if "loss" in m]
    assert steps == list(range(1, 13)), "resume continues the step count without gaps or repeats"
    assert stopped_at < 12


def test_stop_file_from_another_process_stops_the_run(tiny_model_dir, pairs_csv, tmp_path):
    run_dir = tmp_path / "run"

    def log(line):
        if line.startswith("step 1/"):
            request_stop(run_dir)

    train(tiny_recipe(tiny_model_dir), pairs_csv, run_dir, log=log)
    assert runs.read_status(run_dir)["state"] == "stopped"


def test_bad_data_fails_with_a_plain_message(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\n,\n", encoding="utf-8")
    run_dir = train(tiny_recipe(tiny_model_dir), bad, tmp_path / "run", log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert "Traceback" not in status["message"] and "data" in status["message"].lower()
    assert (run_dir / "error.log").exists()


def test_a_missing_model_fails_clearly(pairs_csv, tmp_path):
    run_dir = train(tiny_recipe(tmp_path / "no-such-model"), pairs_csv, tmp_path / "r1", log=lambda _: None)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "does not exist" in status["message"]


def test_nan_loss_fails_the_run(tiny_model_dir, pairs_csv, tmp_path):
    run_dir = train(tiny_recipe(tiny_model_dir, "training.learning_rate=0.9", "method.alpha=100000"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    status = runs.read_status(run_dir)
    if status["state"] == "failed":
        assert "learning_rate" in status["message"]
    else:  # the tiny model survived even this; the run must then be a real success
        assert status["state"] == "done"


def test_interrupted_runs_are_marked_on_restart(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    (run_dir / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (run_dir / "status.json").write_text(json.dumps({"state": "running", "pid": 999999999}))
    changed = runs.mark_interrupted(tmp_path / "runs")
    assert changed == [run_dir]
    status = runs.read_status(run_dir)
    assert status["state"] == "interrupted" and "Resume" in status["message"]


def test_run_ids_are_confined_to_the_runs_root(tmp_path):
    root = tmp_path / "runs"
    (root / "good").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    assert runs.resolve_run("good", root) == (root / "good").resolve()
    for bad in ("../secret", "/etc", "..", "good/../../secret", "%2e%2e/secret", ""):
        with pytest.raises(runs.RunNotFound):
            runs.resolve_run(bad, root)


def test_bf16_run_keeps_trainable_weights_fp32(tiny_model_dir, pairs_csv, tmp_path):
    from studio.hardware import bf16_supported

    run_dir = train(tiny_recipe(tiny_model_dir, "training.precision=bf16", "training.max_steps=3"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    adapter = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert {v.dtype for v in adapter.values()} == {torch.float32}, "LoRA weights (and so Adam state) stay fp32"
    assert bf16_supported() in (True, False)


def test_cpu_lm_head_gives_trls_losses(tiny_model_dir, pairs_csv, tmp_path, monkeypatch):
    """Studio scores only trained positions, with whole logits, on the CPU; a run's losses must stay TRL's."""
    import trl.trainer.utils as trl_utils
    from trl.kernels import ChunkedLogProbFunction
    from trl.kernels.chunked_logprob import _use_triton

    import studio.kernels.lm_head_loss

    fast = train(tiny_recipe(tiny_model_dir, "training.max_steps=3"), pairs_csv, tmp_path / "fast", log=lambda _: None)
    assert trl_utils._use_triton(torch.device("cpu")), "the compact path is on for the CPU"
    assert trl_utils._ChunkedLogProbFunction is studio.kernels.lm_head_loss.DenseLogProbs
    monkeypatch.setattr(trl_utils, "_use_triton", _use_triton)
    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", ChunkedLogProbFunction)
    monkeypatch.setattr(studio.kernels.lm_head_loss, "use_dense_cpu_log_probs", lambda: None)
    slow = train(tiny_recipe(tiny_model_dir, "training.max_steps=3"), pairs_csv, tmp_path / "slow", log=lambda _: None)
    assert trl_utils._ChunkedLogProbFunction is ChunkedLogProbFunction, "the second run scored through TRL's own"
    fast_losses = [m["loss"] for m in runs.read_metrics(fast) if "loss" in m]
    slow_losses = [m["loss"] for m in runs.read_metrics(slow) if "loss" in m]
    assert len(fast_losses) == 3 and fast_losses == pytest.approx(slow_losses, rel=1e-3)


@pytest.mark.parametrize("autocast", [False, True])
def test_dense_log_probs_match_trls_tiled_ones(autocast):
    """Log-probabilities, entropy, top-1 and the hidden states' gradient, against TRL's tiled function."""
    from trl.kernels import ChunkedLogProbFunction

    from studio.kernels.lm_head_loss import DenseLogProbs

    torch.manual_seed(0)
    hidden, weight = torch.randn(37, 24), torch.randn(301, 24) * 0.3
    targets = torch.randint(0, 301, (37,))
    targets[0] = (hidden[0] @ weight.T).argmax()  # at least one top-1 hit
    outputs = ("log_probs", "entropy", "is_top1")
    results = []
    for fn in (DenseLogProbs, ChunkedLogProbFunction):
        h = hidden.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            log_probs, entropy, _, _, top1 = fn.apply(h, weight, None, targets, 0.7, 128, None, 1.0, outputs)
        (log_probs * torch.linspace(-1, 1, 37)).sum().backward()
        results.append((log_probs.detach(), entropy, top1, h.grad))
    tol = 3e-2 if autocast else 1e-5
    for ours, trls in zip(*results, strict=True):
        assert torch.allclose(ours.float(), trls.float(), atol=tol, rtol=tol)
    assert results[0][2].any() and not results[0][2].all()


def test_question_rewrites_are_drafted_once_and_listed(tiny_model_dir, pairs_csv, tmp_path):
    run_dir = train(tiny_recipe(tiny_model_dir, "data.paraphrases=2", "training.max_steps=2"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    listed = runs.read_jsonl(run_dir / "data" / "paraphrases.jsonl")
    assert (run_dir / "data" / "paraphrases.jsonl").exists()
    assert runs.read_status(run_dir)["train_examples"] == 10 + len(listed)


def test_drafts_are_reused_by_the_next_run_with_the_same_data_and_settings(tiny_model_dir, pairs_csv, tmp_path):
    first = train(tiny_recipe(tiny_model_dir, "data.paraphrases=2", "data.replay=2", "training.max_steps=1",
                              "training.seed=11"), pairs_csv, tmp_path / "first", log=lambda _: None)
    again = train(tiny_recipe(tiny_model_dir, "data.paraphrases=2", "data.replay=2", "training.max_steps=1",
                              "training.seed=11", "training.learning_rate=0.01"), pairs_csv, tmp_path / "again",
                  log=lambda _: None)
    other = train(tiny_recipe(tiny_model_dir, "data.paraphrases=2", "data.replay=2", "training.max_steps=1",
                              "training.seed=12"), pairs_csv, tmp_path / "other", log=lambda _: None)
    log = (again / "train.log").read_text()
    assert "Reused" in log and "rewritten questions" in log and "general questions" in log
    for name in ("paraphrases.jsonl", "replay.jsonl"):
        assert (again / "data" / name).read_bytes() == (first / "data" / name).read_bytes()
    rewrites = [line for line in (other / "train.log").read_text().splitlines() if "rewritten questions" in line]
    assert rewrites and not any("Reused" in line for line in rewrites), "another seed drafts its own rewrites"


def test_a_rerun_with_reused_drafts_trains_exactly_as_the_first_run(tiny_model_dir, pairs_csv, tmp_path,
                                                                   monkeypatch):
    """Drafting samples from the model; the adapter's start and the data order must not depend on whether the
    drafts were made now or reused, or the same recipe would train one way the first time and another after."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))  # no drafts kept from an earlier session
    recipe = ("data.paraphrases=2", "data.replay=2", "training.max_steps=3", "training.seed=13")
    first = train(tiny_recipe(tiny_model_dir, *recipe), pairs_csv, tmp_path / "first", log=lambda _: None)
    again = train(tiny_recipe(tiny_model_dir, *recipe), pairs_csv, tmp_path / "again", log=lambda _: None)
    assert "Reused" in (again / "train.log").read_text() and "Reused" not in (first / "train.log").read_text()
    losses = [[m["loss"] for m in runs.read_metrics(run) if "loss" in m] for run in (first, again)]
    assert len(losses[0]) == 3 and losses[0] == losses[1]


def test_drafting_reports_progress_and_a_stop_ends_the_run_before_training(tiny_model_dir, pairs_csv, tmp_path,
                                                                           monkeypatch):
    """Drafting can take a minute on a CPU without bf16: the status says how far it is, and Stop is honoured."""
    messages = []
    write_status = runs.write_status

    def recording(run_dir, state, message="", **extra):
        messages.append((state, message))
        return write_status(run_dir, state, message, **extra)

    monkeypatch.setattr(runs, "write_status", recording)
    recipe = tiny_recipe(tiny_model_dir, "data.paraphrases=2", "data.replay=0", "training.max_steps=2",
                         "training.seed=21")
    done = train(recipe, pairs_csv, tmp_path / "done", log=lambda _: None)
    assert runs.read_status(done)["state"] == "done"
    assert any(state == "queued" and "10 of 10 done, about 0 s left" in message for state, message in messages)
    # Where the wall time went, phase by phase, in the order they came; the message sums them up from Start.
    status = runs.read_status(done)
    assert [name for name, _ in status["phases"]] == ["preparing", "drafting", "training", "saving", "ended"]
    seconds = dict(runs.phase_seconds(status))
    assert set(seconds) == {"preparing", "drafting", "training", "saving"} and all(s >= 0 for s in seconds.values())
    assert status["message"].startswith("Finished: ") and " s from Start: " in status["message"], status

    stop = threading.Event()
    recipe = tiny_recipe(tiny_model_dir, "data.paraphrases=2", "data.replay=0", "training.max_steps=2",
                         "training.seed=22")
    stopped = train(recipe, pairs_csv, tmp_path / "stopped", stop_event=stop,
                    log=lambda line: stop.set() if line.startswith("Drafting") else None)
    status = runs.read_status(stopped)
    assert status["state"] == "stopped" and "before the first step" in status["message"], status
    assert not (stopped / "metrics.jsonl").exists() or not runs.read_metrics(stopped)
    assert not (stopped / "data" / "paraphrases.jsonl").exists(), "no half-drafted file is kept"
    assert not (stopped / "adapter").exists()


def test_memory_returns_after_runs_and_the_next_run_succeeds(tiny_model_dir, pairs_csv, tmp_path):
    """A long-lived app runs many jobs: each one's model, trainer and optimizer must be freed when it ends."""
    import gc

    import psutil

    recipe = lambda: tiny_recipe(tiny_model_dir, "training.max_steps=4")  # noqa: E731
    train(recipe(), pairs_csv, tmp_path / "warm", log=lambda _: None)  # imports and allocator pools settle
    gc.collect()
    before = psutil.Process().memory_info().rss
    for i in range(3):
        run_dir = train(recipe(), pairs_csv, tmp_path / f"run{i}", log=lambda _: None)
        assert runs.read_status(run_dir)["state"] == "done"
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    assert grown < 150 * 2**20, f"RSS grew by {grown / 2**20:.0f} MB over three runs"


def test_per_example_attention_matches_the_block_mask(tiny_model_dir):
    """A packed row (3 examples, then round-up pad) gives the same loss and gradients either way."""
    from transformers import AutoModelForCausalLM

    from studio.kernels.packed_attention import use_packed_attention

    torch.manual_seed(0)
    lens, pad = [5, 9, 7], 11
    ids = torch.randint(10, 1000, (1, sum(lens) + pad))
    pos = torch.cat([torch.arange(n) for n in lens] + [torch.zeros(pad, dtype=torch.long)])[None]
    labels = ids.clone()
    labels[0, sum(lens):] = -100
    results = []
    for packed in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
        if packed:
            use_packed_attention(model)
        out = model(input_ids=ids, position_ids=pos, labels=labels, use_cache=False)  # as in training
        out.loss.backward()
        results.append((out.loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss_mask, grad_mask), (loss_packed, grad_packed) = results
    assert loss_packed == pytest.approx(loss_mask, rel=1e-5)
    assert torch.allclose(grad_packed, grad_mask, atol=1e-6, rtol=1e-4)
    # And the same as each example on its own: nothing leaks between examples of a row.
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    use_packed_attention(model)
    with torch.no_grad():
        row = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0, lens[0]:lens[0] + lens[1]]
        alone = model(input_ids=ids[:, lens[0]:lens[0] + lens[1]], use_cache=False).logits[0]
    assert torch.allclose(row, alone, atol=1e-5)


def test_a_shared_prefix_gives_the_same_loss_and_gradients_as_its_copies(tiny_model_dir):
    """SharedPrefixCollator keeps the system prompt once a row; the numbers must not change."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from studio.kernels.packed_attention import SharedPrefixCollator, data_tokens

    torch.manual_seed(0)
    prefix = torch.randint(10, 1000, (12,)).tolist()
    examples = []
    for n_prompt, n_answer in ((4, 6), (9, 3), (2, 8)):
        ids = prefix + torch.randint(10, 1000, (n_prompt + n_answer,)).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * (len(prefix) + n_prompt) + ids[-n_answer:]})
    inner = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True, pad_to_multiple_of=64)
    plain = inner(examples)
    shared = SharedPrefixCollator(inner, pad_token_id=0, pad_to_multiple_of=64)(examples)
    assert shared["input_ids"].shape[1] == 64 and (shared["input_ids"] != 0).sum() == 22 + 24 + 22 - 2 * 12
    assert data_tokens(shared, 0) == data_tokens(plain, 0) == sum(len(e["input_ids"]) for e in examples)
    assert (shared["labels"] != -100).sum() == (plain["labels"] != -100).sum() == 6 + 3 + 8
    assert_same_loss_and_gradients(tiny_model_dir, plain, shared)
    # A batch without a common prefix is TRL's row, unchanged.
    other = [{"input_ids": [5] + e["input_ids"][1:], "labels": e["labels"]} for e in examples[:1]] + examples[1:]
    assert torch.equal(SharedPrefixCollator(inner, 0, 64)(other)["input_ids"], inner(other)["input_ids"])


def assert_same_loss_and_gradients(model_dir, plain: dict, shared: dict) -> None:
    """Two packed batches of the same examples (each with its own prefix, and sharing one) train alike."""
    from transformers import AutoModelForCausalLM

    from studio.kernels.packed_attention import use_packed_attention

    results = []
    for batch in (plain, shared):
        model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
        if not use_packed_attention(model):
            pytest.skip("this model keeps its own attention: no shared prefix")
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"],
                    use_cache=False)
        out.loss.backward()
        results.append((out.loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss_plain, grad_plain), (loss_shared, grad_shared) = results
    assert loss_shared == pytest.approx(loss_plain, rel=1e-5)
    assert torch.allclose(grad_shared, grad_plain, atol=1e-6, rtol=1e-4)


def test_the_runs_table_tells_the_users_rows_from_what_studio_added(tiny_model_dir, pairs_csv, tmp_path):
    """A 12-row upload with question forms trains on more examples than the user wrote; the table says which."""
    run_dir = train(tiny_recipe(tiny_model_dir, "data.question_forms=2", "training.max_steps=2"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    row = runs.summarize(run_dir)
    assert row["your_rows"] == 10, "12 rows, 2 held out"
    assert row["added"] == row["examples"] - 10 > 0


def test_phase_times_leave_out_the_time_a_run_stood_stopped(tmp_path):
    """A stopped run resumed an hour later did not train for an hour: 'ended' spans count for nothing."""
    marks = [["waiting", 0.0], ["preparing", 1.0], ["training", 5.0], ["ended", 65.0], ["waiting", 3665.0],
             ["training", 3667.0], ["saving", 3687.0], ["ended", 3690.0]]
    status = {"state": "done", "phases": marks, "updated": 3690.0}
    assert runs.phase_seconds(status) == [("waiting", 3.0), ("preparing", 4.0), ("training", 80.0), ("saving", 3.0)]
    assert runs.wall_summary(status) == ("1 min 30 s from Start: waiting 3 s, preparing 4 s, training 1 min 20 s, "
                                         "saving 3 s")
    runs.write_status(tmp_path, "queued", "Waiting to start...", phase="waiting")
    runs.write_status(tmp_path, "queued", "Still waiting", phase="waiting")  # the same phase again: no new mark
    runs.write_status(tmp_path, "stopped", "Stopped.")
    assert [name for name, _ in runs.read_status(tmp_path)["phases"]] == ["waiting", "ended"]


def test_a_chosen_experiment_tracker_gets_the_loss_and_a_missing_one_is_named(tiny_model_dir, pairs_csv, tmp_path,
                                                                              monkeypatch):
    """training.report_to: TensorBoard event files in the run folder; a tracker not installed is a recipe problem."""
    from studio import recipe as recipe_module
    from studio.recipe import RecipeError, check

    run_dir = train(tiny_recipe(tiny_model_dir, "training.max_steps=3", "training.report_to=tensorboard"), pairs_csv,
                    tmp_path / "run", log=lambda _: None)
    assert runs.read_status(run_dir)["state"] == "done"
    events = list((run_dir / "checkpoints").rglob("events.out.tfevents.*"))
    assert events and any(e.stat().st_size > 100 for e in events)
    monkeypatch.setitem(recipe_module.TRACKER_MODULES, "wandb", "studio_no_such_tracker")
    with pytest.raises(RecipeError, match="training.report_to: wandb is not installed here"):
        check(tiny_recipe(tiny_model_dir, "training.report_to=wandb"))
    with pytest.raises(RecipeError, match="is not one of none, tensorboard, trackio, wandb"):
        check(tiny_recipe(tiny_model_dir, "training.report_to=mlflow"))
