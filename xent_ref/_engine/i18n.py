"""The message catalogues' reader: every sentence a wing of the package prints, by language.

A wing that prints (``xent_ref.teach``, ``xent_ref.verify``) keeps its own folder of
catalogues and reads it through these functions, passing the folder. Each language is
one file, ``LANG.json`` in that folder: a JSON object from message key to
text. Adding a language is adding its file (``tests/test_examples.py`` holds every
catalogue to the same keys as English, with the same set of ``{placeholders}`` and
the same literal numbers in each message). Placeholders are named, so a language
may put them in the order its grammar wants; a key a catalogue lacks falls back to
English. Numbers are never written here: the caller fills them in from the
library's results, identically for every language. Formulas
(``grad = scale * (A p - q)``) stay as they are in every language.

>>> from xent_ref.teach.i18n import LOCALE
>>> message("grad.title", "en", LOCALE, scale="1 / 3")
'gradient d loss / d input; scale = 1 / 3'
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from functools import lru_cache
from pathlib import Path

FALLBACK = "en"  # every catalogue is checked against it, and falls back to it


def languages(folder: Path) -> tuple[str, ...]:
    """The languages with a catalogue in ``folder``, English first."""
    found = sorted(path.stem for path in folder.glob("*.json"))
    return tuple(sorted(found, key=lambda lang: lang != FALLBACK))


def catalogue(lang: str, folder: Path) -> dict[str, str]:
    """Every message of ``lang`` by key, as its file holds them (placeholders unfilled)."""
    return dict(_messages(lang, folder))


def _messages(lang: str, folder: Path) -> dict[str, str]:
    if lang not in languages(folder):
        raise ValueError(f"lang: expected one of {languages(folder)}, got {lang!r}")
    return _read(folder / f"{lang}.json")


@lru_cache(maxsize=None)
def _read(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def text(key: str, lang: str, folder: Path) -> str:
    """The message ``key`` in ``lang``, unfilled; the English one where ``lang`` lacks it."""
    messages = _messages(lang, folder)
    return messages[key] if key in messages else _messages(FALLBACK, folder)[key]


def message(key: str, lang: str, folder: Path, **values) -> str:
    """The message ``key`` in ``lang``, its named ``{placeholders}`` filled from ``values``."""
    return text(key, lang, folder).format(**values)


def width(text: str) -> int:
    """Display columns of ``text``: a CJK character or full-width punctuation takes 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, columns: int) -> str:
    """``text`` padded on the right to ``columns`` display columns (``str.ljust`` for CJK)."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    """``text`` padded on the left to ``columns`` display columns (``str.rjust`` for CJK)."""
    return " " * max(0, columns - width(text)) + text


# ASCII runs (words, numbers, formulas) are never split; a CJK character can end a line.
_TOKENS = re.compile(r"[\x21-\x7e]+| +|.")
_CLOSING = "，。；：、）”！？"  # never at the start of a line: they may use the last 2 columns


def wrap(text: str, columns: int, indent: str = "") -> list[str]:
    """Wrap ``text`` to ``columns`` display columns (``textwrap`` for text without CJK)."""
    if width(text) == len(text):
        return textwrap.wrap(text, columns, initial_indent=indent, subsequent_indent=indent)
    lines, line = [], indent
    for token in _TOKENS.findall(text):
        room = columns if token in _CLOSING else columns - 2
        if width(line) + width(token) > room and line.strip():
            lines.append(line.rstrip())
            line = indent
            if token.isspace():
                continue
        line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines
