"""The expert's loop from the command line: correct answers, train again, compare runs, queue runs, sweep a setting.

The same functions the Evaluate and Runs tabs call; `queue --run` and `sweep` work through the runs queue in this
process, so a machine without the app running (a server over SSH) closes the loop too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from studio.runs import RunNotFound, resolve_run_path


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_compare(args) -> int:
    from studio.compare import compare, describe

    try:
        result = compare([resolve_run_path(r) for r in args.run_dirs])
    except (RunNotFound, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(result, indent=1, default=str) if args.json else describe(result))
    return 0


def cmd_correct(args) -> int:
    from studio.corrections import CorrectionError, record

    try:
        entry = record(resolve_run_path(args.run_dir), args.question, args.answer, args.right, args.correction or "",
                       source="cli")
    except (RunNotFound, CorrectionError) as exc:
        return _fail(str(exc))
    print(json.dumps(entry, ensure_ascii=False))
    return 0


def cmd_preferences(args) -> int:
    from studio.corrections import CorrectionError, write_preferences

    try:
        out = write_preferences(resolve_run_path(args.run_dir), Path(args.out))
    except (RunNotFound, CorrectionError) as exc:
        return _fail(str(exc))
    print(out)
    return 0


def cmd_train_again(args) -> int:
    from studio import runs
    from studio.corrections import CorrectionError, train_again
    from studio.train import train

    try:
        recipe, data = train_again(resolve_run_path(args.run_dir), args.continue_training)
    except (RunNotFound, CorrectionError) as exc:
        return _fail(str(exc))
    print(f"data revision: {data}", file=sys.stderr)
    run_dir = train(recipe, data, Path(args.out) if args.out else runs.new_run_dir(data.stem))
    status = runs.read_status(run_dir)
    print(f"{status.get('state')}: {status.get('message')}", file=sys.stderr)
    print(run_dir)
    return 0 if status.get("state") == "done" else 1


def _print_rows(rows: list[dict], as_json: bool, empty: str, line) -> int:
    """A listing as JSON, or one `line(row)` each (`empty` when there is none)."""
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join(line(r) for r in rows) if rows else empty)
    return 0


def _recipe_for(args):
    from studio.recipe import load
    from studio.service import sized_recipe

    return sized_recipe(args.data, load(args.recipe) if args.recipe else None, args.set or [])


def cmd_queue(args) -> int:
    from studio import loop, service
    from studio.jobs import jobs

    try:
        if args.cancel:
            loop.queue_cancel(args.cancel)
        if args.move:
            loop.queue_move(args.move[0], int(args.move[1]))
    except (service.UserError, ValueError) as exc:
        return _fail(str(exc))
    if args.run:
        waiting = len(loop.queue())
        print(f"Working through the queue: {waiting} run(s) waiting.", file=sys.stderr)
        jobs.drain()
        return 0
    return _print_rows(loop.queue(), args.json, "No runs are waiting in the queue.",
                       lambda r: f"{r['position']:>2}. {r['run_id']:44} {r['data']:24} r {r['r']!s:4} "
                                 f"epochs {r['epochs']!s:4} LR {r['learning_rate']}")


def cmd_sweep(args) -> int:
    from studio import loop, service, sweep
    from studio.compare import compare, describe
    from studio.jobs import jobs
    from studio.paths import runs_dir
    from studio.recipe import RecipeError

    if not args.data or not Path(args.data).is_file():
        return _fail("--data FILE is required and must exist: the Q&A file every run of the sweep trains on.")
    try:
        recipe = _recipe_for(args)
        if args.dry_run:
            print(loop.plan_sweep(recipe, args.data, args.setting, args.values)["text"])
            return 0
        started = loop.start_sweep(recipe, args.data, args.setting, args.values)
    except RecipeError as exc:
        return _fail("the recipe has problems:\n  " + "\n  ".join(exc.problems))
    except service.UserError as exc:
        return _fail(str(exc))
    print(f"{started['id']}: {started['text']}", file=sys.stderr)
    jobs.drain()
    info = loop.sweep_progress(started["id"])
    result = compare([runs_dir() / r for r in info["runs"]]) if len(info["runs"]) > 1 else None
    if args.json:
        print(json.dumps(info | {"comparison": result}, indent=1, default=str))
    else:
        print(describe(result) if result else "")
        print("\n" + sweep.describe(info))
        if info["best"]:
            print(f"Use these settings: python -m studio train --data {args.data} "
                  f"{runs_dir() / info['best'] / 'recipe.yaml'}")
    return 0 if info["best"] else 1


def cmd_judge(args) -> int:
    from studio import loop, service
    from studio.judge import summary_line

    def progress(done: int, total: int) -> None:
        print(f"\rjudged {done} of {total}", end="", file=sys.stderr, flush=True)

    try:
        report = loop.judge(resolve_run_path(args.run_dir), args.endpoint or "", args.model or "",
                               progress=progress)
    except (service.UserError, RunNotFound) as exc:
        return _fail(str(exc))
    print("", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 0
    print(summary_line(report))
    for row in report["rows"]:
        if row["grade"] != "correct":
            print(f"  {row['grade']}: {row['question']}\n    {row['reason']}")
    return 0


def cmd_revisions(args) -> int:
    from studio import loop, service

    try:
        rows = loop.revisions_table(resolve_run_path(args.run_dir))
    except (service.UserError, RunNotFound) as exc:
        return _fail(str(exc))
    return _print_rows(rows, args.json, "No revisions yet: mark answers wrong with the right ones, then train again.",
                       lambda r: f"{r['file']:40} {r['rows']:>5} rows, {r['added']} added, {r['edited']} edited  "
                                 f"{r['when']}  sha256 {r['sha256'][:12]}")


def add_loop_commands(sub) -> None:
    """The loop's subcommands, on the main parser."""
    p = sub.add_parser("correct", help="Mark a tuned answer right, or wrong with the right answer; the next "
                       "train-again learns it.")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("question")
    p.add_argument("--answer", default="", help="the model's answer being marked")
    mark = p.add_mutually_exclusive_group(required=True)
    mark.add_argument("--right", action="store_true", help="the answer is right")
    mark.add_argument("--correction", help="the answer is wrong; this is the right one")
    p.set_defaults(func=cmd_correct)

    p = sub.add_parser("preferences", help="Write RUN's wrong answers and their corrections as preference pairs "
                       "(prompt, chosen, rejected) for DPO or ORPO on top of it (method.init_adapter=RUN).")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--out", required=True, help="the CSV file to write")
    p.set_defaults(func=cmd_preferences)

    p = sub.add_parser("train-again", help="Train a new run from RUN's recipe on its data with every correction in "
                       "it (a new revision beside the upload).")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--continue", dest="continue_training", action="store_true",
                   help="keep training RUN's adapter instead of starting a fresh one")
    p.add_argument("--out", help="Run folder (default: a new folder under STUDIO_HOME/runs).")
    p.set_defaults(func=cmd_train_again)

    p = sub.add_parser("compare", help="Compare runs: the settings that differ, held-out questions answered, loss, "
                       "and which questions improved or regressed from the first run to the others.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="two or more runs (folder or run name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("revisions", help="List the revisions of RUN's data made from corrections (files under "
                       "RUN/revisions/, each with its hash and what changed).")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_revisions)

    p = sub.add_parser("judge", help="Grade RUN's held-out answers with a larger model behind an OpenAI-compatible "
                       "endpoint (correct / partly / wrong, with a reason); key: STUDIO_JUDGE_API_KEY.")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--endpoint", help="e.g. http://localhost:11434/v1 (default: STUDIO_JUDGE_ENDPOINT)")
    p.add_argument("--model", help="the judge model's name (default: STUDIO_JUDGE_MODEL)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("queue", help="List the runs waiting to train; move or cancel one; or work through them "
                       "here (--run).")
    p.add_argument("--cancel", metavar="RUN", help="take a waiting run out of the queue")
    p.add_argument("--move", nargs=2, metavar=("RUN", "POSITION"), help="put a waiting run at POSITION (1 = next)")
    p.add_argument("--run", action="store_true", help="train every waiting run in this process, one after another")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)

    p = sub.add_parser("sweep", help="Try several values of one setting (learning rate, rank or epochs): one run "
                       "each, then the comparison names the best by held-out questions answered.")
    p.add_argument("recipe", nargs="?", help="Recipe YAML (default: the CPU recipe sized to the data).")
    p.add_argument("--data", help="Q&A file every run trains on.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override a setting, e.g. training.epochs=5.")
    p.add_argument("--setting", default="training.learning_rate",
                   choices=["training.learning_rate", "method.r", "training.epochs"], help="the setting to try")
    p.add_argument("--values", help="2-4 values, comma-separated (default: half, as sized, and double)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and the time estimate, train nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)
