"""The runs queue (studio/run_queue.py, studio/jobs.py): Start while a run trains queues the new run; the queue is
shown, reordered and cancelled, survives a restart, and every way in (service, CLI) sees the same line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import loop, run_queue, runs, service
from studio.jobs import JobManager, jobs
from tests.test_train import tiny_recipe

REPO = Path(__file__).resolve().parent.parent
QUICK = ("data.paraphrases=0", "data.replay=0", "data.question_forms=0", "data.eval_size=0", "training.max_steps=2")


def test_add_move_cancel_and_pop_keep_one_order_in_the_runs_folder(runs_root, pairs_csv, tiny_model_dir):
    ids = [run_queue.add(tiny_recipe(tiny_model_dir, *QUICK), pairs_csv, f"q{i}").name for i in range(3)]
    assert run_queue.order() == ids
    first = runs.read_status(runs_root / ids[0])
    assert first["state"] == "queued" and first["phase"] == "in-queue" and "1 of 3" in first["message"]
    assert (runs_root / ids[0] / "data" / "pairs.csv").read_bytes() == pairs_csv.read_bytes()  # its own copy
    assert run_queue.move(ids[2], 1) == [ids[2], ids[0], ids[1]]
    assert "(1 of 3)" in runs.read_status(runs_root / ids[2])["message"]
    assert run_queue.cancel(ids[0]) == [ids[2], ids[1]]
    assert not (runs_root / ids[0]).exists()
    with pytest.raises(run_queue.QueueError, match="not waiting"):
        run_queue.cancel(ids[0])
    with pytest.raises(run_queue.QueueError, match="STUDIO_MAX_QUEUE"):
        run_queue.add(tiny_recipe(tiny_model_dir, *QUICK), pairs_csv, "full", limit=2)
    assert run_queue.pop() == runs_root / ids[2]
    assert run_queue.order() == [ids[1]]
    assert runs.read_status(runs_root / ids[2])["phase"] == "waiting"  # taken: no other process takes it too
    assert [r["run_id"] for r in loop.queue()] == [ids[1]]


def test_a_restart_leaves_waiting_runs_waiting_not_interrupted(runs_root, pairs_csv, tiny_model_dir):
    waiting = run_queue.add(tiny_recipe(tiny_model_dir, *QUICK), pairs_csv, "later")
    runs.write_status(waiting, "queued", runs.read_status(waiting)["message"], pid=2**22 + 7)  # a dead process's
    assert runs.mark_interrupted() == []
    assert run_queue.order() == [waiting.name]


def test_start_while_a_run_trains_queues_and_the_queue_runs_in_its_order(runs_root, pairs_csv, tiny_model_dir):
    first = service.start(tiny_recipe(tiny_model_dir, *QUICK[:-1], "training.max_steps=6"), str(pairs_csv))
    second = service.start(tiny_recipe(tiny_model_dir, *QUICK), str(pairs_csv))
    third = service.start(tiny_recipe(tiny_model_dir, *QUICK), str(pairs_csv))
    assert [r["run_id"] for r in loop.queue()] == [second, third]
    assert "Waiting in the queue (1 of 2)" in service.status(second)["message"]
    loop.queue_move(third, 1)
    cancelled = service.start(tiny_recipe(tiny_model_dir, *QUICK), str(pairs_csv))
    assert service.stop(cancelled)["state"] == "cancelled"  # Stop on a waiting run takes it out
    jobs.drain(300)
    began = {}
    for run_id in (first, second, third):
        status = runs.read_status(runs_root / run_id)
        assert status["state"] == "done", status
        began[run_id] = dict(status["phases"])["training"]
        assert "in the queue" not in runs.wall_summary(status)  # its time in line is not the run's own
    assert began[first] < began[third] < began[second]
    assert not (runs_root / cancelled).exists() and loop.queue() == []


def test_the_queue_survives_an_app_restart(runs_root, pairs_csv, tiny_model_dir, monkeypatch):
    """A queue left by a studio that stopped: the next start of the app (studio.ui.app.prepare) works through it."""
    left = [run_queue.add(tiny_recipe(tiny_model_dir, *QUICK), pairs_csv, f"left{i}") for i in range(2)]
    for path in left:
        runs.write_status(path, "queued", "", pid=2**22 + 7)
    from studio.ui import app

    fresh = JobManager()  # the new process's job manager
    monkeypatch.setattr(app, "jobs", fresh)
    app.prepare()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and any(runs.read_status(p).get("state") != "done" for p in left):
        fresh.drain(5)
    fresh.drain(120)  # "done" is written before a run's evaluation: wait for its job to end before the next test
    assert [runs.read_status(p)["state"] for p in left] == ["done", "done"]


def test_the_cli_lists_moves_and_cancels_the_queue(runs_root, pairs_csv, tiny_model_dir):
    ids = [run_queue.add(tiny_recipe(tiny_model_dir, *QUICK), pairs_csv, f"c{i}").name for i in range(2)]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studio", "queue", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    listed = cli()
    assert listed.returncode == 0 and listed.stdout.index(ids[0]) < listed.stdout.index(ids[1])
    assert cli("--move", ids[1], "1").returncode == 0
    assert run_queue.order() == [ids[1], ids[0]]
    assert cli("--cancel", ids[0]).returncode == 0 and run_queue.order() == [ids[1]]
    refused = cli("--cancel", "no-such-run")
    assert refused.returncode == 2 and "No run named" in refused.stderr
