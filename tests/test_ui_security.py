"""The web app's defences, tried from outside like an attacker would: a real app on a free localhost port,
driven with gradio_client and raw HTTP.

- uploads over STUDIO_MAX_UPLOAD_MB are refused while streaming, and the server stays up;
- the file route serves only gradio's own upload/cache folders: no absolute paths, no `..` (plain or
  URL-encoded), no symlink out of the upload folder, nothing from STUDIO_HOME or the Hugging Face cache;
- run ids are names, never paths; a server path posing as an uploaded file is refused;
- user data (cells, file names) comes back escaped;
- STUDIO_SHARED / STUDIO_DEMO confine `model.base` to 'default' and hub ids (a local folder is a feature
  of a self-hosted studio, not of a shared one); STUDIO_DEMO refuses training but allows chat;
- STUDIO_AUTH turns on a login that the API honours too.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from served import call_raw, raw_get, serve

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "sample_qa.csv"
PASSWD_MARK = "root:x:0:0"


# ---- the app as most people run it (plus a 1 MB upload cap) ------------------------------------------------------


@pytest.fixture(scope="class")
def default_url(runs_env):
    with serve(STUDIO_MAX_UPLOAD_MB="1") as url:
        yield url


@pytest.mark.usefixtures("default_url")
class TestDefaults:
    def test_upload_over_the_cap_is_refused_and_the_server_stays_up(self, default_url, tmp_path):
        from gradio.utils import get_upload_folder

        big = tmp_path / "big.csv"
        big.write_text("question,answer\n" + "What is this?,It is filler text for the size cap.\n" * 45_000)
        assert big.stat().st_size > 2_000_000
        with httpx.Client(base_url=default_url, timeout=30) as http:
            response = http.post("/gradio_api/upload", files={"files": ("big.csv", big.read_bytes(), "text/csv")})
        assert response.status_code == 413, response.text
        # Refused by Studio's cap on the whole request before gradio's own per-file cap is reached.
        assert "files up to 1 MB" in response.text, response.text
        # Nothing of that size was kept in the upload folder.
        kept = [p for p in Path(get_upload_folder()).rglob("big.csv") if p.stat().st_size > 1_048_576]
        assert not kept

        with pytest.raises(Exception, match="(?i)exceeds the maximum|too large|max.*size"):
            Client(default_url, verbose=False).predict(handle_file(str(big)), "", api_name="/api_train")

        assert Client(default_url, verbose=False).predict(api_name="/api_runs") == []

    def test_files_are_served_only_from_gradios_own_folders(self, default_url, tmp_path):
        from gradio.utils import get_upload_folder

        # A real upload is served back: so every refusal below means something.
        with httpx.Client(base_url=default_url, timeout=30) as http:
            uploaded = http.post("/gradio_api/upload", files={"files": ("ok.csv", b"question,answer\nq,a\n")}).json()[0]
            assert http.get(f"/gradio_api/file={uploaded}").text == "question,answer\nq,a\n"

        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET-VALUE")
        link = Path(get_upload_folder()) / f"studio-test-link-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(secret)
        model_config = next((Path(os.environ["STUDIO_HOME"]) / "models").rglob("config.json"), None)
        upload_dir = Path(uploaded).parent
        attempts = [
            "/gradio_api/file=/etc/passwd",
            "/gradio_api/file=../../../../../../etc/passwd",
            "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/gradio_api/file=%2fetc%2fpasswd",
            f"/gradio_api/file={upload_dir}/../../../../../etc/passwd",
            f"/gradio_api/file={upload_dir}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/file=/etc/passwd",
            f"/gradio_api/file={link}",
            f"/gradio_api/file={secret}",
        ]
        if model_config:
            attempts.append(f"/gradio_api/file={model_config}")
        try:
            for path in attempts:
                status, body = raw_get(default_url, path)
                assert 400 <= status < 500, (path, status)
                assert PASSWD_MARK not in body and "TOP-SECRET-VALUE" not in body and '"vocab_size"' not in body
        finally:
            link.unlink(missing_ok=True)

    @pytest.mark.parametrize("run_id", ["../../etc", "..", "/etc", "/etc/passwd", "%2e%2e/%2e%2e/etc",
                                        "runs/../../etc", "~", "a" * 300])
    def test_run_ids_are_names_never_paths(self, default_url, run_id):
        client = Client(default_url, verbose=False)
        with pytest.raises(Exception, match="No run named"):
            client.predict(run_id, api_name="/api_status")
        with pytest.raises(Exception, match="No run named"):
            client.predict(run_id, "hello", 8, api_name="/api_compare")

    def test_a_server_path_posing_as_an_upload_is_refused(self, default_url):
        fake = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd.csv"}
        answer = call_raw(default_url, "api_train", [fake, ""])
        assert "event: error" in answer and PASSWD_MARK not in answer
        assert Client(default_url, verbose=False).predict(api_name="/api_runs") == []

    def test_a_local_model_folder_is_a_feature_of_a_self_hosted_studio(self):
        from studio import service as api
        from studio.recipe import Recipe

        recipe = Recipe()
        recipe.model.base = "/opt/models/my-llama"
        assert not api.shared_mode() and api.shared_problems(recipe) == []

    def test_launch_settings(self):
        from studio.paths import studio_home
        from studio.ui.app import launch_kwargs

        settings = launch_kwargs()
        assert settings["max_file_size"] == 1024 * 1024
        assert settings["allowed_paths"] == []
        blocked = [Path(p) for p in settings["blocked_paths"]]
        assert studio_home().resolve() in blocked
        assert (Path.home() / ".cache" / "huggingface").resolve() in blocked

    def test_downloads_are_written_outside_studio_home(self, runs_env):
        # gradio copies an output file only from the working directory or the temp folder: a recipe download
        # or an export written under STUDIO_HOME (~/.cache/studio, /home/user/studio in Docker) would fail.
        from studio.paths import studio_home
        from studio.service import default_recipe
        from studio.ui.data_tab import export_data
        from studio.ui.model_tab import recipe_file

        for path in (Path(recipe_file(default_recipe())),
                     Path(export_data({"path": str(SAMPLE), "name": "sample_qa.csv", "examples": 40}, "openai"))):
            assert path.is_file()
            assert Path(tempfile.gettempdir()).resolve() in path.resolve().parents
            assert studio_home().resolve() not in path.resolve().parents


def test_user_data_comes_back_escaped(tmp_path):
    from studio.ui.data_tab import open_data

    evil = "<script>alert(1)</script>"
    path = tmp_path / "<img src=x onerror=alert(1)>.csv"
    path.write_text(f'question,answer\n"{evil}","<b onmouseover=alert(2)>hi</b>"\n"only a question",\n')
    _, summary, *_, preview, problems, _ = open_data(str(path))
    for markdown in (summary, *problems["problem"]):
        assert "<script" not in markdown and "<img" not in markdown and "<b " not in markdown
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in summary
    # Cells stay text (the preview is a str-typed table that the browser shows as text; see test_browser.py).
    assert evil in preview.to_numpy().ravel().tolist()


# ---- shared and demo deployments ---------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def shared_url(runs_env):
    with serve(STUDIO_SHARED="1") as url:
        yield url


@pytest.mark.usefixtures("shared_url")
class TestShared:
    @pytest.mark.parametrize("base", ["TINY", "/etc", "../../../etc", "~/.cache/huggingface/hub/models--x",
                                      "./tests", "tests", "a/b/c", "Qwen/../../etc"])
    def test_a_local_model_folder_is_refused(self, shared_url, base, tiny_model_dir):
        base = str(tiny_model_dir) if base == "TINY" else base
        client = Client(shared_url, verbose=False)
        with pytest.raises(Exception, match="model.base: .* not allowed on a shared studio"):
            client.predict(handle_file(str(SAMPLE)), f"model: {{base: '{base}'}}", api_name="/api_train")

    def test_remote_code_and_adapter_folders_are_refused(self, shared_url):
        client = Client(shared_url, verbose=False)
        with pytest.raises(Exception, match="trust_remote_code: turned off on a shared studio"):
            client.predict(handle_file(str(SAMPLE)), "model: {trust_remote_code: true}", api_name="/api_train")
        with pytest.raises(Exception, match="init_adapter: .* not a run id"):
            client.predict(handle_file(str(SAMPLE)), "method: {objective: dpo, init_adapter: /tmp/x}",
                           api_name="/api_train")

    def test_default_and_hub_ids_are_allowed(self, shared_url):
        from studio import service as api
        from studio.recipe import Recipe
        from studio.ui.model_tab import FIELDS, recipe_from_values, values_from_recipe

        assert api.shared_mode()
        for base in ("default", "HuggingFaceTB/SmolLM2-135M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "gpt2"):
            recipe = Recipe()
            recipe.model.base = base
            assert api.shared_problems(recipe) == [], base
        # The form says so too, before anyone presses Start.
        values = values_from_recipe(Recipe())
        values[FIELDS.index(("model", "base"))] = "/etc"
        _, problems = recipe_from_values(values)
        assert any("not allowed on a shared studio" in p for p in problems)


@pytest.fixture(scope="class")
def demo_url(tiny_run):
    with serve(STUDIO_DEMO="1") as url:
        yield url


@pytest.mark.usefixtures("demo_url")
class TestDemo:
    def test_training_is_refused_chat_still_works(self, demo_url, tiny_run):
        client = Client(demo_url, verbose=False)
        with pytest.raises(Exception, match="read-only demo"):
            client.predict(handle_file(str(SAMPLE)), "", api_name="/api_train")
        replies = client.predict(tiny_run, "Who founded the ferry company?", 4, api_name="/api_compare")
        assert set(replies) == {"base", "tuned"}
        assert client.predict(tiny_run, api_name="/api_status")["state"] == "done"
        assert [r["run_id"] for r in client.predict(api_name="/api_runs")] == [tiny_run]


@pytest.fixture(scope="class")
def login_url(runs_env):
    with serve(STUDIO_AUTH="u:p") as url:
        yield url


@pytest.mark.usefixtures("login_url")
class TestLogin:
    def test_anonymous_is_refused(self, login_url):
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises a bare ValueError/AuthenticationError
            Client(login_url, verbose=False).predict(api_name="/api_runs")
        with httpx.Client(base_url=login_url, timeout=10) as http:
            for path in ("/config", "/gradio_api/info", "/gradio_api/file=/etc/passwd"):
                response = http.get(path)
                assert response.status_code in (401, 403), (path, response.status_code)
            answer = http.post("/gradio_api/call/api_runs", json={"data": []})
            assert answer.status_code in (401, 403)

    def test_wrong_password_is_refused(self, login_url):
        with pytest.raises(Exception):  # noqa: B017
            Client(login_url, auth=("u", "wrong"), verbose=False)

    def test_logged_in_works(self, login_url):
        assert isinstance(Client(login_url, auth=("u", "p"), verbose=False).predict(api_name="/api_runs"), list)


def test_no_remote_code_is_ever_trusted_by_default():
    hits = [f"{path.relative_to(REPO)}:{n}" for path in (REPO / "studio").rglob("*.py")
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"trust_remote_code\s*=\s*True", line)]
    assert not hits, hits
