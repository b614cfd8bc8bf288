"""The web app's two doors, each guarded once for everything behind it.

- Every registered event (public API endpoints and the private events the page uses alike: gradio runs both
  through `/gradio_api/queue/join`) is wrapped by `guard_events`: the caller's session becomes
  `studio.policy.caller` (so the caps on waiting for the model count per session), a `UserError` from the
  service layer becomes the plain `gr.Error` it describes, and anything unexpected becomes one plain line with
  the traceback on the server's log only. The checks themselves live in `studio.policy`, which the service
  functions call whatever the way in.
- Every HTTP request passes `Shield`: no request body over the upload cap (gradio's own cap is per file, and
  one upload request may carry a thousand files), and a login page that does not describe the API to whoever
  has not logged in yet.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re

import gradio as gr

from studio import policy
from studio.ui import lang

log = logging.getLogger("studio")

# Room for multipart framing and the JSON around a file's worth of data.
BODY_SLACK = 1024 * 1024


def _caller() -> str:
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    session = getattr(request, "session_hash", None) if request is not None else None
    return f"session:{session}" if session else "anonymous"


def _plain(exc: Exception) -> gr.Error:
    if isinstance(exc, gr.Error):
        exc.message = lang.translate(exc.message, lang.current()) if isinstance(exc.message, str) else exc.message
        return exc
    if isinstance(exc, policy.UserError):
        return gr.Error(lang.translate(str(exc), lang.current()))
    log.exception("unexpected error in an event handler")
    return gr.Error(lang.translate(f"Something went wrong ({type(exc).__name__}). Nothing was changed; the details "
                                   "are in the studio's log. Try again, and report it if it happens again.",
                                   lang.current()))


def guarded(fn, kinds: list[str] | None = None):
    """`fn` with the caller recorded, its outputs in the caller's language (`kinds`: its output components' block
    names) and every error turned into a plain message; the same kind of callable."""
    if kinds:
        fn = _translated(fn, kinds)
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            # gradio runs each step of a generator in its own context: the caller is set and reset around each
            # step (a token reset in another context than it was made in raises), not across the yields.
            who, steps = _caller(), fn(*args, **kwargs)
            try:
                while True:
                    token = policy.caller.set(who)
                    try:
                        item = next(steps)
                    except StopIteration:
                        return
                    except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a plain message
                        raise _plain(exc) from None
                    finally:
                        policy.caller.reset(token)
                    yield item
            finally:
                steps.close()  # a closed page: the handler's own clean-up runs
    elif inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return fn  # the studio registers none; gradio's own async helpers check nothing of ours
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            token = policy.caller.set(_caller())
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure reaches the user as a plain message
                raise _plain(exc) from None
            finally:
                policy.caller.reset(token)
    wrapper.__studio_guarded__ = True
    return wrapper


def _translated(fn, kinds: list[str]):
    """`fn` whose outputs read in the language of the request it serves."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def steps(*args, **kwargs):
            chosen, inner = lang.current(), fn(*args, **kwargs)
            try:
                for item in inner:
                    yield lang.translate_outputs(item, kinds, chosen)
            finally:
                inner.close()
        return steps

    @functools.wraps(fn)
    def once(*args, **kwargs):
        return lang.translate_outputs(fn(*args, **kwargs), kinds, lang.current())
    return once


def guard_events(demo: gr.Blocks) -> gr.Blocks:
    """Wrap every event the app registered, so none can be called around the policy."""
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "__studio_guarded__", False):
            kinds = [c.get_block_name() for c in block_fn.outputs]
            block_fn.fn = guarded(block_fn.fn, kinds)
    return demo


_API_INFO = re.compile(rb"<script>window\.gradio_api_info = .*?;</script>", re.DOTALL)


class Shield:
    """ASGI middleware: request bodies capped at the upload limit; no API description on the login page."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = policy.limits().upload_bytes + BODY_SLACK
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            return await _too_large(send, cap)
        received = 0

        async def capped_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        path = scope.get("path", "").rstrip("/")
        wants_page = scope.get("method") == "GET" and path in ("", "/gradio_api", "/config", "/gradio_api/config")
        try:
            if wants_page:  # the language is read for the page only, not for every upload and static file
                language = lang.choose(headers.get(b"cookie", b"").decode("latin-1"),
                                       headers.get(b"accept-language", b"").decode("latin-1"))
                await self.app(scope, capped_receive, _page_filter(send, language))
            else:
                await self.app(scope, capped_receive, send)
        except _BodyTooLarge:
            await _too_large(send, cap)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, cap: int) -> None:
    limit = (cap - BODY_SLACK) / (1024 * 1024)
    body = (f"Too large: this studio accepts files up to {limit:g} MB (STUDIO_MAX_UPLOAD_MB), one request at a "
            "time. Send a smaller file.").encode()
    try:
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
    except RuntimeError:
        pass  # the response had started already; the connection closes with it


_CONFIG = re.compile(rb"<script>window\.gradio_config = (.*?);</script>", re.DOTALL)


def _in_language(body: bytes, language: str) -> bytes:
    """The page (or its configuration) with every label, heading and help text in `language`."""
    import orjson
    from gradio.routes import toorjson

    if body.lstrip().startswith(b"{"):
        return orjson.dumps(lang.translate_config(orjson.loads(body), language))
    found = _CONFIG.search(body)
    if found is None:
        return body
    config = lang.translate_config(orjson.loads(found.group(1)), language)
    page = body[:found.start()] + b"<script>window.gradio_config = " + str(toorjson(config)).encode() + b";</script>"
    return page + lang.page_script(language).encode() + body[found.end():]


def _page_filter(send, language: str):
    """The page in the visitor's language; and the page a visitor gets before logging in carries gradio's API
    description: drop it from that page only."""
    start: dict | None = None
    chunks: list[bytes] = []

    async def filtered(message):
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        if b'"auth_required":true' in body.replace(b" ", b""):
            body = _API_INFO.sub(b"<script>window.gradio_api_info = null;</script>", body)
        if language != "en" and start.get("status") == 200:
            try:
                body = _in_language(body, language)
            except Exception:  # noqa: BLE001 - a page in English beats no page
                log.exception("could not translate the page; serving it in English")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return filtered
