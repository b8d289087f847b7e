"""Every sentence that ``explain``, ``xent-ref examples`` and the notebooks print, by language.

Each language is one file, ``locale/LANG.json``: a JSON object from message key to
text (the reader, its fallback to English and the display widths of CJK text are
``xent_ref._engine.i18n``'s). Adding a language is adding its file
(``tests/test_examples.py`` holds every catalogue to the same keys as English, with the
same set of ``{placeholders}`` and the same literal numbers in each message).
Placeholders are named, so a language may put them in the order its grammar wants; a
key a catalogue lacks falls back to English. Numbers are never written here: the caller
fills them in from the library's results, identically for every language. Formulas
(``grad = scale * (A p - q)``) stay as they are in every language.

>>> message("grad.title", "en", scale="1 / 3")
'gradient d loss / d input; scale = 1 / 3'
"""

from __future__ import annotations

from pathlib import Path

from xent_ref._engine import i18n as _reader
from xent_ref._engine.i18n import FALLBACK, ljust, rjust, width, wrap  # noqa: F401

LOCALE = Path(__file__).with_name("locale")  # one ``LANG.json`` per language


def languages(folder: Path | None = None) -> tuple[str, ...]:
    """The languages with a catalogue in ``folder`` (default :data:`LOCALE`), English first."""
    return _reader.languages(folder or LOCALE)


def catalogue(lang: str, folder: Path | None = None) -> dict[str, str]:
    """Every message of ``lang`` by key, as its file holds them (placeholders unfilled)."""
    return _reader.catalogue(lang, folder or LOCALE)


def text(key: str, lang: str = FALLBACK, folder: Path | None = None) -> str:
    """The message ``key`` in ``lang``, unfilled; the English one where ``lang`` lacks it."""
    return _reader.text(key, lang, folder or LOCALE)


def message(key: str, lang: str = FALLBACK, folder: Path | None = None, **values) -> str:
    """The message ``key`` in ``lang``, its named ``{placeholders}`` filled from ``values``."""
    return _reader.message(key, lang, folder or LOCALE, **values)
