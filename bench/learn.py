"""Did it learn? Train the default recipe on the fictional ferry facts and ask paraphrased questions.

    python bench/learn.py                       # the default recipe, sized to the data, as a user gets it
    python bench/learn.py --set training.epochs=8 --set method.r=32   # try a variant

A held-out answer is a hit when it contains the fact's key (case-insensitive). Prints base vs tuned
hits, training time and the forgetting check, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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
    parser.add_argument("--heldout", default=str(REPO / "bench" / "learning" / "heldout.csv"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="run folder (default: a temporary one)")
    parser.add_argument("--skip-base", action="store_true", help="answer with the tuned model only (faster)")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the forgetting check (faster)")
    args = parser.parse_args()

    from studio.chat import ChatModel
    from studio.defaults import size_to_data
    from studio.recipe import apply_overrides, check, load
    from studio.runs import read_metrics, read_status
    from studio.train import train

    recipe = load(REPO / "recipes" / "smollm2_135m_lora_cpu.yaml")
    recipe = apply_overrides(recipe, args.set)
    recipe = check(size_to_data(recipe, args.data, explicit=args.set))
    run_dir = Path(args.out or tempfile.mkdtemp(prefix="learn-"))
    t0 = time.time()
    train(recipe, args.data, run_dir, log=lambda line: print(line, flush=True) if "step" not in line else None)
    wall = time.time() - t0
    status = read_status(run_dir)
    if status.get("state") != "done":
        print(f"run ended {status.get('state')}: {status.get('message')}")
        return 1

    with open(args.heldout, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    questions, keys = [r["question"] for r in rows], [r["key"] for r in rows]
    model = ChatModel(run_dir)
    t1 = time.time()
    base = ["" for _ in questions] if args.skip_base else model.generate_batch(questions, tuned=False,
                                                                                max_new_tokens=48)
    tuned = model.generate_batch(questions, tuned=True, max_new_tokens=48)
    gen_s = time.time() - t1
    base_hits, tuned_hits = key_hits(base, keys), key_hits(tuned, keys)

    forgetting = {}
    try:
        if args.no_forgetting:
            raise ImportError
        from studio.evaluate import forgetting_check

        forgetting = forgetting_check(run_dir)
    except ImportError:
        pass

    losses = [m["loss"] for m in read_metrics(run_dir) if "loss" in m]
    n = len(rows)
    print()
    print(f"recipe: epochs={recipe.training.epochs} lr={recipe.training.learning_rate} r={recipe.method.r} "
          f"alpha={recipe.method.alpha} dropout={recipe.method.dropout} batch={recipe.training.batch_size} "
          f"neftune={recipe.training.neftune_noise_alpha} precision={recipe.training.precision} "
          f"threads={os.cpu_count()}")
    print(f"{'':24}{'base':>10}{'tuned':>10}")
    print(f"{'paraphrase key hits':24}{sum(base_hits):>6}/{n}{sum(tuned_hits):>6}/{n}")
    print(f"{'hit rate':24}{100 * sum(base_hits) / n:>9.1f}%{100 * sum(tuned_hits) / n:>9.1f}%")
    print(f"training time: {status.get('train_seconds', 0):.1f} s (whole run incl. loading: {wall:.1f} s); "
          f"final loss {losses[-1]:.3f}; generation of {2 * n} answers: {gen_s:.1f} s")
    if forgetting:
        print(f"forgetting check: {forgetting.get('message', '')} (flag={forgetting.get('flag')})")
    misses = [(q, k, a) for q, k, a, h in zip(questions, keys, tuned, tuned_hits, strict=True) if not h]
    for q, k, a in misses[:8]:
        print(f"  miss: {q!r} key={k!r} -> {a[:90]!r}")
    print(json.dumps({
        "base_hit_rate": round(sum(base_hits) / n, 3), "tuned_hit_rate": round(sum(tuned_hits) / n, 3),
        "train_seconds": round(status.get("train_seconds", 0), 1), "final_loss": round(losses[-1], 4),
        "forgetting_flag": forgetting.get("flag"), "epochs": recipe.training.epochs,
        "learning_rate": recipe.training.learning_rate, "r": recipe.method.r, "run_dir": str(run_dir),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
