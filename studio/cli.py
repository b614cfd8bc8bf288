"""`python -m studio ...`: the same engine the UI drives, for scripts, CI and `accelerate launch`.

Every command ends with a plain message and an exit code (0 ok, 1 failed run, 2 bad input); none
ends with a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from studio.cli_loop import add_loop_commands
from studio.data import DocumentError, detect_preferences, load_data, read_document, split_passages
from studio.dataset_export import export_alpaca_json, export_openai_jsonl
from studio.docqa import draft_pairs, write_pairs_csv
from studio.evaluate import evaluate_file, format_table
from studio.export import export_run
from studio.progress import request_stop
from studio.recipe import RecipeError, load
from studio.runs import RunNotFound, list_runs, resolve_run_path
from studio.service import sized_recipe


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_check_data(args) -> int:

    report = load_data(args.file)
    preferences = detect_preferences(args.file, report)
    if preferences is not None:  # prompt/chosen/rejected columns: a file for method.objective dpo or orpo
        report = preferences
    if args.json:
        print(json.dumps(report.to_json() | ({"format": "preference"} if preferences else {}), ensure_ascii=False,
                         indent=1))
    else:
        print(f"File:    {args.file} ({report.file_type or 'unreadable'})")
        print(f"Format:  {'preference (for objective dpo or orpo)' if preferences else report.format}")
        print(f"Columns: {', '.join(f'{k} <- {v}' for k, v in report.columns.items()) or '-'}")
        print(report.summary())
        for p in report.problems[:50]:
            print(f"  {p.level}: {p.message}")
        if len(report.problems) > 50:
            print(f"  ... and {len(report.problems) - 50} more")
    return 0 if report.ok else 2


def _load_recipe(args):

    return sized_recipe(args.data, load(args.recipe) if args.recipe else None, args.set or [])


def cmd_train(args) -> int:
    from studio import runs
    from studio.hardware import from_main_process, process_rank
    from studio.train import train

    main = process_rank()[0] == 0  # under `accelerate launch`: process 0 checks, names the run and reports
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true" and process_rank()[1] == 1:
        print("note: `accelerate launch --cpu` starts one process (several CPU processes need mpirun there). For "
              "data-parallel training on CPUs use `accelerate launch --multi_gpu --num_processes N` (without GPUs it "
              "starts N CPU processes) or `torchrun --nproc_per_node N -m studio train ...`.", file=sys.stderr)
    if args.resume:
        if not args.out:
            return _fail("--resume needs --out RUN_DIR (the run to continue).")
        run_dir = Path(args.out)
        problem = runs.resume_problem(run_dir) if main else None
        if problem:
            return _fail(problem)  # before anything is written: the run stays as it was
        recipe = None
    else:
        if not args.data:
            return _fail("--data FILE is required: the Q&A file to train on.")
        if not Path(args.data).is_file():
            return _fail(f"The data file {args.data} does not exist. Check the name and the folder.")
        try:
            recipe = _load_recipe(args)
        except RecipeError as exc:
            return _fail("the recipe has problems:\n  " + "\n  ".join(exc.problems))
        run_dir = Path(args.out) if args.out else None
        if run_dir is None:
            run_dir = from_main_process(runs.new_run_dir(Path(args.data).stem) if main else None)
    run_dir = train(recipe, args.data, run_dir, resume=args.resume)
    if not main:
        return 0
    status = runs.read_status(run_dir)
    print(f"{status.get('state')}: {status.get('message')}", file=sys.stderr)
    print(run_dir)
    return 0 if status.get("state") in ("done", "stopped") else 1


def cmd_chat(args) -> int:
    from studio.chat import ChatModel

    try:
        run_dir = resolve_run_path(args.run_dir)
        model = ChatModel(run_dir)
    except (RunNotFound, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(model.reply(args.prompt, tuned=not args.base, max_new_tokens=args.max_new_tokens,
                      temperature=args.temperature))
    return 0


def cmd_eval(args) -> int:

    try:
        run_dir = resolve_run_path(args.run_dir)
    except RunNotFound as exc:
        return _fail(str(exc))
    try:
        report = evaluate_file(run_dir, args.data, max_new_tokens=args.max_new_tokens)
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")

    print(format_table(report))
    if args.out:
        print(f"Report written to {args.out}")
    return 0


def cmd_export(args) -> int:
    from studio.models import ModelError

    try:
        run_dir = resolve_run_path(args.run_dir)
        path = export_run(run_dir, args.format, Path(args.out), quant=args.quant,
                          log=lambda message: print(message, file=sys.stderr))
    except (RunNotFound, FileNotFoundError, ValueError, ModelError) as exc:
        return _fail(str(exc))
    print(path)
    return 0


def cmd_export_data(args) -> int:

    report = load_data(args.file)
    if not report.ok:
        return _fail(f"{args.file} cannot be exported: {report.summary()} "
                     f"Run `python -m studio check-data {args.file}` for details.")
    write = export_openai_jsonl if args.format == "openai" else export_alpaca_json
    count = write(report.examples, Path(args.out), system_prompt=args.system_prompt)
    skipped = len(report.unusable)
    left_out = f"; {skipped} unusable rows left out." if skipped else "."
    print(f"Wrote {count} example{'s' * (count != 1)} to {args.out}{left_out}", file=sys.stderr)
    print(args.out)
    return 0


def cmd_runs(args) -> int:

    rows = list_runs()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['run_id']:40} {r['state']:12} loss {r['final_loss']!s:8} {r['data']}")
    return 0


def cmd_bake_demo(args) -> int:
    from studio.demo import BakeFailed, bake_demo

    try:
        print(bake_demo(args.set or [], force=args.force))
    except (BakeFailed, RecipeError) as exc:
        return _fail(str(exc).strip() if isinstance(exc, BakeFailed) else "; ".join(exc.problems), 1)
    return 0


def cmd_stop(args) -> int:

    try:
        request_stop(resolve_run_path(args.run_dir))
    except RunNotFound as exc:
        return _fail(str(exc))
    print("Stop requested; the run saves a checkpoint and stops after its current step.")
    return 0


def cmd_generate_qa(args) -> int:
    from studio.models import ModelError

    try:
        passages = split_passages(read_document(args.file))
    except DocumentError as exc:
        return _fail(str(exc))
    print(f"{len(passages)} passage{'s' * (len(passages) != 1)}; drafting up to {args.per_passage} pairs each...",
          file=sys.stderr)
    try:
        result = draft_pairs(passages, model=args.model, endpoint=args.endpoint,
                             api_key=os.environ.get("OPENAI_API_KEY"), per_passage=args.per_passage,
                             max_new_tokens=args.max_new_tokens)
    except ModelError as exc:
        return _fail(str(exc))
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    if not result.pairs:
        return _fail("no usable question/answer pairs were drafted." + (
            "" if args.endpoint else " A larger model (--model or --endpoint) usually drafts better."), 1)
    write_pairs_csv(result.pairs, Path(args.out))
    print(f"Wrote {len(result.pairs)} draft pairs to {args.out}. Review and edit them before training.",
          file=sys.stderr)
    print(args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio", description="Fine-tune LLMs on your Q&A pairs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-data", help="Read a data file and report format, columns and problems.")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="Print a JSON report.")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser("train", help="Train from a recipe (default: the CPU recipe sized to the data).")
    p.add_argument("recipe", nargs="?", help="Recipe YAML (default: recipes/smollm2_135m_lora_cpu.yaml).")
    p.add_argument("--data", help="Q&A file to train on.")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override a setting, e.g. training.epochs=5.")
    p.add_argument("--out", help="Run folder (default: a new folder under STUDIO_HOME/runs).")
    p.add_argument("--resume", action="store_true", help="Continue the run in --out from its last checkpoint.")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("chat", help="Ask a finished run (or its base model) one question.")
    p.add_argument("run_dir")
    p.add_argument("prompt")
    p.add_argument("--base", action="store_true", help="Answer with the base model instead of the tuned one.")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default).")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("eval", help="Answer questions from a file with base and tuned model; score them.")
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="File with a question column and optional answer column.")
    p.add_argument("--out", help="Write the JSON report here.")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="Export a run's adapter, merged model or GGUF file (llama.cpp, Ollama).")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["adapter", "merged", "gguf"], default="adapter")
    p.add_argument("--out", required=True, help="A new folder; for gguf a file name ending in .gguf.")
    p.add_argument("--quant", choices=["f16", "q8_0"], default="f16",
                   help="GGUF only: f16 (exact) or q8_0 (half the size, near-identical answers).")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-data", help="Write a Q&A file as OpenAI chat JSONL or Alpaca JSON.")
    p.add_argument("file")
    p.add_argument("--format", choices=["openai", "alpaca"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--system-prompt", default="", help="Added to examples that have no system turn.")
    p.set_defaults(func=cmd_export_data)

    p = sub.add_parser("generate-qa", help="Draft question/answer pairs from a document (txt, md, pdf, docx) "
                       "into a CSV to review; nothing is trained.")
    p.add_argument("file")
    p.add_argument("--out", required=True, help="CSV to write (question,answer).")
    p.add_argument("--model", default="default",
                   help="'default', a local model folder or a hub id; with --endpoint, the model name to ask for.")
    p.add_argument("--endpoint", help="An OpenAI-compatible /v1/chat/completions URL (key from OPENAI_API_KEY).")
    p.add_argument("--per-passage", type=int, default=3, help="Pairs to draft per passage of the document.")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.set_defaults(func=cmd_generate_qa)

    p = sub.add_parser("runs", help="List runs.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    add_loop_commands(sub)

    p = sub.add_parser("bake-demo", help="Train and evaluate the demo run a read-only Space shows (the Dockerfile "
                       "runs it at build time).")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override a setting of the default recipe.")
    p.add_argument("--force", action="store_true", help="Train it again even where a finished demo run exists.")
    p.set_defaults(func=cmd_bake_demo)

    p = sub.add_parser("stop", help="Ask a running run to stop with a checkpoint.")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted.", 130)
