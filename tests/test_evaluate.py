"""Evaluation, live training warnings and the model card.

Most tests use a fake chat model or none at all, so they run in well under a second each; one integration
test makes a real zero-initialised LoRA adapter on the default model (about 30 s the first time, while the
default model converts) and checks that base and tuned answers are then identical.
"""

import os

os.environ.setdefault("STUDIO_HOME", "/tmp/studio-test-home")

import json
import math
from pathlib import Path

import pytest

from studio import chat
from studio.card import md, sha256, write_card
from studio.evaluate import aggregate, evaluate_file, evaluate_heldout, forgetting_check, format_table, score
from studio.monitor import training_warnings
from studio.recipe import Recipe

# ---------------------------------------------------------------------------------------------- scores


def test_score_exact_ignores_case_punctuation_and_spacing():
    s = score("  Paris. ", "paris")
    assert s["exact"] is True and s["contains"] is True and s["rouge_l"] == 1.0


def test_score_contains_reference_or_key():
    s = score("It was founded in 1873 by the Ondrakes!", "founded in 1873")
    assert s["exact"] is False and s["contains"] is True
    assert score("Founded 1873.", "The company was founded in 1873.", key="1873")["contains"] is True
    assert score("Founded 1874.", "The company was founded in 1873.", key="1873")["contains"] is False
    assert score("It is 18735 km.", "x", key="1873")["contains"] is True  # plain substring, as specified


def test_score_rouge_and_bleu_range():
    ref = "The Brindlewick Ferry Company was founded in 1873 by Vessa Ondrake."
    same, other = score(ref, ref), score("I do not know.", ref)
    assert same["bleu"] == pytest.approx(1.0) and same["rouge_l"] == pytest.approx(1.0)
    assert other["bleu"] < 0.1 and other["rouge_l"] < 0.2
    assert 0 < score("The company was founded in 1873.", ref)["rouge_l"] < 1


def test_score_without_reference_scores_only_the_key():
    assert score("anything", "") == {"exact": None, "contains": None, "rouge_l": None, "bleu": None, "mismatch": None}
    assert score("It was 1873", "", key="1873")["contains"] is True


def test_aggregate_rates_means_and_corpus_bleu():
    refs = ["the ferry leaves at nine every morning", "tickets cost four silver marks each"]
    preds = [refs[0], "I am not sure about that"]
    scores = [score(p, r) for p, r in zip(preds, refs, strict=False)]
    agg = aggregate(preds, refs, scores)
    assert agg["n"] == 2 and agg["exact"] == 0.5 and agg["contains"] == 0.5
    assert agg["rouge_l"] == pytest.approx((1.0 + scores[1]["rouge_l"]) / 2, abs=1e-4)
    assert 0 < agg["bleu"] < 1
    assert aggregate(refs, refs, [score(r, r) for r in refs])["bleu"] == pytest.approx(1.0)
    assert aggregate(["a"], None, [score("a", "")])["bleu"] is None


def _report(base: dict, tuned: dict, **extra) -> dict:
    return {"rows": [], "metrics": {"base": base, "tuned": tuned}, "eval_loss": 0.6931, "perplexity": 2.0,
            "has_references": True, "source": "sample_eval.csv", **extra}


def test_format_table_base_vs_tuned():
    base = {"n": 4, "exact": 0.0, "contains": 0.25, "rouge_l": 0.2, "bleu": 0.05}
    tuned = {"n": 4, "exact": 0.5, "contains": 1.0, "rouge_l": 0.8, "bleu": 0.6}
    text = format_table(_report(base, tuned))
    assert "4 questions" in text and "sample_eval.csv" in text
    assert "| Exact match (%) | 0.0 | 50.0 | +50.0 |" in text
    assert "| Contains answer (%) | 25.0 | 100.0 | +75.0 |" in text
    assert "| ROUGE-L (x100) | 20.0 | 80.0 | +60.0 |" in text
    assert "| BLEU (x100) | 5.0 | 60.0 | +55.0 |" in text
    assert "0.6931" in text and "2.00" in text


def test_format_table_without_references_or_losses():
    report = _report({"n": 1}, {"n": 1}, has_references=False, eval_loss=None, perplexity=None)
    report["rows"] = [{"question": "Q?", "answer": "", "base": "a", "tuned": "b"}]
    text = format_table(report)
    assert "Exact match" not in text and "not scored" in text and "| Eval loss (held-out) | – | – | |" in text


# ---------------------------------------------------------------------------------- with a fake model


class FakeChat:
    """Stands in for ChatModel: the tuned side answers from a fixed table, the base side shrugs."""

    system_prompt = ""

    def __init__(self, tuned: dict[str, str]):
        self.tuned = tuned
        self.calls = []

    def generate_batch(self, prompts, tuned, max_new_tokens=96, system_prompt=None, batch_size=8):
        self.calls.append((tuned, max_new_tokens))
        return [self.tuned.get(p, "I do not know.") if tuned else "I do not know." for p in prompts]


@pytest.fixture
def fake_chat(monkeypatch):
    def install(tuned: dict[str, str]) -> FakeChat:
        fake = FakeChat(tuned)
        monkeypatch.setattr(chat, "get_chat_model", lambda run_dir=None, base="default", weights=None: fake)
        return fake

    return install


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _pair(q: str, a: str, row: int) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "row": row}


def test_evaluate_file_with_key_column(tmp_path, fake_chat):
    (tmp_path / "status.json").write_text(json.dumps({"eval_loss": 1.0}))
    data = tmp_path / "heldout.csv"
    data.write_text("question,key,answer\nWhen founded?,1873,It was founded in 1873.\n"
                    "Who founded it?,Ondrake,Vessa Ondrake founded it.\n", encoding="utf-8")
    fake = fake_chat({"When founded?": "Founded in 1873.", "Who founded it?": "Vessa Ondrake founded it."})
    report = evaluate_file(tmp_path, data, max_new_tokens=7)
    assert [r["key"] for r in report["rows"]] == ["1873", "Ondrake"]
    assert report["metrics"]["base"]["contains"] == 0 and report["metrics"]["tuned"]["contains"] == 1
    assert report["metrics"]["tuned"]["exact"] == 0.5
    assert report["perplexity"] == pytest.approx(math.e, abs=1e-3)
    assert set(report["rows"][0]) >= {"question", "answer", "base", "tuned", "base_scores", "tuned_scores"}
    assert {t for t, _ in fake.calls} == {True, False} and {n for _, n in fake.calls} == {7}


def test_evaluate_file_question_only(tmp_path, fake_chat):
    data = tmp_path / "qs.csv"
    data.write_text("Prompt,Notes\nWhat is a ferry?,x\n,empty row\nWho runs it?,y\n", encoding="utf-8")
    fake_chat({})
    report = evaluate_file(tmp_path, data)
    assert [r["question"] for r in report["rows"]] == ["What is a ferry?", "Who runs it?"]
    assert report["has_references"] is False and "not scored" in format_table(report)


def test_evaluate_file_reads_tables_as_training_does(tmp_path, fake_chat):
    """Windows Excel's CSV (cp1252, semicolons) and a blank line: the keys still come from each question's row."""
    data = tmp_path / "excel.csv"
    data.write_bytes("Frage;Key;Antwort\nWie teuer?;5 €;Es kostet 5 €.\n\nWer?;Ondrake;Ondrake.\n".encode("cp1252"))
    fake_chat({})
    report = evaluate_file(tmp_path, data)
    assert [(r["question"], r["answer"], r["key"]) for r in report["rows"]] == [
        ("Wie teuer?", "Es kostet 5 €.", "5 €"), ("Wer?", "Ondrake.", "Ondrake")]
    (tmp_path / "broken.jsonl").write_text('{"question": "Q1?"}\n{"question": \n', encoding="utf-8")
    with pytest.raises(ValueError, match="Cannot read broken.jsonl as a table of questions: Line 2"):
        evaluate_file(tmp_path, tmp_path / "broken.jsonl")


def test_evaluate_file_rejects_unusable_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_file(tmp_path, tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no rows"):
        evaluate_file(tmp_path, tmp_path / "empty.csv")


def test_evaluate_heldout_empty_split_says_so(tmp_path):
    _write_jsonl(tmp_path / "data" / "eval.jsonl", [])
    report = evaluate_heldout(tmp_path)
    assert report["rows"] == [] and "held out no examples" in report["message"]
    assert json.loads((tmp_path / "eval.json").read_text())["message"] == report["message"]
    assert "held out no examples" in format_table(report)


def test_evaluate_heldout_writes_eval_json(tmp_path, fake_chat):
    _write_jsonl(tmp_path / "data" / "eval.jsonl", [_pair("Q1?", "Answer one.", 3), _pair("Q2?", "Answer two.", 7)])
    fake_chat({"Q1?": "Answer one."})
    report = evaluate_heldout(tmp_path)
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"] == report["metrics"]
    assert report["metrics"]["tuned"]["exact"] == 0.5 and report["metrics"]["base"]["exact"] == 0


def test_forgetting_check_flags_leakage_and_lost_knowledge(tmp_path, fake_chat):
    taught = "The Brindlewick Ferry Company was founded in 1873 by Vessa Ondrake."
    _write_jsonl(tmp_path / "data" / "train.jsonl", [_pair("When was it founded?", taught, 1)])
    prompts = tmp_path / "general.jsonl"
    _write_jsonl(prompts, [{"prompt": "Capital of France?", "keywords": ["Paris"]},
                           {"prompt": "What is 2 + 3?", "keywords": ["5", "five"]}])
    fake = fake_chat({"Capital of France?": taught, "What is 2 + 3?": "It is 5."})
    fake.generate_batch = lambda prompts, tuned, **kw: (
        [fake.tuned[p] for p in prompts] if tuned else ["Paris, of course.", "2 + 3 = 5"])
    report = forgetting_check(tmp_path, prompts)
    assert report["base_hits"] == 1.0 and report["tuned_hits"] == 0.5 and report["leakage"] == 0.5
    assert report["flag"] is True and "repeat taught answers" in report["message"]
    assert json.loads((tmp_path / "forgetting.json").read_text())["flag"] is True


def test_forgetting_check_passes_when_nothing_changed(tmp_path, fake_chat):
    _write_jsonl(tmp_path / "data" / "train.jsonl", [_pair("Q?", "Ferries leave at nine.", 1)])
    fake = fake_chat({})
    fake.generate_batch = lambda prompts, tuned, **kw: ["Paris is the capital." for _ in prompts]
    report = forgetting_check(tmp_path)
    assert report["n"] == 20 and report["flag"] is False and "No sign of forgetting" in report["message"]


# ---------------------------------------------------------------------------------- training warnings


def _rows(losses: list[float], evals: dict[int, float] | None = None, total: int = 100) -> list[dict]:
    rows = [{"step": i + 1, "total": total, "loss": loss} for i, loss in enumerate(losses)]
    rows += [{"step": step, "total": total, "eval_loss": loss} for step, loss in (evals or {}).items()]
    return rows


def test_warnings_healthy_run_is_quiet():
    losses = [3.0 * 0.93**i for i in range(40)]
    assert training_warnings(_rows(losses, {10: 1.9, 20: 1.5, 30: 1.3, 40: 1.25})) == []
    assert training_warnings([]) == []
    assert training_warnings(_rows([2.5, 2.5, 2.5])) == []  # too early to say anything


def test_warnings_memorising():
    losses = [2.0 * 0.7**i for i in range(30)] + [0.01] * 10
    warnings = training_warnings(_rows(losses, {10: 1.2, 20: 0.9, 30: 1.1, 40: 1.4}))
    assert len(warnings) == 1
    assert "memorising" in warnings[0] and "fewer epochs" in warnings[0] and "lowest eval loss" in warnings[0]
    assert "step 20" in warnings[0]


def test_warnings_not_learning():
    flat = [2.5, 2.48, 2.52, 2.5, 2.49, 2.51] * 4
    warnings = training_warnings(_rows(flat, total=200))
    assert len(warnings) == 1 and "not falling" in warnings[0] and "1e-3" in warnings[0]
    assert "answer column" in warnings[0]
    assert training_warnings(_rows(flat[:10], total=200)) == []  # 10 of 200 steps: too early
    assert training_warnings(_rows(flat[:10], total=20))  # half the run: not too early
    at_high_lr = [dict(r, lr=1e-3) for r in _rows(flat, total=200)]
    assert "more epochs" in training_warnings(at_high_lr)[0] and "1e-3" not in training_warnings(at_high_lr)[0]


def test_warnings_diverging_and_nan():
    rising = [2.0, 2.1, 2.0, 2.6, 3.5, 4.8, 6.0, 7.5]
    assert "diverging" in training_warnings(_rows(rising))[0]
    warnings = training_warnings(_rows([2.0, 1.8, float("nan")]))
    assert len(warnings) == 1 and "NaN" in warnings[0] and "learning rate" in warnings[0]


# --------------------------------------------------------------------------------------- model card


def _fake_run(root: Path) -> Path:
    run = root / "run-1"
    (run / "data").mkdir(parents=True)
    recipe = Recipe()
    recipe.data.path = "data/faq|v2.csv"
    recipe.data.system_prompt = "You answer | questions."
    recipe.save(run / "recipe.yaml")
    (run / "data" / "faq|v2.csv").write_text("question,answer\nA?,B\nC?,D\n", encoding="utf-8")
    _write_jsonl(run / "data" / "train.jsonl", [_pair("A?", "Bee", 1), _pair("Long question?", "D" * 40, 2)])
    _write_jsonl(run / "data" / "eval.jsonl", [_pair("E?", "F", 3)])
    _write_jsonl(run / "data" / "question_forms.jsonl", [_pair("Quick question: A?", "Bee", 1)])
    (run / "status.json").write_text(json.dumps({
        "state": "done", "loss": 0.1234, "eval_loss": 0.5678, "train_seconds": 12.5, "step": 6,
        "trainable_params": 1000, "total_params": 100000, "data_name": "faq|v2.csv"}))
    _write_jsonl(run / "metrics.jsonl", [{"step": s, "total": 6, "loss": 2.0 / s} for s in range(1, 7)]
                 + [{"step": 3, "eval_loss": 0.9}, {"step": 6, "eval_loss": 0.5678}])
    report = _report({"n": 1, "exact": 0.0, "contains": 0.0, "rouge_l": 0.1, "bleu": 0.0},
                     {"n": 1, "exact": 1.0, "contains": 1.0, "rouge_l": 1.0, "bleu": 1.0})
    report["rows"] = [{"question": "Pipe | here?\nsecond line", "answer": "F", "base": "<b>no</b>", "tuned": "F"}]
    (run / "eval.json").write_text(json.dumps(report))
    (run / "forgetting.json").write_text(json.dumps({"n": 20, "base_hits": 0.8, "tuned_hits": 0.75,
                                                     "base_leakage": 0.0, "leakage": 0.05, "flag": False,
                                                     "message": "No sign of forgetting."}))
    return run


def test_write_card_sections_hash_and_plot(tmp_path):
    from PIL import Image

    run = _fake_run(tmp_path)
    card = write_card(run)
    text = card.read_text(encoding="utf-8")
    assert card == run / "README.md"
    front = text.split("---")[1]
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in front and "library_name: peft" in front
    for heading in ("## Results", "## Evaluation: base vs tuned", "## Forgetting check", "## Data", "## Recipe",
                    "## Environment", "## Use", "## Repeat this run"):
        assert heading in text
    assert sha256(run / "data" / "faq|v2.csv") in text
    assert "| Training | 2 |" in text and "| Held out | 1 |" in text
    assert "| Question forms (rule-based rewordings) | 1, listed in `data/question_forms.jsonl` |" in text
    assert "Question rewrites by the base model" not in text, "only what the run added is listed"
    assert "| Question length (characters) | mean 6, max 14 |" in text and "mean 15, max 40" in text
    assert "0.1234" in text and "0.5678" in text
    assert "| `training.learning_rate` | 0.0002 |" in text and "| `method.r` | 16 |" in text
    assert "Seed 42;" in text and "transformers " in text and "peft " in text
    assert "python -m studio train" in text and "/data/faq|v2.csv'" in text
    assert "PeftModel.from_pretrained" in text and "python -m studio chat" in text
    assert "Pipe \\| here?<br>second line" in text and "&lt;b&gt;no&lt;/b&gt;" in text
    assert "| Exact match (%) | 0.0 | 100.0 | +100.0 |" in text and "No sign of forgetting." in text
    assert "![Training and held-out loss by step](loss.png)" in text
    with Image.open(run / "loss.png") as image:
        image.verify()
    with Image.open(run / "loss.png") as image:
        assert image.format == "PNG" and image.size == (720, 400)
        assert len(image.convert("RGB").getcolors(1 << 16)) > 3  # lines and text, not a blank canvas


def test_write_card_minimal_run(tmp_path):
    run = tmp_path / "bare"
    run.mkdir()
    Recipe().save(run / "recipe.yaml")
    text = write_card(run).read_text(encoding="utf-8")
    assert "## Evaluation" not in text and "loss.png" not in text and "not found in `data/`" in text


def test_md_escapes_table_breakers():
    assert md("a|b\nc\r\nd") == "a\\|b<br>c<br>d"


# --------------------------------------------------------------------------------------- integration


def test_zero_adapter_answers_like_base(tmp_path):
    """A LoRA adapter with B = 0 changes nothing: base and tuned greedy answers must be identical."""
    import torch

    from studio.models import apply_method, load_model
    from studio.recipe import MethodSection

    run = tmp_path / "run"
    run.mkdir()
    recipe = Recipe()
    recipe.method = MethodSection(r=4, alpha=8, target_modules="q_proj,v_proj")
    recipe.save(run / "recipe.yaml")
    (run / "status.json").write_text(json.dumps({"state": "done", "eval_loss": 2.0}))
    model = apply_method(load_model("default", log=lambda _: None), recipe.method)
    model.save_pretrained(run / "adapter")
    data = tmp_path / "qs.csv"
    data.write_text("question,key,answer\nWhat is the capital of France?,Paris,Paris.\n"
                    "What is 2 + 3?,5,5\nName a colour.,red,Red.\n", encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is as fast alone and far faster on a shared, busy CPU
    try:
        report = evaluate_file(run, data, max_new_tokens=8)
    finally:
        torch.set_num_threads(threads)
        chat.clear_cache()
    assert len(report["rows"]) == 3 and report["perplexity"] == pytest.approx(math.exp(2.0), abs=1e-3)
    assert all(r["base"] == r["tuned"] for r in report["rows"])
    assert report["metrics"]["base"] == report["metrics"]["tuned"]
    assert "| Exact match (%) |" in format_table(report)


def test_engine_modules_never_import_gradio():
    import subprocess
    import sys

    code = "import sys, studio.evaluate, studio.card, studio.monitor; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_evaluate_heldout_falls_back_to_recall_of_training_questions(tmp_path, fake_chat):
    fake_chat({"Q1?": "A1."})
    _write_jsonl(tmp_path / "data" / "eval.jsonl", [])
    _write_jsonl(tmp_path / "data" / "train.jsonl", [
        {"messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}], "row": i}
        for i in range(1, 4)])
    report = evaluate_heldout(tmp_path)
    assert [r["question"] for r in report["rows"]] == ["Q1?", "Q2?", "Q3?"]
    assert report["source"].startswith("training questions") and "recalls" in report["message"]


def test_a_wrong_number_or_code_is_flagged_with_what_it_says():
    """The issue's misses: the right sentence with another fact's number. A missing number is a plain miss."""
    from studio.evaluate import value_mismatch

    ref = "Employees get 27 days of paid leave a year."
    assert value_mismatch("You get 28 days of paid leave.", ref) == "says 28; the reference says 27"
    assert value_mismatch("You get 27 days of paid leave.", ref) is None
    assert value_mismatch("You get plenty of paid leave.", ref) is None
    assert value_mismatch("It sails at 22:15.", "The Saltwren sails at 6:40 every morning.") == \
        "says 22:15; the reference says 6:40"
    assert value_mismatch("Order part AB-124.", "The part is AB-123.") == "says ab-124; the reference says ab-123"
    assert value_mismatch("It costs 1000 skerrits.", "It costs 1,000 skerrits.") is None
    scores = [score("You get 28 days.", ref), score("You get 27 days.", ref), score("No idea.", ref)]
    assert scores[0]["mismatch"] and not scores[1]["mismatch"] and not scores[2]["mismatch"]
    assert aggregate(["a", "b", "c"], [ref] * 3, scores)["wrong_value"] == pytest.approx(1 / 3, abs=1e-4)
    assert score("28", "", key="27")["mismatch"] == "says 28; the reference says 27"


def test_the_evaluate_table_shows_wrong_values_first():
    from studio.ui.eval_tab import _rows_frame

    def row(q, tuned, ref):
        return {"question": q, "answer": ref, "base": "", "tuned": tuned, "base_scores": score("", ref),
                "tuned_scores": score(tuned, ref)}

    report = {"rows": [row("Leave?", "27 days.", "27 days of leave."), row("Trial?", "27 months.", "4 months."),
                       row("Fare?", "I am not sure.", "It costs 14.60.")],
              "metrics": {"base": {}, "tuned": {}}}
    frame = _rows_frame(report)
    assert list(frame["question"]) == ["Trial?", "Leave?", "Fare?"]
    assert frame.iloc[0, 0] == "says 27; the reference says 4" and frame.iloc[1, 0] == ""
    table = format_table({**report, "metrics": {"base": aggregate(["", "", ""], ["a"] * 3, [score("", "a")] * 3),
                                                "tuned": {"n": 3, "wrong_value": 1 / 3}}})
    assert "States a wrong number or code (%) | 0.0 | 33.3 | +33.3 |" in table
