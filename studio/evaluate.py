"""Evaluation: base and tuned answers side by side, scored against reference answers.

The question a domain expert asks is "did it learn my answers, and did it forget anything else?", so
every report puts the base model (the same weights with the adapter off) beside the tuned one, with the
same greedy decoding, and scores both with the same metrics: exact match and "contains the answer" for
short facts, ROUGE-L and BLEU for wording. A model that learned nothing scores the same on both sides.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from studio import runs
from studio.data import SYNONYMS, TURN_KEYS, DataReport, Example, cell, find_column, load_data, norm, read_records
from studio.paths import ASSETS

GENERAL_PROMPTS = ASSETS / "general_prompts.jsonl"

LEAK_ROUGE = 0.5  # a general answer this close to a taught answer is the taught answer repeated
LEAK_LIMIT = 0.30  # share of general answers that may leak before the check raises a flag
KEYWORD_DROP = 0.25  # fall in keyword hit-rate (base -> tuned) that raises a flag

_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’«»–—…"})
_rouge = None


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces, whitespace collapsed: "Paris." and "paris" are the same answer."""
    return " ".join(str(text).lower().translate(_PUNCT).split())


def _rouge_l(prediction: str, reference: str) -> float:
    global _rouge
    if _rouge is None:
        from rouge_score import rouge_scorer

        _rouge = rouge_scorer.RougeScorer(["rougeL"])
    return _rouge.score(reference, prediction)["rougeL"].fmeasure


# A stated value: a number ("27", "14.60", "6:40", "1,000") or a code with a digit in it ("AB-123", "zorb7").
_VALUE = re.compile(r"(?:[A-Za-z]+[-/])?[A-Za-z]*\d(?:\w|[.,:/-](?=\w))*")


def stated_values(text: str) -> set[str]:
    """The numbers and codes a text states, as compared: lower case, "1,000" as "1000"."""
    return {re.sub(r"(?<=\d),(?=\d{3}\b)", "", v).lower() for v in _VALUE.findall(str(text or ""))}


def value_mismatch(prediction: str, reference: str) -> str | None:
    """"says 28; the reference says 27" when the answer states a number or code the reference does not, in place
    of one the reference states: a confidently wrong value, the most dangerous miss a domain expert can get. An
    answer that states no value at all is a plain miss, not this."""
    expected, stated = stated_values(reference), stated_values(prediction)
    missing, extra = sorted(expected - stated), sorted(stated - expected)
    if not (missing and extra):
        return None
    return f"says {', '.join(extra[:3])}; the reference says {', '.join(missing[:3])}"


def score(prediction: str, reference: str, key: str | None = None) -> dict:
    """Scores of one answer against one reference, each from 0 to 1.

    `contains` asks whether the fact is there at all, whatever the wording around it: with a `key` (such
    as "1873") it checks for the key, otherwise for the whole normalised reference. With no reference only
    `contains` (from the key) can be scored; the other scores are None.
    """
    pred = normalize(prediction)
    ref = normalize(reference or "")
    out: dict = {"exact": None, "contains": None, "rouge_l": None, "bleu": None,
                 "mismatch": value_mismatch(prediction, reference or key or "") if (reference or key) else None}
    if key is not None and normalize(key):
        out["contains"] = normalize(key) in pred
    elif ref:
        out["contains"] = ref in pred
    if ref:
        from sacrebleu import sentence_bleu

        out["exact"] = pred == ref
        out["rouge_l"] = round(float(_rouge_l(prediction, reference)), 4)
        out["bleu"] = round(sentence_bleu(prediction, [reference]).score / 100, 4)
    return out


def aggregate(predictions: list[str], references: list[str] | None, scores: list[dict]) -> dict:
    """Rates and means over per-answer scores; BLEU over the whole corpus, as papers report it.

    Corpus BLEU pools n-gram counts over all answers, so a few short answers do not swing it the way a mean
    of sentence BLEU does. Entries that could not be scored (None) are left out of each figure.
    """

    def mean(name: str) -> float | None:
        values = [float(s[name]) for s in scores if s.get(name) is not None]
        return round(sum(values) / len(values), 4) if values else None

    bleu = None
    pairs = [(p, r) for p, r in zip(predictions, references or [], strict=False) if r and str(r).strip()]
    if pairs:
        from sacrebleu import corpus_bleu

        bleu = round(corpus_bleu([p for p, _ in pairs], [[r for _, r in pairs]]).score / 100, 4)
    scored = [s for s in scores if s.get("contains") is not None]
    wrong = round(sum(bool(s.get("mismatch")) for s in scored) / len(scored), 4) if scored else None
    return {"n": len(predictions), "exact": mean("exact"), "contains": mean("contains"), "rouge_l": mean("rouge_l"),
            "bleu": bleu, "wrong_value": wrong}


def _eval_loss(run_dir: Path) -> float | None:
    """The run's final eval loss: status.json's if the run finished, else the last one in metrics.jsonl."""
    loss = runs.read_status(run_dir).get("eval_loss")
    if loss is None:
        losses = [m["eval_loss"] for m in runs.read_metrics(run_dir) if m.get("eval_loss") is not None]
        loss = losses[-1] if losses else None
    return float(loss) if loss is not None and math.isfinite(loss) else None


def _perplexity(loss: float | None) -> float | None:
    if loss is None or loss > 700:  # exp() would overflow; such a loss means nothing was learned anyway
        return None
    return round(math.exp(loss), 4)


Progress = Callable[[int, int, list[dict]], None]  # (questions answered, of how many, the rows so far)


def answer_in_chunks(run_dir: Path, prompts: list[str], max_new_tokens: int, progress: Progress | None = None,
                     row: Callable[[int, str, str], dict] = lambda i, b, t: {"base": b, "tuned": t},
                     turn: Callable[[], AbstractContextManager] = nullcontext) -> list[dict]:
    """Base and tuned replies, a few questions at a time, so a page can show "question 12 of 26" and fill its table
    as rows come: the first chunk is small (rows on screen within seconds), later ones batch more for speed. Each
    chunk takes its own `turn` on the shared weights, so a chat waits for one chunk, not a whole evaluation."""
    from studio.chat import get_chat_model

    rows: list[dict] = []
    while len(rows) < len(prompts):
        chunk = prompts[len(rows):len(rows) + (CHUNK_FIRST if not rows else CHUNK)]
        with turn():  # loading included: two loads at once would share the model cache
            model = get_chat_model(run_dir)
            base, tuned = (model.generate_batch(chunk, tuned=side, max_new_tokens=max_new_tokens)
                           for side in (False, True))
        rows += [row(len(rows) + i, b, t) for i, (b, t) in enumerate(zip(base, tuned, strict=True))]
        if progress:
            progress(len(rows), len(prompts), rows)
    return rows


CHUNK_FIRST, CHUNK = 4, 16


def evaluate_questions(run_dir: str | Path, questions: list[str], references: list[str] | None = None,
                       keys: list[str | None] | None = None, max_new_tokens: int = 96,
                       progress: Progress | None = None, turn: Callable[[], AbstractContextManager] = nullcontext
                       ) -> dict:
    """Answer every question with the base and the tuned model (greedy) and score both sides alike.

    `progress` hears (0, n, []) before the model loads, then each chunk's scored rows as they come; `turn` is
    taken around each chunk (see answer_in_chunks)."""
    run_dir = Path(run_dir)
    questions = [str(q) for q in questions]
    refs = list(references) if references is not None else [""] * len(questions)
    keys = list(keys) if keys is not None else [None] * len(questions)
    if not (len(refs) == len(keys) == len(questions)):
        raise ValueError("questions, references and keys must have the same length.")
    loss = _eval_loss(run_dir)
    report: dict = {"rows": [], "metrics": {"base": {}, "tuned": {}}, "eval_loss": loss,
                    "perplexity": _perplexity(loss), "max_new_tokens": max_new_tokens,
                    "has_references": any(str(r).strip() for r in refs) or any(k is not None for k in keys)}
    if not questions:
        report["message"] = "There are no questions to answer."
        return report
    if progress:
        progress(0, len(questions), [])

    def row(i: int, base: str, tuned: str) -> dict:
        out = {"question": questions[i], "answer": refs[i], "base": base, "tuned": tuned,
               "base_scores": score(base, refs[i], keys[i]), "tuned_scores": score(tuned, refs[i], keys[i])}
        return out | ({"key": keys[i]} if keys[i] is not None else {})

    report["rows"] = answer_in_chunks(run_dir, questions, max_new_tokens, progress, row, turn)
    for side in ("base", "tuned"):
        texts = [r[side] for r in report["rows"]]
        report["metrics"][side] = (aggregate(texts, refs, [r[f"{side}_scores"] for r in report["rows"]])
                                   if report["has_references"] else {"n": len(questions)})
    return report


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and non-blank records, read as training files are read.

    Training can leave out a broken row and say so; an evaluation reports scores, not row problems, so the first
    thing the reader could not use stops it with the reader's own reason.
    """
    reading = DataReport(path=str(path))
    table = read_records(path, None, reading)
    if table is None or reading.problems:
        raise ValueError(f"Cannot read {path.name} as a table of questions: {reading.problems[0].message} "
                         "Use a CSV, Excel, JSON or JSONL file with a 'question' column.")
    header, records = table
    return header, [(n, rec) for n, rec in records if any(_text(v) for v in rec.values())]


def _text(value) -> str:
    return cell(value).strip()


def evaluate_file(run_dir: str | Path, data_file: str | Path, max_new_tokens: int = 96,
                  max_questions: int | None = None, progress: Progress | None = None,
                  turn: Callable[[], AbstractContextManager] = nullcontext) -> dict:
    """Evaluate on a file of questions, with reference answers (scored) or without (answers only).

    A `key` column names the fact an answer must contain ("1873"); it makes `contains` robust to answers
    that state the fact in other words than the reference.
    """
    path = Path(data_file)
    if not path.is_file():
        raise ValueError(f"The evaluation file {path} does not exist.")
    header, records = _read_table(path)
    if not records:
        raise ValueError(f"{path.name} has no rows. Add one question per row under a 'question' header.")
    # Unlike load_data, no answer column is guessed from the second column: here it must be named.
    turns = next((c for c in header if norm(c) in TURN_KEYS), None)
    qcol = find_column(header, SYNONYMS["question"]) or header[0]
    acol = find_column(header, SYNONYMS["answer"] + SYNONYMS["reference"], taken=[qcol])
    kcol = find_column(header, SYNONYMS["key"], taken=[qcol])
    keys = None
    if acol or turns:
        report = load_data(path, columns=None if turns else {"question": qcol, "answer": acol})
        if not report.ok:
            raise ValueError(f"{path.name} cannot be used for evaluation: {report.summary()}")
        questions = [e.question for e in report.examples]
        references = [e.answer for e in report.examples]
        if kcol:
            by_row = dict(records)
            keys = [_key_for(by_row.get(e.row), qcol, kcol, e) for e in report.examples]
    else:
        rows = [(_text(rec.get(qcol)), _text(rec.get(kcol)) if kcol else None) for _, rec in records]
        rows = [(q, k) for q, k in rows if q]
        if not rows:
            raise ValueError(f"{path.name} has no questions in its column '{qcol}'.")
        questions = [q for q, _ in rows]
        references = None
        keys = [k or None for _, k in rows] if kcol else None
    if max_questions is not None and len(questions) > max_questions:
        raise ValueError(f"{path.name} has {len(questions):,} questions; this studio answers at most {max_questions:,} "
                         "in one evaluation (STUDIO_MAX_EVAL_QUESTIONS). Split the file.")
    result = evaluate_questions(run_dir, questions, references, keys, max_new_tokens, progress, turn)
    result["source"] = path.name
    return result


def _key_for(record: dict | None, qcol: str, kcol: str, example: Example) -> str | None:
    """The key on the example's own row (load_data numbers rows as the reader does), if it asks the same question.

    A conversation's question need not be in the question column, and then no key is taken from that row.
    """
    if record is not None and _text(record.get(qcol)) == example.question.strip():
        return _text(record.get(kcol)) or None
    return None


RECALL_LIMIT = 50
REWORDED = "your questions asked in other words (never trained on)"


def _corrected(run_dir: Path) -> list[Example]:
    """The questions an expert corrected, where this run trained on a revision with their corrections
    (`studio.corrections`): asked after training too, to show whether each correction took."""
    from studio.recipe import load as load_recipe

    try:
        data = run_dir / "data" / Path(load_recipe(run_dir / "recipe.yaml").data.path).name
    except (OSError, ValueError):
        return []
    if data.suffix != ".jsonl" or not data.is_file():
        return []
    return [Example(r["messages"], 0) for r in runs.read_jsonl(data) if r.get("corrected") and r.get("messages")]


def evaluate_heldout(run_dir: str | Path, max_new_tokens: int = 96, progress: Progress | None = None,
                     turn: Callable[[], AbstractContextManager] = nullcontext) -> dict:
    """Evaluate on the run's own held-out split (`data/eval.jsonl`) and keep the report as `eval.json`."""
    run_dir = Path(run_dir)
    def read(name: str) -> list[Example]:
        return [Example(r["messages"], r.get("row", 0)) for r in runs.read_jsonl(run_dir / "data" / name)
                if r.get("messages")]

    examples, source = read("eval.jsonl"), "held-out split"
    if not examples and (examples := read("reworded.jsonl")):
        # A small upload holds no question out; its questions reworded (and never trained on) stand in for them.
        source = REWORDED
    if not examples:  # a run from before reworded checks, or questions no rule could reword
        examples, source = read("train.jsonl")[:RECALL_LIMIT], "training questions (recall; nothing was held out)"
    first_corrected = len(examples)
    examples += _corrected(run_dir)
    report = evaluate_questions(run_dir, [e.question for e in examples], [e.answer for e in examples],
                                max_new_tokens=max_new_tokens, progress=progress, turn=turn)
    for row in report["rows"][first_corrected:]:
        row["corrected"] = True
    report["source"] = source
    if source == REWORDED:
        report["message"] = ("Your upload was too small to hold questions out, so Studio reworded each of your "
                             "questions and kept the rewording out of training: these test whether the tuned model "
                             "answers your questions asked in other words.")
    elif source.startswith("training"):
        report["message"] = ("This run held out no examples, so these are its own training questions: they show "
                             "what it recalls, not how it generalises. Upload paraphrased questions to test that.")
    runs.write_json_atomic(run_dir / "eval.json", report)
    return report


def _hit(answer: str, keywords: list[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<!\w){re.escape(k.lower())}(?!\w)", text) for k in keywords if k.strip())


def _leaks(answer: str, taught: list[str]) -> float:
    """Highest ROUGE-L of `answer` to any taught answer."""
    return max((_rouge_l(answer, t) for t in taught), default=0.0)


def forgetting_check(run_dir: str | Path, prompts_file: str | Path = GENERAL_PROMPTS,
                     max_new_tokens: int = 48, progress: Progress | None = None) -> dict:
    """Did tuning damage general knowledge? Base vs tuned on general questions the data never mentions.

    Two symptoms: the tuned model gets fewer general questions right (keyword hit-rate falls), and it
    answers unrelated questions with taught answers ("leakage"), the usual sign of too many epochs.
    """

    run_dir = Path(run_dir)
    items = [r for r in runs.read_jsonl(Path(prompts_file)) if r.get("prompt")]
    if not items:
        raise ValueError(f"{Path(prompts_file).name} holds no prompts "
                         '(lines of {"prompt": ..., "keywords": [...]}).')
    taught = sorted({Example(r["messages"], 0).answer for r in runs.read_jsonl(run_dir / "data" / "train.jsonl")
                     if r.get("messages")} - {""})
    prompts = [r["prompt"] for r in items]
    if progress:
        progress(0, len(prompts), [])

    def row(i: int, base: str, tuned: str) -> dict:
        keywords = [str(k) for k in items[i].get("keywords", [])]
        out = {"prompt": prompts[i], "keywords": keywords, "base": base, "tuned": tuned}
        for side, answer in (("base", base), ("tuned", tuned)):
            out |= {f"{side}_hit": _hit(answer, keywords), f"{side}_leak": round(_leaks(answer, taught), 4)}
        return out

    rows = answer_in_chunks(run_dir, prompts, max_new_tokens, progress, row)
    n = len(rows)
    report = {
        "n": n,
        "base_hits": round(sum(r["base_hit"] for r in rows) / n, 4),
        "tuned_hits": round(sum(r["tuned_hit"] for r in rows) / n, 4),
        "base_leakage": round(sum(r["base_leak"] > LEAK_ROUGE for r in rows) / n, 4),
        "leakage": round(sum(r["tuned_leak"] > LEAK_ROUGE for r in rows) / n, 4),
        "rows": rows,
    }
    report.update(_forgetting_verdict(report))
    runs.write_json_atomic(run_dir / "forgetting.json", report)
    return report


def _forgetting_verdict(report: dict) -> dict:
    drop = report["base_hits"] - report["tuned_hits"]
    problems = []
    if drop > KEYWORD_DROP:
        problems.append(f"the tuned model answers {drop:.0%} fewer general questions correctly than the base model")
    if report["leakage"] > LEAK_LIMIT:
        problems.append(f"{report['leakage']:.0%} of its answers to unrelated questions repeat taught answers")
    if not problems:
        return {"flag": False, "message": (f"No sign of forgetting: general questions right {report['base_hits']:.0%} "
                                           f"(base) vs {report['tuned_hits']:.0%} (tuned); taught answers repeated "
                                           f"in {report['leakage']:.0%} of general answers.")}
    return {"flag": True, "message": ("Possible forgetting: " + " and ".join(problems) + ". Train fewer epochs or "
                                      "with a lower learning rate, or mix some general Q&A into the data.")}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _delta(base: float | None, tuned: float | None) -> str:
    return "–" if base is None or tuned is None else f"{100 * (tuned - base):+.1f}"


def verdict(report: dict) -> str:
    """The one line a domain expert reads first: how many questions the tuned model answered with the reference's
    fact, next to the base model, named for what they test; a recall of training questions never reads as a test."""
    rows = [r for r in report.get("rows", []) if r.get("tuned_scores", {}).get("contains") is not None]
    if not rows:
        return ""
    tuned, base = (sum(bool(r[f"{side}_scores"]["contains"]) for r in rows) for side in ("tuned", "base"))
    source = report.get("source", "")
    what = ("your questions asked in other words" if source == REWORDED else
            "the questions it was trained on (recall only: not a test of other wordings)"
            if source.startswith("training") else "the held-out questions" if source == "held-out split" else
            "these questions")
    return f"Answers {what}: {tuned} of {len(rows)} (before training: {base} of {len(rows)})"


def format_table(report: dict) -> str:
    """Base vs tuned as a Markdown table that also reads as plain text, figures x100 as in the LoRA paper."""
    base, tuned = report.get("metrics", {}).get("base", {}), report.get("metrics", {}).get("tuned", {})
    n = tuned.get("n", base.get("n", len(report.get("rows", []))))
    lines = [f"Evaluation on {report.get('source', 'questions')}: {n} question{'s' * (n != 1)}."]
    if headline := verdict(report):
        lines = [f"### {headline}", "", *lines]
    if report.get("message"):
        lines.append(report["message"])
    lines += ["", "| Metric | Base | Tuned | Change |", "|---|---:|---:|---:|"]
    if report.get("has_references", True):
        for label, name in (("Exact match (%)", "exact"), ("Contains answer (%)", "contains"),
                            ("ROUGE-L (x100)", "rouge_l"), ("BLEU (x100)", "bleu")):
            lines.append(f"| {label} | {_pct(base.get(name))} | {_pct(tuned.get(name))} | "
                         f"{_delta(base.get(name), tuned.get(name))} |")
        if tuned.get("wrong_value") is not None:  # lower is better: a wrong number stated as fact
            wrong = base.get("wrong_value"), tuned.get("wrong_value")
            lines.append(f"| ⚠ States a wrong number or code (%) | {_pct(wrong[0])} | {_pct(wrong[1])} | "
                         f"{_delta(*wrong)} |")
    loss, ppl = report.get("eval_loss"), report.get("perplexity")
    lines.append(f"| Eval loss (held-out) | – | {'–' if loss is None else f'{loss:.4f}'} | |")
    lines.append(f"| Perplexity (held-out) | – | {'–' if ppl is None else f'{ppl:.2f}'} | |")
    if report.get("rows") and not report.get("has_references", True):
        lines += ["", "The file has no reference answers, so the answers are not scored; compare them by reading."]
    return "\n".join(lines)


def format_forgetting(report: dict) -> str:
    """The forgetting check as a short Markdown table with its verdict."""
    return "\n".join([
        "| Check | Base | Tuned |", "|---|---:|---:|",
        f"| General questions right (%) | {_pct(report.get('base_hits'))} | {_pct(report.get('tuned_hits'))} |",
        f"| Repeats taught answers (%) | {_pct(report.get('base_leakage'))} | {_pct(report.get('leakage'))} |",
        "", ("⚠ " if report.get("flag") else "") + report.get("message", ""),
    ])

