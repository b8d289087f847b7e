"""The report's sentences by language: ``locale/LANG.json`` (read by
``xent_ref._engine.i18n``), the convention catalogue's explanations and fixes in each
language, and the comparison's reasons ("at index (2,): expected ..., got ...")
rendered in the report's language from their parts.

English explanations and fixes live with their conventions (``conventions.py``); another
language's catalogue holds ``convention.<id>.explanation`` and ``convention.<id>.fix``
(``convention.<id>.fix.<function>`` where the fix differs per function).

>>> say("short.fix", "zh", fix="...")
'改法：...'
"""

from __future__ import annotations

import re
from pathlib import Path

from xent_ref._engine import i18n as _reader

LOCALE = Path(__file__).with_name("locale")
FALLBACK = _reader.FALLBACK


def languages() -> tuple[str, ...]:
    """The report languages, English first."""
    return _reader.languages(LOCALE)


def check_lang(lang: str) -> str:
    if lang not in languages():
        raise ValueError(f"lang: expected one of {', '.join(languages())}, got {lang!r}")
    return lang


def say(key: str, lang: str, **values) -> str:
    """The report message ``key`` in ``lang``, filled from ``values``."""
    return _reader.message(key, lang, LOCALE, **values)


def convention_text(diagnosis, part: str, lang: str) -> str:
    """``part`` ("explanation" or "fix") of ``diagnosis`` in ``lang``: the per-function
    text where the catalogue has one, else the convention's."""
    if lang == FALLBACK:
        return getattr(diagnosis, part)
    messages = _reader.catalogue(lang, LOCALE)
    base = _base(diagnosis.function)
    for key in (f"convention.{diagnosis.id}.{part}.{base}",
                f"convention.{diagnosis.id}.{part}"):
        if key in messages:
            return messages[key]
    return getattr(diagnosis, part)


def _base(function: str) -> str:
    return function.removesuffix("_grad")


_AT = re.compile(r"^at index (?P<index>.*?): expected (?P<expected>.*?), got (?P<got>.*?)"
                 r"(?:; \|got - expected\| = (?P<error>\S+) > atol \+ rtol\*\|expected\| "
                 r"= (?P<bound>\S+))?$")
_KIND = re.compile(r"^(?P<kind>dtype|shape) (?P<got>.*), expected (?P<expected>.*)$")


def why(text: str, lang: str) -> str:
    """A comparison's reason (:mod:`xent_ref.verify.compare`'s English) in ``lang``; the
    numbers, names and an exception's own message stay as they are."""
    if lang == FALLBACK:
        return text
    prefix = ""
    part = re.match(r"^(grad of|statistic) (\w+): (.*)$", text)
    if part:
        derivative = part.group(1) == "grad of"
        prefix, text = f"{'d' if derivative else ''}{part.group(2)}: ", part.group(3)
    found = _AT.match(text)
    if found:
        values = found.groupdict()
        said = say("why.at_index", lang, **{k: values[k] for k in ("index", "expected", "got")})
        if values["error"]:
            said += say("why.over", lang, error=values["error"], bound=values["bound"])
        return prefix + said
    found = _KIND.match(text)
    if found:
        return prefix + say(f"why.{found['kind']}", lang, got=found["got"],
                            expected=found["expected"])
    if text.startswith("raised "):
        return prefix + say("why.raised", lang, error=text.removeprefix("raised "))
    return prefix + text
