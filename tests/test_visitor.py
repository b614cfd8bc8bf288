"""An anonymous visitor of a studio that listens beyond loopback without a login, as an attacker on the same network
would try it: every registered event (the page's private ones included) driven through gradio's own queue protocol,
and the public endpoints through gradio_client, with the caps on work one caller may ask for.

The studio serves on 127.0.0.1 in these tests; `serve(exposed=True)` gives it the mode a start on 0.0.0.0
without STUDIO_AUTH gets (see test_policy.py for that decision itself).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fake_endpoint import serve as fake_endpoint
from gradio_client import Client
from served import predict_raw, queue_call, serve

REPO = Path(__file__).resolve().parents[1]
PASSWD_MARK = "root:x:0:0"
MISSING = "/nonexistent-studio-probe"


@pytest.fixture(scope="module")
def exposed(tiny_run):
    with serve(exposed=True, STUDIO_MAX_NEW_TOKENS="64", STUDIO_MAX_PROMPT_CHARS="500") as url:
        yield url


def _config(url: str) -> dict:
    with httpx.Client(base_url=url, timeout=30) as http:
        return http.get("/config").json()


def _payload(config: dict, dep: dict, text: str) -> list:
    """The event's inputs as the page would send them, with every free-text and file input set to the attack."""
    components = {c["id"]: c for c in config["components"]}
    data = []
    for cid in dep["inputs"]:
        component = components[cid]
        kind, value = component["type"], component.get("props", {}).get("value")
        if kind in ("textbox", "api", "code") or (kind == "dropdown" and component["props"].get("allow_custom_value")):
            value = text
        elif kind == "dropdown":
            value = text  # refused by gradio unless it is one of the choices: so much the better
        elif kind == "checkbox":
            value = True  # trust_remote_code among them
        elif kind == "file":
            value = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "data.csv"}
        elif kind == "state":
            value = None
        data.append(value)
    return data


def _sweep(url: str, text: str) -> dict[int, dict]:
    """Every event once, in the order the page registers them, in one session (so 'Load sample' fills the data
    state that Start then reads)."""
    config = _config(url)
    session = uuid.uuid4().hex[:11]
    results = {}
    for dep in config["dependencies"]:
        if not dep.get("backend_fn"):
            continue
        call = queue_call if dep.get("queue") is not False else predict_raw
        results[dep["id"]] = call(url, dep["id"], _payload(config, dep, text), session=session) | {
            "name": dep.get("api_name")}
    return results


def test_every_event_refuses_the_dangerous_inputs(exposed, tiny_model_dir, runs_env, tiny_run):
    from studio import runs

    with fake_endpoint(lambda body: "Q: What is it?\nA: It is a probe.") as (endpoint, requests):
        sweeps = {text: _sweep(exposed, text) for text in (str(tiny_model_dir), "/etc", MISSING, endpoint)}
    assert requests == [], "an event made the studio call an address the visitor chose"
    for results in sweeps.values():
        assert len(results) >= 60, len(results)
        for fn, result in results.items():
            assert PASSWD_MARK not in result["text"], (fn, result["name"])
            assert str(REPO) not in result["text"], ("the install folder shows", fn, result["name"])
            assert "Traceback" not in result["text"], (fn, result["name"], result["text"][-500:])
    # Nothing trained: no run but the one the test made, and no model loaded from a server folder.
    assert [r["run_id"] for r in runs.list_runs()] == [tiny_run]
    # The events that take a model or a run name refused the server folder, with the shared-studio reason.
    folder = sweeps[str(tiny_model_dir)]
    refusals = {r["name"]: r["error"] or "" for r in folder.values() if not r["success"]}
    for name in ("api_train", "start", "api_compare", "api_status", "converse", "evaluate_run", "check_forgetting",
                 "push", "resume"):
        assert name in refusals, (name, sorted(refusals))
    assert "No run named" in refusals["api_status"]
    # The same answers for a folder that exists and one that does not: the errors tell nothing about the server.
    for fn, result in sweeps["/etc"].items():
        other = sweeps[MISSING][fn]
        assert (result["success"], (result["error"] or "").replace("/etc", "<P>")) == (
            other["success"], (other["error"] or "").replace(MISSING, "<P>")), (fn, result["name"])


def test_start_with_a_valid_form_still_refuses_folders_remote_code_and_endpoints(exposed, tiny_model_dir):
    """The sweep's forms also fail for other reasons; here every other field is the default, so only the policy
    can refuse."""
    from studio.ui.model_tab import FIELDS

    config = _config(exposed)
    deps = {d["api_name"]: d for d in config["dependencies"]}
    sample, start = deps["lambda_3"], deps["start"]  # 'Load sample', then 'Start training'
    defaults = _payload(config, start, "")[1:]
    for key, value in ((("model", "base"), str(tiny_model_dir)), (("model", "trust_remote_code"), True),
                       (("data", "rewrite_endpoint"), "http://127.0.0.1:9/v1")):
        session = uuid.uuid4().hex[:11]
        assert queue_call(exposed, sample["id"], [], session=session)["success"]
        form = list(defaults)
        for i, field in enumerate(FIELDS):
            form[i] = value if field == key else (False if field == ("model", "trust_remote_code") else
                                                   "" if field == ("data", "rewrite_endpoint") else
                                                   "default" if field == ("model", "base") else form[i])
        result = queue_call(exposed, start["id"], [None, *form], session=session)
        assert not result["success"] and "shared studio" in result["error"], (key, result)


def test_drafting_from_a_document_calls_no_endpoint_and_loads_no_folder(exposed, tiny_model_dir, tmp_path):
    config = _config(exposed)
    deps = {d["api_name"]: d for d in config["dependencies"]}
    with httpx.Client(base_url=exposed, timeout=30) as http:
        uploaded = http.post("/gradio_api/upload", files={"files": ("manual.txt", b"The ferry leaves at 6:40. " * 40)})
    document = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": "manual.txt"}
    with fake_endpoint(lambda body: "Q: When?\nA: At 6:40.") as (endpoint, requests):
        for model, url, expected in (("default", endpoint, "Endpoint URL: turned off on a shared studio"),
                                     (str(tiny_model_dir), "", "not allowed on a shared studio")):
            session = uuid.uuid4().hex[:11]
            assert queue_call(exposed, deps["read_passages"]["id"], [document], session=session)["success"]
            result = queue_call(exposed, deps["draft"]["id"], [None, model, url, "key", 1], session=session)
            assert not result["success"] and expected in (result["error"] or ""), result["text"][-1500:]
    assert requests == []


def test_the_caps_hold_through_the_api_and_the_queue(exposed, tiny_run):
    client = Client(exposed, verbose=False)
    with pytest.raises(Exception, match="outside 1-64"):
        client.predict(tiny_run, "Who founded the ferry company?", 1500, api_name="/api_compare")
    with pytest.raises(Exception, match="at most 500"):
        client.predict(tiny_run, "x" * 501, 8, api_name="/api_compare")
    assert set(client.predict(tiny_run, "Who founded the ferry company?", 4, api_name="/api_compare")) == {
        "base", "tuned"}

    config = _config(exposed)
    deps = {d["api_name"]: d for d in config["dependencies"]}
    converse, session = deps["converse"], uuid.uuid4().hex[:11]
    # The run pickers are filled when their tab opens, as the page does.
    for name in ("run_list", "refresh_runs"):
        assert queue_call(exposed, deps[name]["id"], [], session=session)["success"]
    # run, prompt, base/sft/tuned histories, temperature, max_new_tokens: the histories are the browser's to send.
    huge = [{"role": "user", "content": [{"type": "text", "text": "y" * 400}]}] * 6
    for data, expected in (([tiny_run, "hello", [], [], [], 0, 500], "outside 1-64"),
                           ([tiny_run, "hello", huge, [], huge, 0, 16], "Press Clear")):
        result = queue_call(exposed, converse["id"], data, session=session)
        assert not result["success"] and expected in (result["error"] or ""), result["text"][-1500:]
    result = queue_call(exposed, deps["evaluate_run"]["id"], [tiny_run, None, 200], session=session)
    assert not result["success"] and "outside 1-64" in result["error"], result


def test_a_request_body_over_the_cap_is_refused_whole(tmp_path):
    # Many files each under the per-file cap, in one request: the request is what is capped.
    with serve(STUDIO_MAX_UPLOAD_MB="1") as url, httpx.Client(base_url=url, timeout=30) as http:
        files = [("files", (f"part{i}.csv", b"q,a\n" + b"x" * 600_000, "text/csv")) for i in range(4)]
        response = http.post("/gradio_api/upload", files=files)
        assert response.status_code == 413 and "files up to 1 MB" in response.text, response.text
        body = b'{"data": ["' + b"z" * 3_000_000 + b'"], "fn_index": 0, "session_hash": "abc"}'
        response = http.post("/gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert http.post("/gradio_api/upload", files=[files[0]]).status_code == 200  # one part alone is fine


def test_the_login_page_does_not_describe_the_api():
    with serve(STUDIO_AUTH="u:p") as url, httpx.Client(base_url=url, timeout=30) as http:
        page = http.get("/").text
        assert "auth_required" in page.replace(" ", "")
        assert "api_train" not in page and "named_endpoints" not in page
