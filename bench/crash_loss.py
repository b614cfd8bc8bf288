"""How much training a crash loses: the default recipe, kill -9 after `--after` seconds of training, then resume.

    python bench/crash_loss.py [--data assets/sample_qa.csv] [--after 70]

Trains the default recipe sized to the data (as `python -m studio train --data FILE`, with 4 epochs so the run
outlasts the kill) in its own process, kills it with SIGKILL once its metrics show `--after` seconds of
training, and reports the training time between the last checkpoint and the last logged step: what the crash
lost. Checkpoints come every `training.save_steps` updates and every `training.save_seconds` (60 s) of training,
so the loss stays under a minute whatever the step count. Then `--resume` finishes the run, and the bench checks
that it ends `done` with every step logged once. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "sample_qa.csv"))
    parser.add_argument("--after", type=float, default=70.0, help="seconds of training before the kill")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    from studio import runs

    run_dir = Path(tempfile.mkdtemp(prefix="crash-loss-")) / "run"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    command = [sys.executable, "-m", "studio", "train", "--data", args.data, "--out", str(run_dir),
               "--set", f"training.epochs={args.epochs}"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            rows = runs.read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
            if rows and rows[-1].get("elapsed", 0) >= args.after:
                break
            if proc.poll() is not None:
                print("the run ended before the kill; raise --epochs", file=sys.stderr)
                return 1
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    rows = [r for r in runs.read_metrics(run_dir) if "loss" in r]
    ckpt = runs.last_checkpoint(run_dir)
    ckpt_step = int(ckpt.name.split("-")[-1]) if ckpt else 0
    at_ckpt = next((r["elapsed"] for r in rows if r["step"] == ckpt_step), 0.0)
    lost = rows[-1]["elapsed"] - at_ckpt
    total = rows[-1]["total"]
    print(f"killed at step {rows[-1]['step']}/{total} after {rows[-1]['elapsed']:.1f} s of training; last checkpoint "
          f"at step {ckpt_step} ({at_ckpt:.1f} s): {lost:.1f} s of training lost")

    runs.mark_interrupted(run_dir.parent)
    started = time.monotonic()
    resumed = subprocess.run([sys.executable, "-m", "studio", "train", "--out", str(run_dir), "--resume"], cwd=REPO,
                             env=env, capture_output=True, text=True)
    status = runs.read_status(run_dir)
    steps = [r["step"] for r in runs.read_metrics(run_dir) if "loss" in r]
    ok = resumed.returncode == 0 and status.get("state") == "done" and steps == list(range(1, total + 1))
    print(f"resumed to {status.get('state')} in {time.monotonic() - started:.0f} s; every step logged once: {ok}")
    print(json.dumps({"killed_after_s": round(rows[-1]["elapsed"], 1), "checkpoint_step": ckpt_step,
                      "killed_step": rows[-1]["step"], "total_steps": total, "lost_s": round(lost, 1),
                      "resumed_ok": ok}))
    return 0 if ok and lost < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
