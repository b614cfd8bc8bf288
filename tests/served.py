"""A real studio on a free localhost port for the tests that drive it from outside, and raw ways to call it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import uuid

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(exposed: bool = False, **env: str):
    """The studio on a free port with `env` set for as long as it serves; yields its URL.

    `exposed`: the mode a start on 0.0.0.0 without a login gets, while the test still listens on loopback only.
    """
    from studio import policy

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    policy.configure("0.0.0.0" if exposed else "127.0.0.1", has_login=bool(env.get("STUDIO_AUTH")))
    try:
        from studio.ui.app import build_app, launch_kwargs, use_queue

        demo = build_app()
        use_queue(demo)
        port = _free_port()
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                    **launch_kwargs())
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            from studio.predraft import predraft

            demo.close()
            predraft.cancel()  # drafting begun by a load here must not run on into other tests
    finally:
        policy.configure("127.0.0.1", has_login=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def raw_get(url: str, path: str) -> tuple[int, str]:
    """GET `path` byte for byte (httpx would normalise away the `..` segments we mean to send)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def call_raw(url: str, api_name: str, data: list) -> str:
    """An API call through gradio's plain HTTP interface, with payloads gradio_client would never send."""
    with httpx.Client(base_url=url, timeout=30) as http:
        event = http.post(f"/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        return http.get(f"/gradio_api/call/{api_name}/{event}").text




def queue_call(url: str, fn_index: int, data: list, session: str | None = None, timeout: float = 120) -> dict:
    """One event through gradio's queue protocol, as the page's own JavaScript sends it (private events too).

    Returns {"success": bool, "error": str | None, "output": data or None, "text": every message as sent}.
    """
    session = session or uuid.uuid4().hex[:11]
    with httpx.Client(base_url=url, timeout=timeout) as http:
        joined = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                           "trigger_id": None, "event_data": None})
        if joined.status_code != 200:
            return {"success": False, "error": f"HTTP {joined.status_code}: {joined.text[:300]}", "output": None,
                    "text": joined.text}
        event_id = joined.json()["event_id"]
        seen = []
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                seen.append(line)
                message = json.loads(line[5:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    return {"success": bool(message.get("success")), "error": output.get("error"),
                            "output": output.get("data"), "text": "\n".join(seen)}
    raise AssertionError(f"event {fn_index} never completed: {seen}")


def predict_raw(url: str, fn_index: int, data: list, session: str | None = None) -> dict:
    """An event that skips the queue (`queue=False`), through /gradio_api/run/predict."""
    with httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post("/gradio_api/run/predict", json={"data": data, "fn_index": fn_index,
                                                            "session_hash": session or uuid.uuid4().hex[:11]})
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    return {"success": answer.status_code == 200 and "error" not in body, "error": body.get("error"),
            "output": body.get("data"), "text": answer.text}
