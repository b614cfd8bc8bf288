"""How soon the app answers: page served after `python app.py`, then Start -> first loss point.

    python bench/first_loss.py [--data assets/sample_qa.csv] [--runs 2]

Starts `python app.py` as a user does (its own process, a free port), times until the page is served,
loads the data as the Data tab does (`/api_prepare`: the drafting of the run's extra examples begins),
waits `--think` seconds (a user looking at the data and the settings; 0: Start at once), then starts
the default recipe on the data through the app's API (`/api_train`, the same job the Train tab's Start
button runs) and polls `/api_status` until the run reports its first loss. `--no-draft-ahead` skips the
load, as before drafting ahead: Start drafts. The first run trains on what was drafted ahead (waiting
for it if it is not done); the runs after it reuse the drafts (the usual next step: another learning
rate on the same data), so both cases are timed.
Each run is stopped once its first loss is in (`--finish` trains to the end); its log's first lines are
printed, with the time of each line. The drafts are kept under a temporary STUDIO_HOME, so every
invocation starts with none. The bench polls every second, as the page does, so the figure is when the
loss point would be on screen.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "sample_qa.csv"))
    parser.add_argument("--runs", type=int, default=2, help="runs in a row on the same data (the first drafts)")
    parser.add_argument("--finish", action="store_true", help="let each run train to the end (default: stop it "
                        "once its first loss is in, as the next run reuses the drafts all the same)")
    parser.add_argument("--think", type=float, default=10.0,
                        help="seconds between loading the data and Start: a user looking at the data and the settings")
    parser.add_argument("--no-draft-ahead", action="store_true",
                        help="do not load the data before Start (as before drafting ahead: Start drafts)")
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    from studio.paths import studio_home

    home = Path(tempfile.mkdtemp(prefix="first-loss-home-"))
    models = studio_home() / "models"
    if models.exists():  # the converted default model, so no run pays the one-time conversion
        (home / "models").symlink_to(models, target_is_directory=True)
    env = dict(os.environ, STUDIO_HOME=str(home))
    port = free_port()
    started = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--host", "127.0.0.1"], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as page:
                    if page.status == 200:
                        break
            except OSError:
                if app.poll() is not None:
                    print("the app exited before serving the page")
                    return 1
                time.sleep(0.1)
        served = time.perf_counter() - started
        print(f"page served {served:.1f} s after `python app.py`")
        client = Client(url, verbose=False)
        if not args.no_draft_ahead:  # the user loads the file: as the Data tab does, drafting begins
            print("data loaded: " + client.predict(handle_file(args.data), "", api_name="/api_prepare"))
        time.sleep(args.think)
        firsts = []
        for i in range(args.runs):
            start = time.perf_counter()
            run_id = client.predict(handle_file(args.data), "", api_name="/api_train")
            first = None
            while True:
                status = client.predict(run_id, api_name="/api_status")
                if first is None and status.get("loss") is not None:
                    first = time.perf_counter() - start
                    if not args.finish:
                        client.predict(run_id, api_name="/api_stop")
                if status.get("state") not in ("queued", "running", "stopping"):
                    break
                time.sleep(1.0)  # as often as the page polls
            if status.get("state") not in ("done", "stopped") or first is None:
                print(f"run {i + 1} ended {status.get('state')}: {status.get('message')}")
                return 1
            firsts.append(round(first, 1))
            print(f"run {i + 1}: first loss {first:.1f} s after Start "
                  f"({'drafts' if i == 0 else 'reuses the drafts'}); {status.get('state')} after "
                  f"{time.perf_counter() - start:.0f} s")
            for log in sorted((home / "runs").glob("*/train.log"))[-1:]:
                print("  " + "\n  ".join(log.read_text(encoding="utf-8").splitlines()[:8]))
        print(json.dumps({"page_served_s": round(served, 1), "first_loss_s": firsts, "think_s": args.think,
                          "draft_ahead": not args.no_draft_ahead}))
        return 0
    finally:
        app.terminate()
        app.wait(30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
