"""Safe by default: where the app listens decides what it allows; caps hold; links are refused; crashes lose little.

- a default start listens on loopback (a real `python app.py`), and GRADIO_SERVER_NAME/PORT and the flags are
  honoured in that order;
- beyond loopback without a login the studio is shared on its own; with a login or the loud opt-in it is not;
- the caps on one request, and the turns at the model: one generation at a time, a bounded wait, a few places
  per caller;
- a run folder holding a symbolic link is neither listed nor opened;
- a refused resume leaves the run as it was.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from studio import policy, runs
from studio.recipe import Recipe

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_policy():
    yield policy
    policy.configure("127.0.0.1", has_login=False)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                                ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.5", False), ("my-host", False), ("", False)])
def test_loopback(host, loopback):
    assert policy.is_loopback(host) is loopback


def test_the_mode_follows_where_it_listens(fresh_policy, monkeypatch):
    monkeypatch.delenv("STUDIO_SHARED", raising=False)
    monkeypatch.delenv("STUDIO_DEMO", raising=False)
    recipe = Recipe()
    recipe.model.base, recipe.model.trust_remote_code = "/opt/models/llama", True

    assert "this machine" in policy.configure("127.0.0.1", has_login=False)
    assert policy.mode() == "local" and policy.recipe_problems(recipe) == []

    notice = policy.configure("0.0.0.0", has_login=False)
    assert policy.mode() == "shared" and "without a login" in notice and "STUDIO_AUTH" in notice
    assert [p.split(":")[0] for p in policy.recipe_problems(recipe)] == ["model.base", "model.trust_remote_code"]
    assert policy.endpoint_problem("http://10.0.0.1/v1") and policy.base_problem("/etc")

    assert "behind a login" in policy.configure("0.0.0.0", has_login=True)
    assert policy.mode() == "local" and policy.recipe_problems(recipe) == []

    notice = policy.configure("0.0.0.0", has_login=False, open_to_network=True)
    assert policy.mode() == "open" and notice.startswith("WARNING") and policy.recipe_problems(recipe) == []

    monkeypatch.setenv("STUDIO_SHARED", "1")
    assert "STUDIO_SHARED is set" in policy.configure("127.0.0.1", has_login=True)
    assert policy.mode() == "shared"
    monkeypatch.setenv("STUDIO_DEMO", "1")
    assert "read-only demo" in policy.configure("127.0.0.1", has_login=False) and policy.mode() == "demo"


def test_host_and_port_come_from_the_flags_then_gradios_variables_then_loopback(fresh_policy, monkeypatch):
    from studio.ui.app import start_settings

    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "PORT", "STUDIO_AUTH", "STUDIO_SHARED", "STUDIO_DEMO"):
        monkeypatch.delenv(name, raising=False)
    settings = start_settings()
    assert (settings["server_name"], settings["server_port"]) == ("127.0.0.1", 7860) and policy.mode() == "local"
    monkeypatch.setenv("PORT", "8000")
    assert start_settings()["server_port"] == 8000
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9000")
    settings = start_settings()
    assert (settings["server_name"], settings["server_port"]) == ("0.0.0.0", 9000) and policy.mode() == "shared"
    settings = start_settings("127.0.0.1", 9100)
    assert (settings["server_name"], settings["server_port"]) == ("127.0.0.1", 9100) and policy.mode() == "local"
    monkeypatch.setenv("STUDIO_AUTH", "u:p")
    assert start_settings()["auth"] == [("u", "p")] and policy.mode() == "local"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_default_start_listens_on_loopback_only(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_SERVER", "STUDIO_AUTH", "STUDIO_SHARED"))}
    env |= {"STUDIO_RUNS": str(tmp_path / "runs"), "PORT": str(port)}
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, listening = time.monotonic() + 90, []
        while not listening:
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet")
                         if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
            time.sleep(0.2)
        assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening
        assert "listens on 127.0.0.1 only" in log.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bad_limits_are_named():
    os.environ["STUDIO_MAX_UPLOAD_MB"] = "lots"
    try:
        with pytest.raises(policy.UserError, match="STUDIO_MAX_UPLOAD_MB='lots' is not a number"):
            policy.limits()
        os.environ["STUDIO_MAX_UPLOAD_MB"] = "1.5"  # a fraction is fine (it once broke the launch settings)
        assert policy.limits().upload_bytes == int(1.5 * 1024 * 1024)
    finally:
        del os.environ["STUDIO_MAX_UPLOAD_MB"]


def test_caps_on_one_request(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_NEW_TOKENS", "100")
    monkeypatch.setenv("STUDIO_MAX_PROMPT_CHARS", "50")
    assert policy.new_tokens("100") == 100
    for bad in (101, 0, "many", None):
        with pytest.raises(policy.UserError, match="max_new_tokens"):
            policy.new_tokens(bad)
    assert policy.prompt("What is it?") == "What is it?"
    with pytest.raises(policy.UserError, match="at most 50"):
        policy.prompt("x" * 51)
    history = [{"role": "user", "content": [{"type": "text", "text": "y" * 45}]}] * 4
    with pytest.raises(policy.UserError, match="Press Clear"):
        policy.prompt("x" * 30, history)
    with pytest.raises(policy.UserError, match="Type a question"):
        policy.prompt("   ")


def test_turns_at_the_model(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_WAIT_S", "0.3")
    monkeypatch.setenv("STUDIO_MAX_PENDING", "1")
    turns, holding, release = policy.ModelTurns(), threading.Event(), threading.Event()

    def hold():
        policy.caller.set("alice")
        with turns.turn():
            holding.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    assert holding.wait(10)
    try:
        token = policy.caller.set("alice")
        with pytest.raises(policy.UserError, match="already have 1 request"):  # one place each
            with turns.turn():
                pass
        policy.caller.reset(token)
        token = policy.caller.set("bob")
        started = time.monotonic()
        with pytest.raises(policy.UserError, match="busy with other requests"):  # a bounded wait, then told so
            with turns.turn("the reply"):
                pass
        assert time.monotonic() - started < 2
    finally:
        release.set()
        worker.join(10)
    with turns.turn():  # free again, and bob's refused wait left no place held
        assert turns._held == {"bob": 1}
    policy.caller.reset(token)


# ---- links ------------------------------------------------------------------------------------------------------


def _run(root: Path, name: str) -> Path:
    path = root / name
    (path / "data").mkdir(parents=True)
    runs.write_status(path, "done", "ok")
    (path / "train.log").write_text("trained\n")
    return path


def test_run_folders_holding_links_are_neither_listed_nor_opened(runs_root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"state": "done", "message": "TOP-SECRET"}')
    plain = _run(runs_root, "plain")
    log_link = _run(runs_root, "log-link")
    (log_link / "train.log").unlink()
    (log_link / "train.log").symlink_to("/etc/passwd")
    status_link = _run(runs_root, "status-link")
    (status_link / "status.json").unlink()
    (status_link / "status.json").symlink_to(secret)
    deep = _run(runs_root, "deep-link")
    (deep / "data" / "eval.jsonl").symlink_to(secret)
    (runs_root / "folder-link").symlink_to(plain, target_is_directory=True)

    assert [r["run_id"] for r in runs.list_runs()] == ["plain"]
    assert runs.resolve_run("plain") == plain.resolve()
    for name in ("log-link", "status-link", "deep-link", "folder-link"):
        with pytest.raises(runs.RunNotFound, match="No run named"):
            runs.resolve_run(name)
    with pytest.raises(runs.RunNotFound, match="symbolic link"):
        runs.resolve_run_path(str(deep))
    assert runs.read_status(status_link) == {}  # read directly, the link itself is still not followed
    assert runs.mark_interrupted(runs_root) == []

    from studio import service as api

    assert api.log_tail("log-link") == ""
    with pytest.raises(api.UserError, match="No run named"):
        api.status("status-link")


# ---- resuming ---------------------------------------------------------------------------------------------------


def test_a_refused_resume_leaves_the_run_as_it_was(runs_root, capsys):
    from studio.cli import main

    run_dir = _run(runs_root, "no-checkpoint")
    Recipe().save(run_dir / "recipe.yaml")
    runs.write_status(run_dir, "interrupted", "The studio stopped while this run was training.")
    before = runs.read_status(run_dir)
    assert main(["train", "--out", str(run_dir), "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert runs.read_status(run_dir) == before

    from studio.train import TrainingFailed, train

    with pytest.raises(TrainingFailed, match="no checkpoint"):
        train(None, None, run_dir, resume=True, log=lambda _: None)
    assert runs.read_status(run_dir) == before
