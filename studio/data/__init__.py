"""The expert's own files, from bytes on disk to token ids; nothing here raises for bad content.

- `readers`: bytes to a header and records (encodings, separators, Excel, JSON, JSONL, the size cap): the one
  table reader of the studio, used for Q&A, preference and evaluation files alike.
- `columns`: column-name normalising and the one synonym table behind every column guess.
- `qa`: records to chat `Example`s (Q&A columns or whole conversations), the `DataReport` with every problem in
  plain words, and the train/eval split.
- `preferences`: records to prompt/chosen/rejected pairs, checked the same way.
- `chat_format`: examples through the chat template to token ids, with the answers-only training mask.
- `documents`: txt/md/pdf/docx documents to text and passages, for drafting Q&A pairs from a manual.

Callers import from `studio.data`; the modules above import only downwards (readers and columns at the bottom).
"""

from studio.data.chat_format import (
    end_of_turn_ids,
    length_problems,
    render_example,
    shared_prefix_length,
    template_problem,
    token_lengths,
    tokenize_example,
)
from studio.data.columns import SYNONYMS, TURN_KEYS, find_column, norm
from studio.data.documents import DocumentError, read_document, split_passages
from studio.data.preferences import PreferencePair, PreferenceReport, detect_preferences, load_preferences
from studio.data.qa import (
    ROLES,
    DataReport,
    Example,
    Problem,
    default_eval_size,
    examples_from_pairs,
    load_data,
    rows_summary,
    split_examples,
)
from studio.data.readers import Findings, cell, read_records

__all__ = [
    "ROLES", "SYNONYMS", "TURN_KEYS", "DataReport", "DocumentError", "Example", "Findings", "PreferencePair",
    "PreferenceReport", "Problem", "cell", "default_eval_size", "detect_preferences", "end_of_turn_ids",
    "examples_from_pairs", "find_column", "length_problems", "load_data", "load_preferences", "norm", "read_document",
    "read_records", "render_example", "rows_summary", "shared_prefix_length", "split_examples", "split_passages",
    "template_problem", "token_lengths", "tokenize_example",
]
