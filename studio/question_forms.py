"""Rule-based rewordings of a question: the same question in other grammatical forms, without a model.

The base model's rewrites vary the words but are loose (a fair share ask something else), and every
one of them costs drafting time. People also change the *form* of a question: "What is X called?"
becomes "What is the name of X?" or "Name X.", "How much is X?" becomes "What does X cost?", and a
hurried "quick question: ..." or an all-lowercase line is common. Those forms are regular enough to
write by rule, so they are exact (same question, same names, same numbers) and free. A model tuned on
one form per fact binds the answer to that form's words; a few forms per fact teach it to look at
what is asked instead (bench/learn.py has the figures).

The rules are for English questions; other questions get no forms (the base model's rewrites still
cover them).
"""

from __future__ import annotations

import random
import re

from studio.data import Example

# (pattern over the whole question, forms built from its groups). The first pattern that matches
# gives the grammatical forms; the general wrappers below fill up to the number asked for.
_DOES = {"is": "does", "are": "do", "was": "did", "were": "did"}
_RULES: list[tuple[str, tuple[str, ...]]] = [
    (r"what (is|are) the names? of (.+)", ("What {0} {1} called?", "Name {1}.", "Tell me the name of {1}.")),
    (r"what (is|are) (.+) called", ("What {0} the {name} of {1}?", "Name {1}.", "What do you call {1}?")),
    (r"who (is|was|are|were) (.+)", ("Name {1}.", "Tell me who {1} {0}.", "Which person {0} {1}?")),
    (r"who (\w+ed) (.+)", ("Name the person who {0} {1}.", "Who was it that {0} {1}?", "By whom was {1} {0}?")),
    (r"who (\w+s) (.+)", ("Name the person who {0} {1}.", "Which person {0} {1}?")),
    (r"what time (does|do|did|is|are|will) (.+)", ("When {0} {1}?", "At what time {0} {1}?")),
    (r"when (does|do|did|will|is|are|was|were) (.+)", ("What time {0} {1}?", "At what time {0} {1}?")),
    (r"(?:in )?(?:what|which) year (\w+) (.+)", ("When {0} {1}?", "In which year {0} {1}?", "What year {0} {1}?")),
    (r"where (is|are|was|were|does|do|did|can) (.+)", ("In which place {0} {1}?", "Where exactly {0} {1}?")),
    (r"how much does it cost to (.+)", ("What does it cost to {0}?", "What is the price to {0}?",
                                         "How much do I pay to {0}?")),
    (r"how much (does|do) (.+) cost", ("What {0} {1} cost?", "What is the price of {1}?")),
    (r"how much (is|are) (.+)", ("What {does} {1} cost?", "What is the price of {1}?", "How much {does} {1} cost?")),
    (r"how long (is|are) (.+)", ("How much time {does} {1} take?", "What is the duration of {1}?")),
    (r"how long (does|do|did|will) (.+)", ("For how long {0} {1}?",)),
    (r"(?:can|may) i (.+)", ("Am I allowed to {0}?", "Is it possible to {0}?", "May I {0}?")),
    (r"what (does|do|did) (.+?) cost(|\W.*)", ("How much {0} {1} cost {2}?", "What is the price of {1} {2}?")),
    (r"what (is|are) (.+)", ("Which {0} {1}?", "Tell me {1}.", "Do you know {1}?")),
    # "What colour is X?" -> "Which colour is X?"; never an auxiliary ("What does X mean?" -> "Which does ...").
    (r"what (?!(?:does|do|did|is|are|was|were|can|could|will|would|should|has|have|had|may|might|must)\b)(\w+) (.+)",
     ("Which {0} {1}?",)),
    (r"which (\w+) (.+)", ("What {0} {1}?",)),
]
_WRAPPERS = ("Quick question: {Q}", "Hi, {q}", "{Q} Thanks!", "{lower}")
_ENGLISH = re.compile(r"\b(what|who|whom|where|when|which|how|why|is|are|can|do|does|the|i)\b", re.I)
# A question typed without its question mark ("what time does the ferry leave") still starts like one.
_OPENS_QUESTION = re.compile(r"(what|who|whom|whose|where|when|which|how|why|is|are|was|were|can|could|do|does|"
                             r"did|may|will|would|should|in what|at what)\b", re.I)


def _first_lower(text: str) -> str:
    """'The MV Saltwren' -> 'the MV Saltwren', but names and acronyms keep their capitals."""
    head = text.split(" ", 1)[0]
    keep = head.isupper() or (len(head) > 1 and any(c.isupper() for c in head[1:])) or head == "I"
    return text if keep or not text else text[0].lower() + text[1:]


def forms_of(question: str) -> tuple[list[str], list[str]]:
    """(grammatical forms, wrapped forms) of `question`; both empty for a non-English one."""
    q = " ".join(question.split())
    if not q.endswith("?") and _OPENS_QUESTION.match(q):
        q = q.rstrip(".!") + "?"
    if not q.endswith("?") or not _ENGLISH.search(q):
        return [], []  # an instruction ("Explain ..."), or not English
    body = q[:-1].rstrip()
    out: list[str] = []
    for pattern, templates in _RULES:
        m = re.fullmatch(pattern, body, re.I)
        if m:
            groups = [g.strip() for g in m.groups()]
            verb = groups[0].lower() if groups else ""
            for template in templates:
                text = template.format(*groups, does=_DOES.get(verb, "does"), name="names" if verb == "are" else "name")
                text = re.sub(r"\s+([?.])", r"\1", " ".join(text.split()))  # an empty group leaves no gap
                out.append(text[0].upper() + text[1:])
            break
    lower = re.sub(r"[?!.]+$", "", q).lower()
    wrapped = [w.format(Q=q, q=_first_lower(q), lower=lower) for w in _WRAPPERS]
    rules = [f for f in dict.fromkeys(out) if normalise(f) != normalise(q)]
    return rules, [w for w in wrapped if w != q]


def normalise(text: str) -> str:
    """Lower case, punctuation as spaces: two questions that normalise the same are the same question."""
    return re.sub(r"\W+", " ", text.lower()).strip()


def held_out_forms(examples: list[Example], seed: int = 0, taken: set[str] | None = None) -> list[Example]:
    """One grammatical form of each single-turn question, kept out of training as the check of an upload too small
    to hold questions out: "answers your questions asked in other words". Exact (same names, same numbers) and
    free. Wrappers ("Quick question: ...") keep the user's own words, so they test nothing and are never chosen."""
    rng = random.Random(f"held-out-{seed}")
    taken = set(taken or ()) | {normalise(e.question) for e in examples}
    out: list[Example] = []
    for example in examples:
        if len(example.messages) != 2 or example.messages[0]["role"] != "user":
            continue
        rules = [f for f in forms_of(example.question)[0] if normalise(f) not in taken]
        if rules:
            form = rng.choice(rules)
            taken.add(normalise(form))
            out.append(Example([{"role": "user", "content": form}, example.messages[1]], example.row))
    return out


def question_form_examples(examples: list[Example], per_question: int, seed: int = 0,
                           taken: set[str] | None = None) -> list[Example]:
    """Up to `per_question` rule-based forms of each single-turn example's question, with its answer.

    Grammatical forms come before the wrappers; within each, the choice is seeded. A form that is
    already a question in `taken` (normalised: every original and rewrite) is skipped, so no question
    is taught twice or with another fact's answer."""
    if per_question <= 0:
        return []
    rng = random.Random(seed)
    taken = set(taken or ()) | {normalise(e.question) for e in examples}
    out: list[Example] = []
    for example in examples:
        if len(example.messages) != 2 or example.messages[0]["role"] != "user":
            continue
        rules, wraps = forms_of(example.question)
        rng.shuffle(rules)
        rng.shuffle(wraps)
        kept = 0
        for form in rules + wraps:
            if kept == per_question:
                break
            if normalise(form) in taken and form not in wraps:
                continue  # an existing question, or one taught for another fact (a wrapper keeps its own words)
            taken.add(normalise(form))
            out.append(Example([{"role": "user", "content": form}, example.messages[1]], example.row))
            kept += 1
    return out
