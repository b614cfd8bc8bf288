"""A corpus of the odd and broken files people upload, generated on the fly (nothing binary in git).

Each case says whether the file can be trained on and which words the report must contain, so the same corpus
can drive the CLI contract (`check-data --json`) and the UI's upload path.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

PAIRS = [("What is the capital of France?", "Paris."), ("Wie teuer ist die Fahrt?", "5,00 €; Kinder zahlen nichts."),
         ("Is 2 > 1?", "Yes, always.")]
HTML = '<script>alert("x")</script><img src=x onerror=alert(1)> &amp; <b>bold</b>'
HUGE_CELL = 300_000  # characters in one answer


@dataclass(frozen=True)
class BadFile:
    id: str
    filename: str
    content: bytes
    trainable: bool  # check-data exits 0 (True) or 2 (False)
    mentions: tuple[str, ...] = ()  # text the report's errors and warnings must contain (row and line numbers)
    rows: int | None = None  # usable rows, where the file is trainable

    def write(self, folder: Path) -> Path:
        path = Path(folder) / self.filename
        path.write_bytes(self.content)
        return path


def table(rows: list[list[str]] | list[tuple[str, str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _qa(delimiter: str = ",", header: tuple[str, str] = ("question", "answer")) -> str:
    return table([header, *PAIRS], delimiter)


def _broken_jsonl() -> bytes:
    lines = [json.dumps({"question": q, "answer": a}) for q, a in PAIRS]
    lines.insert(1, '{"question": "unterminated, "answer": "x"}')
    lines.insert(3, "not json at all")
    return "\n".join(lines).encode()  # lines 2 and 4 are broken


CASES = [
    BadFile("empty", "empty.csv", b"", False, ("is empty",)),
    BadFile("header-only", "header.csv", b"question,answer\r\n", False, ("no data rows",)),
    BadFile("binary-as-csv", "photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, False,
            ("does not look like a text table",)),
    BadFile("gzip-as-csv", "data.csv", gzip.compress(_qa().encode() * 50, mtime=0), False,
            ("does not look like a text table",)),
    BadFile("utf8-bom", "bom.csv", _qa().encode("utf-8-sig"), True, rows=3),
    BadFile("utf16-excel-unicode-text", "excel.txt", _qa("\t").encode("utf-16"), True, rows=3),
    BadFile("cp1252", "windows.csv", _qa(";", ("Frage", "Antwort")).encode("cp1252"), True, rows=3),
    BadFile("semicolon", "semi.csv", _qa(";").encode(), True, rows=3),
    BadFile("tab", "tab.tsv", _qa("\t").encode(), True, rows=3),
    BadFile("ragged", "ragged.csv", b"question,answer\nq1,a1\nq2,a2,oops,more\nq3,a3\n", True,
            ("Row 2 has 4 cells",), rows=2),
    BadFile("nul-bytes", "nul.csv", b"question,answer\nq\x001,a1\nq2,a\x002\nq3,a3\n", True,
            ("NUL", "rows 1, 2"), rows=3),
    BadFile("broken-json", "broken.json",
            b'[\n {"question": "q1", "answer": "a1"},\n {"question": "q2" "answer": "a2"}\n]', False, ("line 3",)),
    BadFile("broken-jsonl-lines", "broken.jsonl", _broken_jsonl(), True, ("Line 2 is not valid JSON", "Line 4"),
            rows=3),
    BadFile("json-wrong-shape", "shape.json", b'{"question": "q1", "answer": "a1"}', False, ("not rows",)),
    BadFile("json-list-of-strings", "strings.json", b'["q1", "a1"]', False, ("not rows",)),
    BadFile("corrupt-xlsx", "book.xlsx", b"PK\x03\x04" + b"\x00garbage" * 200, False, ("could not be opened",)),
    BadFile("huge-cell", "long.csv", table([["question", "answer"], ["q1", "x" * HUGE_CELL], ["q2", "a2"]]).encode(),
            True, ("Row 1", "300,000 characters"), rows=2),
    BadFile("html-in-cells", "html.csv", table([["question", "answer"], [HTML, HTML]]).encode(), True, rows=1),
    BadFile("single-row", "one.csv", b"question,answer\nWhat is it?,It is one row.\n", True, rows=1),
]
