"""Documents an expert already has (txt, md, pdf, docx) as plain text, cut into passages a model can ask about.

Headings are kept as '# ' lines wherever the format has them, so passages follow the document's own sections.
"""

from __future__ import annotations

import re
from pathlib import Path

from studio.data.readers import decode

TEXT_TYPES = (".txt", ".md", ".markdown", ".text")
_HEADING = re.compile(r"^#{1,6}\s+\S")


class DocumentError(ValueError):
    """A document cannot be read; the message says why and what to do, for the user as it is."""


def read_document(path: str | Path) -> str:
    """The document's text; headings of .docx files become '# ' lines so split_passages can cut along them."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"File not found: {path}. Check the name and the folder.")
    ext = path.suffix.lower()
    if ext in TEXT_TYPES:
        text = decode(path.read_bytes())  # the same encoding guesses as for data files
        if text is None:
            raise DocumentError(f"{path.name} holds binary data, not text. Save it as plain text (UTF-8).")
    elif ext == ".pdf":
        text = _read_pdf(path)
    elif ext == ".docx":
        text = _read_docx(path)
    else:
        raise DocumentError(f"{path.name}: Studio reads .txt, .md, .pdf and .docx documents, not '{ext or 'no ext'}'. "
                            "Save or export it as one of those (Word: File > Save As > .docx or PDF).")
    text = text.replace("\r\n", "\n").replace("\x00", "").strip()
    if not text:
        hint = " It may be a scanned PDF (images only); run it through OCR first." if ext == ".pdf" else ""
        raise DocumentError(f"{path.name} has no text in it.{hint}")
    return text


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{path.name} is password-protected. Save an unprotected copy and try again.")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{path.name} could not be read as a PDF ({type(exc).__name__}); it may be damaged. "
                            "Open it and save or print it to a new PDF, or export the text as .txt.") from None


def _read_docx(path: Path) -> str:
    import docx
    from docx.opc.exceptions import OpcError

    try:
        document = docx.Document(str(path))
    except (OpcError, KeyError, ValueError, OSError) as exc:
        raise DocumentError(f"{path.name} could not be opened as a Word document ({type(exc).__name__}); it may be "
                            "damaged or an old .doc renamed. Open it in Word and save it as .docx again.") from None
    except Exception as exc:  # noqa: BLE001 - zipfile and lxml raise many types for a broken package
        raise DocumentError(f"{path.name} could not be opened as a Word document ({type(exc).__name__}). "
                            "Open it in Word and save it as .docx again.") from None
    blocks = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "").lower()
        level = style.removeprefix("heading").strip()
        if style == "title" or (style.startswith("heading") and level.isdigit()):
            text = "#" * (int(level) if level.isdigit() else 1) + " " + text
        blocks.append(text)
    for table in document.tables:  # tables last: python-docx keeps them apart from the paragraph flow
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        blocks.append("\n".join(r for r in rows if r.strip(" |")))
    return "\n\n".join(blocks)


def split_passages(text: str, max_chars: int = 1200) -> list[str]:
    """Passages of at most max_chars (bar headings over 100 characters), cut at headings and paragraph ends, each
    heading kept with its text; small neighbours are merged.

    A model writes better questions about one coherent section than about a window that starts mid-sentence, and a
    lone heading or a one-line paragraph is too little to ask three questions about.
    """
    blocks: list[str] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines: list[str] = []
        for line in chunk.strip().split("\n"):
            if _HEADING.match(line.strip()):  # a heading inside a paragraph block still starts a section
                blocks += ["\n".join(lines)] if lines else []
                blocks.append(line.strip())
                lines = []
            elif line.strip():
                lines.append(line.rstrip())
        blocks += ["\n".join(lines)] if lines else []
    passages: list[str] = []
    current: list[str] = []
    small = max_chars // 4

    def size(parts: list[str]) -> int:
        return sum(len(p) + 2 for p in parts) - 2 if parts else 0

    def flush() -> None:
        carry = [current.pop()] if current and _HEADING.match(current[-1]) else []  # a heading stays with its body
        if current:
            passages.append("\n\n".join(current))
        current[:] = carry

    for block in blocks:
        if _HEADING.match(block) and size(current) >= small:
            flush()
        room = max_chars - min(100, small)  # long paragraphs are cut shorter, leaving room for their heading
        for piece in [block] if len(block) <= max_chars else _cut(block, room):
            if current and size(current) + 2 + len(piece) > max_chars:
                flush()
            current.append(piece)
    if current and not all(_HEADING.match(p) for p in current):
        last = "\n\n".join(current)
        if passages and len(last) < small and len(passages[-1]) + 2 + len(last) <= max_chars:
            passages[-1] += "\n\n" + last
        else:
            passages.append(last)
    return passages


def _cut(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph longer than max_chars, cut after sentences (or hard, for a sentence that long)."""
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        while len(sentence) > max_chars:
            pieces += [current] if current else []
            current = ""
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
    return pieces + ([current] if current else [])
