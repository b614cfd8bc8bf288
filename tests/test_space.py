"""The Space's own start path, without Docker: `python -m studio bake-demo`, then `python -m studio.space` (the
Dockerfile's CMD) with a /data-like folder and without one, as a user other than root where the machine allows.
The demo run is baked on the tiny model here (the image bakes the default model the same way)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from studio.demo import DEMO_RUN

REPO = Path(__file__).resolve().parent.parent
TINY_BAKE = ["--set", "training.max_steps=2", "--set", "data.paraphrases=0", "--set", "data.question_forms=0",
             "--set", "data.replay=0", "--set", "data.max_length=96"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def baked_home(tiny_model_dir, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("space-home")
    env = dict(os.environ, STUDIO_HOME=str(home))
    env.pop("STUDIO_RUNS", None)
    cmd = [sys.executable, "-m", "studio", "bake-demo", "--set", f"model.base={tiny_model_dir}", *TINY_BAKE]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already baked" in again.stdout, "a finished demo run is kept"
    return home


def test_bake_demo_leaves_a_finished_evaluated_run(baked_home):
    import json

    from studio import runs

    run_dir = baked_home / "runs" / DEMO_RUN
    assert runs.read_status(run_dir)["state"] == "done"
    report = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    assert len(report["rows"]) == 12 and "reworded" in report["source"]
    assert (run_dir / "README.md").exists() and (run_dir / "adapter").is_dir()


def start_space(env: dict, user: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(env, PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", STUDIO_DEMO="1")  # loopback only in tests
    env.pop("STUDIO_RUNS", None)
    proc = subprocess.Popen([*(user or []), sys.executable, "-m", "studio.space"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/"
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(proc.communicate()[0][-3000:])


def check_demo(url: str) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    assert DEMO_RUN in [r["run_id"] for r in client.predict(api_name="/api_runs")]
    reply = client.predict(DEMO_RUN, "In what year was the Brindlewick Ferry Company founded?", 8,
                           api_name="/api_compare")
    assert set(reply) == {"base", "tuned"} and all(isinstance(v, str) for v in reply.values())
    with pytest.raises(Exception, match="read-only demo"):
        client.predict(None, "", api_name="/api_train")


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def test_the_space_starts_on_its_persistent_disk_with_the_baked_run(baked_home, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc, url = start_space(dict(os.environ, STUDIO_HOME=str(baked_home), STUDIO_SPACE_DATA=str(data)))
    try:
        check_demo(url)
    finally:
        output = stop(proc)
    assert f"Studio home: {data / 'studio'}" in output
    assert (data / "studio" / "runs" / DEMO_RUN / "adapter").is_dir(), "the baked run is copied onto the disk"
    # A second start keeps what is on the disk: nothing is copied over a run that is there.
    (data / "studio" / "runs" / DEMO_RUN / "kept.txt").write_text("visitor's", encoding="utf-8")
    proc, url = start_space(dict(os.environ, STUDIO_HOME=str(baked_home), STUDIO_SPACE_DATA=str(data)))
    stop(proc)
    assert (data / "studio" / "runs" / DEMO_RUN / "kept.txt").exists()


def test_the_space_starts_without_a_persistent_disk(baked_home, tmp_path):
    proc, url = start_space(dict(os.environ, STUDIO_HOME=str(baked_home), STUDIO_SPACE_DATA=str(tmp_path / "none")))
    try:
        check_demo(url)
        check_landing_in_a_browser(url)
    finally:
        output = stop(proc)
    assert f"Studio home: {baked_home}" in output


def check_landing_in_a_browser(url: str) -> None:
    """The page opens on the comparison with the baked run chosen; one click on a reworded question streams both
    answers. Skipped without Debian's Chromium (`make browser`)."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        return
    from playwright.sync_api import expect, sync_playwright

    shots = REPO / "test-artifacts" / "space"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            expect(page.get_by_text("before and after fine-tuning")).to_be_visible()
            expect(page.get_by_text("Ask the same question to the model before and after training.")).to_be_visible()
            expect(page.get_by_label("Trained run")).to_have_value(DEMO_RUN)
            page.get_by_text("The same facts asked in other words").wait_for()
            page.get_by_role("button", name="When did Brindlewick Ferry Company first start operating?").click()
            bots = page.locator(".message.bot")
            expect(bots).to_have_count(2, timeout=60_000)  # the base answer, then the tuned one
            page.screenshot(path=str(shots / "demo-landing.png"), full_page=True)
        finally:
            browser.close()


def test_the_space_starts_as_a_user_other_than_root(baked_home):
    """A Space runs as uid 1000; where this machine can drop to another user, the start runs as one."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to start as another user")
    user = [setpriv, "--reuid=1000", "--regid=1000", "--clear-groups"]
    relaunch = "import os, sys; os.execv(sys.executable, [sys.executable, '-c', 'import studio'])"  # as the start does
    if subprocess.run([*user, sys.executable, "-c", relaunch], cwd=REPO, capture_output=True).returncode:
        pytest.skip("this Python (or the repository) is not readable by another user here")
    root = Path(tempfile.mkdtemp(prefix="space-user-"))
    try:
        home, data = root / "home", root / "data"
        shutil.copytree(baked_home, home)
        data.mkdir()
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
        env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_SPACE_DATA=str(data), HOME=str(root),
                   GRADIO_TEMP_DIR=str(root / "gradio"))
        proc, url = start_space(env, user)
        try:
            check_demo(url)
        finally:
            stop(proc)
        assert (data / "studio" / "runs" / DEMO_RUN).stat().st_uid == 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)
