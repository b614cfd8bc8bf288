"""Did it learn? Train the default recipe on the fictional ferry facts and ask paraphrased questions.

    python bench/learn.py                       # the default recipe, sized to the data, as a user gets it
    python bench/learn.py --set training.epochs=8 --set method.r=32   # try a variant

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "sample_qa.csv"))
    parser.add_argument("--heldout", default=str(REPO / "bench" / "learning" / "heldout.csv"), help="reworded set")
    parser.add_argument("--everyday", default=str(REPO / "bench" / "learning" / "heldout_everyday.csv"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    parser.add_argument("--skip-base", action="store_true", help="answer with the tuned model only (faster)")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the forgetting check (faster)")
    args = parser.parse_args()

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
        base = ["" for _ in questions] if args.skip_base else model.generate_batch(questions, tuned=False,
                                                                                    max_new_tokens=48)
        tuned = model.generate_batch(questions, tuned=True, max_new_tokens=48)
        seen = [normalise(q) in taught for q in questions]
        sets[label] = {"questions": questions, "keys": keys, "tuned": tuned, "seen": seen,
                       "base_hits": key_hits(base, keys), "tuned_hits": key_hits(tuned, keys)}
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
        "base_hit_rate": base_rate, "tuned_hit_rate": rate,
        "train_seconds": round(status.get("train_seconds", 0), 1), "final_loss": round(losses[-1], 4),
        "forgetting_flag": forgetting.get("flag"), "epochs": recipe.training.epochs,
        "learning_rate": recipe.training.learning_rate, "r": recipe.method.r, "method": recipe.method.name,
        "tokens_per_s": next((m["tokens_per_s"] for m in reversed(read_metrics(run_dir)) if "tokens_per_s" in m), None),
        "peak_rss_mb": round(peak_rss_mb), "run_dir": str(run_dir),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
