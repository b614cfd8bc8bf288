"""English or Vietnamese: the page's words, chosen per browser and translated at the edge of the web app.

Gradio's own i18n (`gr.I18n`) cannot carry this: its frontend picks a locale only among the languages gradio
ships (Vietnamese is not one, so a Vietnamese browser gets English), and it translates static keys, never the
messages the server writes (progress, problems, verdicts). So the studio translates on the server, in two
places every word passes: the page's configuration as it is served (`translate_config`, called by the
`Shield` middleware) and every event's outputs and errors (`translate_outputs`, called by the guard). The engine
and the CLI stay in English; the catalogue (`studio.ui.vi`) maps English text, whole or by template, to
Vietnamese.

The language is the `studio-lang` cookie the switch at the top of the page sets, else the browser's
Accept-Language, else English.
"""

from __future__ import annotations

import re
from functools import cache
from http.cookies import SimpleCookie
from typing import Any

COOKIE = "studio-lang"
LANGS = {"en": "English", "vi": "Tiếng Việt"}

# Text with no letters to translate, or only names and technical tokens that read the same in both languages.
_NOTHING = re.compile(r"^[\W\d_]*$")
_COMMON_ENGLISH = re.compile(
    r"\b(the|and|of|to|your|is|are|for|in|on|with|this|that|it|be|not|from|at|by|or|as|no|yes|run|runs|data|"
    r"model|training|train|answers?|questions?|loaded|file|step|left|done|before|after|here|load|start|"
    r"stop|epochs?|loss|wait|waiting|ready|none|new|what|which|how|when|each|every|one|all)\b", re.IGNORECASE)

# Placeholders: {n}, {n1}... a number (digits with . , : or / inside); {code} text without a backtick (a name
# shown as code); any other name, any text (not ending in a backslash: Markdown escapes stay whole).
_FIELD = re.compile(r"\{(\w+)\}")
_FIELD_REGEX = {"n": r"(?P<%s>\d[\d.,:/]*)", "code": r"(?P<%s>[^`]+)"}
_SPLITS = (re.compile(r"(\n)"), re.compile(r"(\s+·\s+)"), re.compile(r"(?<=[.!?:;…])(\s+)(?=\S)"),
           re.compile(r"(,\s+)"))
_WRAP = re.compile(r"^(\s*(?:#{1,6}\s+|[-*]\s+|\d+\.\s+|>\s*|⚠\s*|[✅❌⏳🏃⏸️⏹️⚠️🔒]+\s*)*)(.*?)(\s*)$", re.DOTALL)
_EMPHASIS = re.compile(r"^(\*\*|\*|_|`|<small>|<b>)(.+?)(\*\*|\*|_|`|</small>|</b>)([.:]?)$", re.DOTALL)
_TAGS = re.compile(r"(<[^>]+>)")
_RAW_MARK = re.compile(r"(?<!\\)[`*_{}\[\]()#+\-.!|>~]")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")

misses: set[str] = set()  # English the catalogue had no words for, for the tests and for whoever extends it


def choose(cookie_header: str | None, accept_language: str | None) -> str:
    """The cookie the switch set, else the first of the browser's languages the studio has, else English."""
    if cookie_header:
        jar = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header means no choice made
            jar = SimpleCookie()
        if COOKIE in jar and jar[COOKIE].value in LANGS:
            return jar[COOKIE].value
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in LANGS:
            return code
    return "en"


def of_request(request: Any) -> str:
    """The language of a gradio or starlette request (None: English)."""
    headers = getattr(request, "headers", None) or {}
    return choose(headers.get("cookie"), headers.get("accept-language"))


def current() -> str:
    """The language of the request the running event handler serves."""
    from gradio.context import LocalContext

    return of_request(LocalContext.request.get(None))


@cache
def _catalogue() -> tuple[dict[str, str], list[tuple[re.Pattern, str, tuple[str, ...]]]]:
    from studio.ui import vi

    patterns = []
    for english, vietnamese in vi.PATTERNS:
        names = tuple(_FIELD.findall(english))
        regex = "".join(
            _FIELD_REGEX.get(part.rstrip("0123456789"), r"(?P<%s>.*?[^\\])") % part if i % 2 else re.escape(part)
            for i, part in enumerate(_FIELD.split(english)))
        patterns.append((re.compile(f"^{regex}$", re.DOTALL), vietnamese, names))
    return vi.EXACT, patterns


def _whole(text: str, lang: str, note: bool = True) -> str | None:
    if "\\" in text and not _RAW_MARK.search(text):  # Markdown-escaped as a whole (a message shown as typed):
        plain = _ESCAPED.sub(r"\1", text)              # looked up plain, escaped again
        if plain != text:
            from studio.ui import md_escape

            found = _whole(plain, lang, note)
            return md_escape(found) if found is not None else None
    exact, patterns = _catalogue()
    if text in exact:
        return exact[text]
    for regex, template, names in patterns:
        match = regex.match(text)
        if match:
            return template.format(**{name: translate(match.group(name), lang, note) for name in names})
    return None


def translate(text: str, lang: str, note: bool = True) -> str:
    """`text` in `lang`: whole, else line by line, tag by tag, ' · ' part by part and sentence by sentence, each
    also with its Markdown marks (heading, bullet, emphasis) around it. What the catalogue lacks stays English
    and, when `note`, is remembered in `misses`."""
    if lang == "en" or not isinstance(text, str) or _NOTHING.match(text):
        return text
    found = _whole(text, lang, note)
    if found is not None:
        return found
    lead, core, tail = _WRAP.match(text).groups()
    if (lead or tail) and core:
        found = _whole(core, lang, note)
        if found is not None:
            return lead + found + tail
    emphasis = _EMPHASIS.match(core)
    if emphasis:
        opening, inner, closing, stop = emphasis.groups()
        found = _whole(inner, lang, note)
        if found is not None:
            return lead + opening + found + closing + stop + tail
    if "<" in text and _TAGS.search(text):
        return "".join(part if i % 2 else translate(part, lang, note) for i, part in enumerate(_TAGS.split(text)))
    for split in _SPLITS:
        parts = split.split(text)
        if len(parts) > 1:
            return "".join(part if i % 2 else translate(part, lang, note) for i, part in enumerate(parts))
    if note and _COMMON_ENGLISH.search(text):
        misses.add(text)
    return text


# ---- what gradio sends: the page's configuration, event outputs ------------------------------------------------

_TEXT_VALUES = {"markdown", "html", "button", "uploadbutton", "downloadbutton"}
# Table columns whose cells the studio writes (a problem, a level, a run's state, a wrong value); every other cell is
# the user's data or the model's answer, shown as it is.
_OUR_COLUMNS = {"level", "problem", "state", "⚠ tuned states a wrong value", "change", "forgetting check",
                "held-out questions answered"}


def _choices(choices: list, lang: str) -> list:
    """Shown labels only: a choice's value is what the handlers receive, whatever the language."""
    return [[translate(c[0], lang), c[1]] if isinstance(c, (list, tuple)) and len(c) == 2 else c for c in choices]


def _props(kind: str, props: dict, lang: str, language_switch: bool = False) -> dict:
    for key in ("label", "info", "placeholder", "description"):
        if isinstance(props.get(key), str):
            props[key] = translate(props[key], lang)
    if kind in _TEXT_VALUES and isinstance(props.get("value"), str):
        props["value"] = translate(props["value"], lang)
    if kind == "highlightedtext" and isinstance(props.get("value"), list):
        props["value"] = _value(kind, props["value"], lang)
    if kind == "dataframe" and isinstance(props.get("value"), dict):
        value = props["value"]
        ours = [h in _OUR_COLUMNS for h in value.get("headers") or []]
        value["headers"] = [translate(h, lang) for h in value.get("headers") or []]
        value["data"] = [[translate(c, lang, note=False) if i < len(ours) and ours[i] else c
                          for i, c in enumerate(row)] for row in value.get("data") or []]
    if isinstance(props.get("headers"), list):
        props["headers"] = [translate(h, lang) if isinstance(h, str) else h for h in props["headers"]]
    if isinstance(props.get("color_map"), dict):
        props["color_map"] = {translate(k, lang): v for k, v in props["color_map"].items()}
    if isinstance(props.get("choices"), list) and not language_switch:
        props["choices"] = _choices(props["choices"], lang)
    if language_switch:
        props["value"] = lang
    return props


def translate_config(config: dict, lang: str) -> dict:
    """The page's configuration with every label, help text, heading and button in `lang` (in place), and the
    language switch showing it."""
    if isinstance(config.get("title"), str):
        config["title"] = translate(config["title"], lang)
    for component in config.get("components", []):
        props = component.get("props")
        if isinstance(props, dict):
            _props(component.get("type", ""), props, lang, language_switch=props.get("elem_id") == SWITCH_ID)
    return config


SWITCH_ID = "studio-lang"
# The switch keeps the choice in a cookie, which every later request (the page, each event) carries.
SWITCH_JS = (f"(choice) => {{ document.cookie = '{COOKIE}=' + choice + '; path=/; max-age=31536000; samesite=lax'; "
             "window.location.reload(); }")


_SWAP_JS = """<script>(() => {
  const words = %s;
  const patterns = %s.map(([find, put]) => [new RegExp(find), put]);
  document.documentElement.lang = "%s";
  const swap = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const key = node.nodeValue.trim();
      if (!key) continue;
      if (words[key]) { node.nodeValue = node.nodeValue.replace(key, words[key]); continue; }
      for (const [find, put] of patterns) {
        if (find.test(key)) { node.nodeValue = node.nodeValue.replace(key, key.replace(find, put)); break; }
      }
    }
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "characterData") swap(change.target.parentNode || change.target);
      for (const added of change.addedNodes) swap(added.nodeType === 3 ? added.parentNode || added : added);
    }
  }).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
})();</script>"""


def page_script(lang: str) -> str:
    """A script for the page in `lang`: the words gradio's own widgets write (its frontend has no Vietnamese),
    replaced as they appear, and the page's language declared for screen readers and spell checkers."""
    import json

    from studio.ui import vi

    if lang == "en":
        return ""

    def safe(value) -> str:  # inside a <script>: no "<" to close it early
        return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")

    return _SWAP_JS % (safe(vi.GRADIO), safe(vi.GRADIO_PATTERNS), lang)


def _figure(figure: Any, lang: str) -> Any:
    """A plotly figure's titles and trace names in `lang`."""
    layout = figure.layout
    axes = [layout[name] for name in ("xaxis", "yaxis", "yaxis2") if name in layout]
    for part in (layout.title, *(axis.title for axis in axes)):
        if part is not None and part.text:
            part.text = translate(part.text, lang, note=False)
    for note in layout.annotations or ():
        if note.text:
            note.text = translate(note.text, lang, note=False)
    for trace in figure.data:
        if trace.name:
            trace.name = translate(trace.name, lang, note=False)
    return figure


def _value(kind: str, value: Any, lang: str) -> Any:
    if isinstance(value, dict) and value.get("__type__") == "update":
        update = _props(kind, dict(value), lang)
        if kind not in _TEXT_VALUES and kind != "highlightedtext" and "value" in value:  # not done twice
            update["value"] = _value(kind, value["value"], lang)
        return update
    if isinstance(value, str):
        return translate(value, lang) if kind in _TEXT_VALUES else value
    if kind == "chatbot" and isinstance(value, list):
        return [{**m, "content": translate(m["content"], lang, note=False)} if isinstance(m, dict)
                and isinstance(m.get("content"), str) else m for m in value]
    if kind == "dataframe" and hasattr(value, "columns") and hasattr(value, "map"):
        frame = value.copy()
        for column in [c for c in frame.columns if c in _OUR_COLUMNS]:
            frame[column] = frame[column].map(lambda c: translate(c, lang, note=False) if isinstance(c, str) else c)
        return frame.rename(columns=lambda c: translate(c, lang) if isinstance(c, str) else c)
    if kind == "plot" and hasattr(value, "layout") and hasattr(value, "data"):
        return _figure(value, lang)
    if kind == "highlightedtext" and isinstance(value, list):
        return [(text, translate(label, lang) if isinstance(label, str) else label) for text, label in value]
    if hasattr(value, "constructor_args") and isinstance(value.constructor_args, dict):
        _props(kind, value.constructor_args, lang)  # what gradio sends for a component returned as an update
    return value


def translate_outputs(result: Any, kinds: list[str], lang: str) -> Any:
    """An event's return value in `lang`: each output translated as its component shows it."""
    if lang == "en" or not kinds:
        return result
    if len(kinds) == 1:
        return _value(kinds[0], result, lang)
    if isinstance(result, (tuple, list)) and len(result) == len(kinds):
        return type(result)(_value(kind, value, lang) for kind, value in zip(kinds, result, strict=True))
    return result
