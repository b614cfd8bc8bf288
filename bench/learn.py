"""Did it learn? Train the default recipe on the fictional ferry facts and ask paraphrased questions.

    python bench/learn.py                       # the default recipe, sized to the data, as a user gets it
    python bench/learn.py --set training.epochs=8 --set method.r=32   # try a variant
    python bench/learn.py --domains             # every domain, each in its own process: per domain, per fact type
    python bench/learn.py --open-book           # no training: the base model with the facts in its prompt

Two held-out sets ask each fact twice in words the training data does not use (bench/learning/README.md):
*everyday* questions keep the fact's own terms and change the question's form and order, as a customer
retypes a question; *reworded* questions change the terms too (synonyms, descriptions, a step of
inference). A held-out answer is a hit when it contains the fact's key (case-insensitive). Prints base
vs tuned hits on both, how many held-out questions the training data happened to contain word for word
(drafted rewrites and question forms can land on one) and the hits without them, training time and the
forgetting check, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def key_hits(answers: list[str], keys: list[str]) -> list[bool]:
    return [k.lower() in a.lower() for a, k in zip(answers, keys, strict=True)]


# The ferry facts are the ones the default recipe was tuned on; the others were written after it and never tuned on.
TUNED_ON = {"ferry", "hr_handbook"}  # the recipe was tuned on these; the others are held out
DOMAINS = REPO / "bench" / "learning" / "domains"


def domain_files() -> dict[str, tuple[Path, Path, Path]]:
    """{domain: (train, everyday, reworded)}."""
    out = {"ferry": (REPO / "assets" / "sample_qa.csv", REPO / "bench" / "learning" / "heldout_everyday.csv",
                     REPO / "bench" / "learning" / "heldout.csv")}
    for folder in sorted(p for p in DOMAINS.iterdir() if p.is_dir()):
        out[folder.name] = (folder / "train.csv", folder / "everyday.csv", folder / "reworded.csv")
    return out


def run_domains(overrides: list[str], only: list[str] | None = None, fast: bool = False) -> int:
    """Each domain in its own process (same recipe, same machine, one after the other), then the tables. `only`:
    these domains; `fast`: no base answers and no forgetting check (for trying a change on the tuning domains)."""
    import subprocess

    results = {}
    for name, (train_csv, everyday, reworded) in domain_files().items():
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        command = [sys.executable, __file__, "--data", str(train_csv), "--everyday", str(everyday), "--heldout",
                   str(reworded), *[f"--set={item}" for item in overrides],
                   *(["--skip-base", "--no-forgetting"] if fast else [])]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            print(proc.stdout[-2000:] + proc.stderr[-2000:])
            return 1
        results[name] = json.loads(lines[-1])
    print_domains(results)
    return 0


def _pct(hits: float, n: float) -> str:
    return f"{100 * hits / n:5.1f}%" if n else "    –"


def print_domains(results: dict) -> None:
    print(f"\n{'domain':20}{'tuned on':>9}{'everyday':>18}{'reworded':>18}{'values exact':>14}{'train s':>9}"
          f"{'forgetting':>12}")
    for name, r in results.items():
        base, tuned = r["base_hit_rate"], r["tuned_hit_rate"]
        exact, stated = r["values_exact"]
        print(f"{name:20}{'yes' if name in TUNED_ON else 'no':>9}"
              + "".join(f"{100 * base[s]:>8.1f}% →{100 * tuned[s]:>6.1f}%" for s in ("everyday", "reworded"))
              + f"{_pct(exact, stated):>14}{r['train_seconds']:>9.1f}"
              + f"{'flag' if r['forgetting_flag'] else 'ok':>12}")
    held = [r for name, r in results.items() if name not in TUNED_ON] or list(results.values())
    mean = {s: sum(r["tuned_hit_rate"][s] for r in held) / len(held) for s in ("everyday", "reworded")}
    base = {s: sum(r["base_hit_rate"][s] for r in held) / len(held) for s in ("everyday", "reworded")}
    exact = sum(r["values_exact"][0] for r in held), sum(r["values_exact"][1] for r in held)
    print(f"{'mean, held out':20}{'':>9}" + "".join(f"{100 * base[s]:>8.1f}% →{100 * mean[s]:>6.1f}%"
                                                      for s in ("everyday", "reworded")) + f"{_pct(*exact):>14}")
    kinds: dict = {}
    for r in held:
        for kind, sets in r["by_type"].items():
            for label, (hits, n) in sets.items():
                total = kinds.setdefault(kind, {}).setdefault(label, [0, 0])
                total[0] += hits
                total[1] += n
    print(f"\n{'fact type (held out)':20}{'questions':>10}{'everyday':>10}{'reworded':>10}")
    for kind, sets in sorted(kinds.items()):
        e, w = sets.get("everyday", [0, 0]), sets.get("reworded", [0, 0])
        print(f"{kind:20}{e[1] + w[1]:>10}{_pct(*e):>10}{_pct(*w):>10}")
    print(json.dumps({"domains": {name: {k: r[k] for k in ("base_hit_rate", "tuned_hit_rate", "values_exact",
                                                            "train_seconds", "forgetting_flag")}
                                  for name, r in results.items()},
                      "held_out_mean": {"base": base, "tuned": mean, "values_exact": list(exact)},
                      "by_type": kinds, "tuned_on": sorted(TUNED_ON)}))


def open_book(only: list[str] | None = None) -> int:
    """The ceiling of what a model this size can do with a fact it was not trained on but is shown: the base
    model answers each held-out question (1) with the one fact it asks about as its system prompt, and (2) with
    every fact of the domain (the uploaded answers) as its system prompt, as a retrieval-free "open book"."""
    from studio.chat import ChatModel
    from studio.evaluate import stated_values, value_mismatch

    model = ChatModel()
    results = {}
    print(f"open book, base model ({model.engine}): a hit = the answer contains the fact's key")
    print(f"{'domain':20}{'one fact: everyday':>20}{'reworded':>10}{'values':>8}{'whole book: everyday':>22}"
          f"{'reworded':>10}{'values':>8}")
    for name, (train_csv, everyday, reworded) in domain_files().items():
        if only and name not in only:
            continue
        with open(train_csv, encoding="utf-8") as fh:
            book = "Answer from these facts:\n" + "\n".join(f"- {r['answer']}" for r in csv.DictReader(fh))
        row = {}
        for label, path in (("everyday", everyday), ("reworded", reworded)):
            with open(path, encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            for mode in ("one fact", "whole book"):
                prompts = [[{"role": "system", "content": r["answer"] if mode == "one fact" else book},
                            {"role": "user", "content": r["question"]}] for r in rows]
                answers = model.generate_batch(prompts, tuned=False, max_new_tokens=48)
                hits = key_hits(answers, [r["key"] for r in rows])
                stating = [(a, r["answer"]) for a, r in zip(answers, rows, strict=True) if stated_values(a)]
                exact = sum(value_mismatch(a, ref) is None for a, ref in stating)
                row[mode, label] = (sum(hits), len(rows), exact, len(stating))
        results[name] = row
        cells = []
        for mode, width in (("one fact", 20), ("whole book", 22)):
            cells += [_pct(*row[mode, "everyday"][:2]).rjust(width), _pct(*row[mode, "reworded"][:2]).rjust(10),
                      _pct(sum(row[mode, s][2] for s in ("everyday", "reworded")),
                           sum(row[mode, s][3] for s in ("everyday", "reworded"))).rjust(8)]
        print(f"{name:20}" + "".join(cells), flush=True)
    print(json.dumps({"open_book": {name: {f"{m}|{s}": list(v) for (m, s), v in row.items()}
                                    for name, row in results.items()}}))
    return 0


def by_type(sets: dict) -> dict:
    """{type: {set: [tuned hits, questions]}}: which kinds of fact (number, date, name, code, multi) carry over."""
    out: dict = {}
    for label, r in sets.items():
        for kind, hit in zip(r["types"], r["tuned_hits"], strict=True):
            counts = out.setdefault(kind, {}).setdefault(label, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
    return out


def values_exact(sets: dict) -> list[int]:
    """[exact, stated]: of the tuned answers that state a number or code, how many state only the reference's (a
    confidently wrong value, "28 days" for 27, is the worst answer a domain expert can get)."""
    from studio.evaluate import stated_values, value_mismatch

    stated = exact = 0
    for r in sets.values():
        for answer, reference in zip(r["tuned"], r["references"], strict=True):
            if reference and stated_values(answer):
                stated += 1
                exact += value_mismatch(answer, reference) is None
    return [exact, stated]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "sample_qa.csv"))
    parser.add_argument("--heldout", default=str(REPO / "bench" / "learning" / "heldout.csv"), help="reworded set")
    parser.add_argument("--everyday", default=str(REPO / "bench" / "learning" / "heldout_everyday.csv"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    parser.add_argument("--skip-base", action="store_true", help="answer with the tuned model only (faster)")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the forgetting check (faster)")
    parser.add_argument("--domains", action="store_true",
                        help="every domain (the ferry facts and bench/learning/domains/*), each in its own process "
                        "with the same --set, then the per-domain and per-type tables and one JSON line")
    parser.add_argument("--only", help="with --domains: a comma-separated list of domains (e.g. ferry,hr_handbook)")
    parser.add_argument("--open-book", action="store_true",
                        help="no training: the base model answers every domain's held-out questions with the facts "
                        "in its prompt (the one fact asked about, then all of them): the ceiling per domain")
    args = parser.parse_args()
    if args.open_book:
        return open_book([d.strip() for d in args.only.split(",")] if args.only else None)
    if args.domains:
        only = [d.strip() for d in args.only.split(",")] if args.only else None
        return run_domains(args.set, only, fast=args.skip_base and args.no_forgetting)

    from studio.chat import ChatModel
    from studio.defaults import size_to_data
    from studio.recipe import apply_overrides, check, load
    from studio.runs import read_jsonl, read_metrics, read_status
    from studio.train import train

    recipe = load(REPO / "recipes" / "smollm2_135m_lora_cpu.yaml")
    recipe = apply_overrides(recipe, args.set)
    recipe = check(size_to_data(recipe, args.data, explicit=args.set))
    run_dir = Path(args.out or tempfile.mkdtemp(prefix="learn-"))
    t0 = time.time()
    train(recipe, args.data, run_dir, log=lambda line: print(line, flush=True) if "step" not in line else None)
    wall = time.time() - t0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training's peak, before any answer
    status = read_status(run_dir)
    if status.get("state") != "done":
        print(f"run ended {status.get('state')}: {status.get('message')}")
        return 1

    from studio.question_forms import normalise

    taught = {normalise(r["messages"][0]["content"]) for name in ("train", "paraphrases", "question_forms")
              for r in read_jsonl(run_dir / "data" / f"{name}.jsonl")}  # a file the run did not write reads empty
    model = ChatModel(run_dir)
    t1 = time.time()
    sets = {}
    for label, path in (("everyday", args.everyday), ("reworded", args.heldout)):
        with open(path, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        questions, keys = [r["question"] for r in rows], [r["key"] for r in rows]
        types, references = [r.get("type") or "other" for r in rows], [r.get("answer", "") for r in rows]
        base = ["" for _ in questions] if args.skip_base else model.generate_batch(questions, tuned=False,
                                                                                    max_new_tokens=48)
        tuned = model.generate_batch(questions, tuned=True, max_new_tokens=48)
        seen = [normalise(q) in taught for q in questions]
        sets[label] = {"questions": questions, "keys": keys, "tuned": tuned, "seen": seen, "types": types,
                       "references": references, "base_hits": key_hits(base, keys), "tuned_hits": key_hits(tuned, keys)}
    gen_s = time.time() - t1

    forgetting = {}
    try:
        if args.no_forgetting:
            raise ImportError
        from studio.evaluate import forgetting_check

        forgetting = forgetting_check(run_dir)
    except ImportError:
        pass

    losses = [m["loss"] for m in read_metrics(run_dir) if "loss" in m]
    print()
    print(f"recipe: epochs={recipe.training.epochs} lr={recipe.training.learning_rate} r={recipe.method.r} "
          f"alpha={recipe.method.alpha} dropout={recipe.method.dropout} batch={recipe.training.batch_size} "
          f"neftune={recipe.training.neftune_noise_alpha} precision={recipe.training.precision} "
          f"threads={os.cpu_count()}")
    print(f"{'':36}{'base':>10}{'tuned':>10}")
    for label, r in sets.items():
        n, b, t = len(r["keys"]), sum(r["base_hits"]), sum(r["tuned_hits"])
        print(f"{label + ' questions: key hits':36}{b:>6}/{n}{t:>6}/{n}")
        print(f"{'  hit rate':36}{100 * b / n:>9.1f}%{100 * t / n:>9.1f}%")
        unseen = [h for h, seen in zip(r["tuned_hits"], r["seen"], strict=True) if not seen]
        print(f"  {sum(r['seen'])} asked word for word in the training data; tuned on the other {len(unseen)}: "
              f"{100 * sum(unseen) / max(len(unseen), 1):.1f}%")
    print(f"training time: {status.get('train_seconds', 0):.1f} s (whole run with loading, drafting: {wall:.1f} s); "
          f"final loss {losses[-1]:.3f}; generation of {2 * sum(len(r['keys']) for r in sets.values())} answers: "
          f"{gen_s:.1f} s")
    if forgetting:
        print(f"forgetting check: {forgetting.get('message', '')} (flag={forgetting.get('flag')})")
    for label, r in sets.items():
        misses = [(q, k, a) for q, k, a, h in zip(r["questions"], r["keys"], r["tuned"], r["tuned_hits"], strict=True)
                  if not h]
        for q, k, a in misses[:6]:
            print(f"  {label} miss: {q!r} key={k!r} -> {a[:90]!r}")
    rate = {label: round(sum(r["tuned_hits"]) / len(r["keys"]), 3) for label, r in sets.items()}
    base_rate = {label: round(sum(r["base_hits"]) / len(r["keys"]), 3) for label, r in sets.items()}
    print(json.dumps({
        "base_hit_rate": base_rate, "tuned_hit_rate": rate, "by_type": by_type(sets),
        "values_exact": values_exact(sets),
        "train_seconds": round(status.get("train_seconds", 0), 1), "final_loss": round(losses[-1], 4),
        "forgetting_flag": forgetting.get("flag"), "epochs": recipe.training.epochs,
        "learning_rate": recipe.training.learning_rate, "r": recipe.method.r, "method": recipe.method.name,
        "tokens_per_s": next((m["tokens_per_s"] for m in reversed(read_metrics(run_dir)) if "tokens_per_s" in m), None),
        "peak_rss_mb": round(peak_rss_mb), "run_dir": str(run_dir),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
