"""Column names as people write them, and the one synonym table that maps them to roles.

Q&A files, preference files and evaluation files all name their columns freely ("Frage", "Expected answer",
"prompt"); they share this table so a column means the same in every one of them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

# Normalised column names (see `norm`), best match first. "instruction" comes before "input" so Alpaca's
# instruction/input/output maps input to context, while a plain input/output file still works.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "question": ("question", "questions", "q", "instruction", "prompt", "query", "input", "user", "userinput",
                 "userquestion", "ask", "frage", "pregunta", "domanda", "vraag", "inputtext", "prompttext"),
    "answer": ("answer", "answers", "a", "response", "output", "completion", "reply", "assistant", "target",
               "expectedanswer", "expectedoutput", "antwort", "respuesta", "risposta", "réponse", "reponse",
               "antwoord", "outputtext", "responsetext"),
    "context": ("context", "input", "background", "passage", "document", "additionalcontext", "kontext"),
    "system": ("system", "systemprompt", "systemmessage"),
    "chosen": ("chosen", "preferred", "good", "accepted", "better", "chosenresponse", "goodanswer", "positive",
               "win", "winner"),
    "rejected": ("rejected", "dispreferred", "bad", "refused", "worse", "rejectedresponse", "badanswer", "negative",
                 "lose", "loser"),
    # Evaluation files only: the reference answer under another name, and the fact an answer must contain. In a
    # training file "reference" is as likely the source of a fact, so there it is not taken for the answer.
    "reference": ("reference", "expected"),
    "key": ("key", "keyword", "keywords", "mustcontain"),
}

# A column (or JSON key) by one of these names holds whole conversations rather than one cell of text.
TURN_KEYS = ("messages", "conversations", "conversation")


def norm(name: object) -> str:
    """Lowercase letters and digits only, so "Expected Answer" and "expected_answer" are the same name."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def find_column(header: Iterable[str], names: Iterable[str], taken: Collection[str] = ()) -> str | None:
    """The column whose name comes first in `names`; of two that read the same, the leftmost.

    `taken` columns are already used for another role, so one column never fills two.
    """
    by_name = {norm(c): c for c in reversed(list(header)) if c not in taken}
    return next((by_name[n] for n in names if n in by_name), None)
