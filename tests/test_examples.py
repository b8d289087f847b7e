"""`xent-ref examples`: every worked example runs and shows exact beside document."""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import xent_ref as xr
from xent_ref.teach import i18n as _i18n
from xent_ref.teach import examples

EXPECTED = {
    # name: (document's figure, exact value as printed)
    "plain": ("0.6406", "0.6405346229"),
    "ignore-index": ("0.4421", "0.4420579592"),
    "weight-1-2": ("0.7396", "0.7397729548"),
    "weight-2-1": ("-", "0.5611439574"),
    "four-by-three": ("1.0400175", "1.040055599"),
    "label-smoothing": ("0.91", "3.003645712"),
    "binary": ("[0.8808, 0.2689, 0.6225]", "0.7054255577"),
}


def _display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def test_every_example_is_listed_and_checked():
    assert list(examples.EXAMPLES) == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_example_shows_document_and_exact(name):
    text = examples.run(name)
    document, exact = EXPECTED[name]
    assert document in text and exact in text
    assert all(_display_width(line) <= 80 for line in text.splitlines()), name
    assert examples.DOCUMENTS[examples.EXAMPLES[name].document][0] in text


def test_exact_figures_are_the_library_values():
    logits = examples.LOGITS_3X2
    labels = examples.LABELS_3X2
    assert f"{float(xr.cross_entropy(logits, labels)):.10g}" == EXPECTED["plain"][1]
    value = xr.cross_entropy(examples.LOGITS_4X3, examples.LABELS_4X3,
                             weight=[2.0, 1.0, 2.0], ignore_index=2)
    assert f"{float(value):.10g}" == EXPECTED["four-by-three"][1]


def test_four_by_three_explains_the_hand_calculation():
    text = examples.run("four-by-three")
    assert "ignored" in text and "1.040017359" in text  # rounded-probability replay
    assert "denominator = sum of weight[target] over kept rows = 4" in text


def test_weight_example_names_the_slip():
    text = examples.run("weight-1-2")
    assert "2.0752, not 2.0741" in text


def test_label_smoothing_class_equals_library():
    text = examples.run("label-smoothing")
    line = next(line for line in text.splitlines() if "class minus library" in line)
    assert abs(float(line.split()[-1])) < 1e-14


def test_main_list_and_one_name(capsys):
    assert examples.main([], list_only=True) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(EXPECTED)
    assert all(len(line) <= 80 for line in listed)
    assert examples.main(["binary"]) == 0
    out = capsys.readouterr().out
    assert out == examples.run("binary") and "plain:" not in out


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_example_derives_its_gradient(name):
    text = examples.run(name)
    gradient = text[text.index("The gradient."):]
    assert all(_display_width(line) <= 80 for line in gradient.splitlines())


def test_gradient_words_match_the_numbers():
    """The paragraphs' claims, checked on the library's own gradients."""
    ignore = xr.explain("cross_entropy", examples.LOGITS_3X2, examples.LABELS_3X2,
                        ignore_index=1).gradient
    assert (ignore.rows[1] == 0).all()  # "its row is exactly (0, 0)"
    ignore_text = " ".join(examples.run("ignore-index").split())  # the paragraph, unwrapped
    assert "its row is exactly (0, 0)" in ignore_text
    plain = xr.cross_entropy_grad(examples.LOGITS_3X2, examples.LABELS_3X2)
    np.testing.assert_allclose(ignore.rows[0], 1.5 * plain[0], rtol=1e-15)
    assert "1.5 times its value" in ignore_text
    assert "2 times the unweighted row" in " ".join(examples.run("weight-1-2").split())
    np.testing.assert_allclose(plain.sum(axis=1), 0, atol=1e-16)
    binary = examples.run("binary")
    # (p - y) / (p (1 - p)) / 3 times p (1 - p) is the logits gradient without pos_weight
    logits_grad = xr.binary_cross_entropy_with_logits_grad(examples.BINARY_LOGITS,
                                                           examples.BINARY_TARGETS)
    assert all(f"{v:.6g}" in binary for v in logits_grad)


_NUMBER = re.compile(r"(?<![A-Za-z_])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def _numbers_by_block(name: str, lang: str) -> list[list[str]]:
    """The numbers of each table line, and of each paragraph, in the order printed
    (sorted inside a line or paragraph: Chinese may order a sentence differently)."""
    blocks = []
    for item in examples.EXAMPLES[name].replay(lang):
        if isinstance(item, examples.Prose):
            blocks.append(sorted(_NUMBER.findall(" ".join(item.lines(lang)))))
        else:
            blocks += [sorted(_NUMBER.findall(line)) for line in item.splitlines()]
    return blocks


@pytest.mark.parametrize("name", list(EXPECTED))
def test_chinese_has_the_same_numbers_line_by_line(name):
    english, chinese = _numbers_by_block(name, "en"), _numbers_by_block(name, "zh")
    assert len(english) == len(chinese)
    for line, (en, zh) in enumerate(zip(english, chinese)):
        assert en == zh, (name, line)
    text = examples.run(name, lang="zh")
    assert all(_display_width(line) <= 80 for line in text.splitlines()), name
    assert examples.DOCUMENTS[examples.EXAMPLES[name].document][0] in text
    assert "梯度。" in text and "The gradient" not in text


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _literal_numbers(text: str) -> list[str]:
    literal = "".join(part for part, _, _, _ in string.Formatter().parse(text))
    return sorted(re.findall(r"\d+", literal))


def test_every_catalogue_has_the_english_keys():
    english = _i18n.catalogue("en")
    assert set(_i18n.languages()) >= {"en", "zh"}
    assert (Path(_i18n.__file__).parent / "locale" / "zh.json").is_file()
    for lang in _i18n.languages():
        assert set(_i18n.catalogue(lang)) == set(english), lang


def test_every_message_has_the_same_placeholders_and_numbers_in_every_language():
    # the same set of named placeholders (a language may order them as its grammar
    # wants) and the same literal numbers: a reader, or a test (tests/test_notebooks.py),
    # can then follow the numbers from one language to the other
    english = _i18n.catalogue("en")
    for lang in _i18n.languages():
        for key, text in _i18n.catalogue(lang).items():
            assert _fields(text) == _fields(english[key]), (lang, key)
            assert _literal_numbers(text) == _literal_numbers(english[key]), (lang, key)


def test_placeholders_are_named():
    for lang in _i18n.languages():
        for key, text in _i18n.catalogue(lang).items():
            assert all(not field.isdigit() for field in _fields(text)), (lang, key)
            # a positional "{}" parses as an empty field name
            assert all(field for _, field, _, _ in string.Formatter().parse(text)
                       if field is not None), (lang, key)


def _fake_locale(tmp_path: Path, fake: dict) -> Path:
    for lang in ("en", "zh"):
        shutil.copy(Path(_i18n.__file__).parent / "locale" / f"{lang}.json", tmp_path)
    (tmp_path / "xx.json").write_text(json.dumps(fake, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def test_a_third_language_is_one_file(tmp_path, monkeypatch):
    # a language that reorders a message's placeholders and lacks every other key
    fake = {"grad.cut_classes": "[{width}] {last}..{first}"}
    monkeypatch.setattr(_i18n, "LOCALE", _fake_locale(tmp_path, fake))
    assert _i18n.languages() == ("en", "xx", "zh")
    assert _i18n.message("grad.cut_classes", "xx", first=2, last=9, width=80) == "[80] 9..2"
    # English for the keys it lacks: the example runs, worded as in English
    assert examples.run("plain", lang="xx") == examples.run("plain", lang="en")
    with pytest.raises(ValueError, match="lang"):
        _i18n.message("grad.cut_classes", "fr", first=2, last=9, width=80)


def test_the_cli_offers_every_catalogue(tmp_path, monkeypatch, capsys):
    from xent_ref import cli

    monkeypatch.setattr(_i18n, "LOCALE", _fake_locale(tmp_path, {}))
    assert cli.main(["examples", "plain", "--lang", "xx"]) == 0
    assert capsys.readouterr().out == examples.run("plain")


def test_notes_are_catalogue_keys():
    ex = xr.explain("binary_cross_entropy", [0.2, 0.9], [0.0, 1.0])
    assert [note.key for note in ex.notes] == ["note.bce_clamp"]
    assert _i18n.message("note.bce_clamp", "zh") in ex.to_text(lang="zh")
    assert _i18n.message("note.bce_clamp", "en") not in ex.to_text(lang="zh")
    assert _i18n.message("note.bce_clamp", "en") in ex._repr_html_()


def test_chinese_wrap_keeps_ascii_words_whole():
    text = "梯度。" + "很长的中文句子" * 8 + " grad = scale * (A p - q)，结束。"
    lines = _i18n.wrap(text, 40)
    assert all(_i18n.width(line) <= 40 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert not any(line.startswith("，") for line in lines)


def test_cli_lang(capsys):
    from xent_ref import cli

    assert cli.main(["examples", "plain", "--lang", "zh"]) == 0
    assert capsys.readouterr().out == examples.run("plain", lang="zh")
    with pytest.raises(SystemExit):
        cli.main(["examples", "--lang", "fr"])
    capsys.readouterr()
    with pytest.raises(ValueError, match="lang"):
        examples.run("plain", lang="fr")


def test_main_unknown_name(capsys):
    assert examples.main(["nope"]) == 2
    assert "unknown example nope" in capsys.readouterr().err


def test_main_all(capsys):
    assert examples.main([]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert f"\n{name}: " in "\n" + out


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def test_console_script_equals_python_m():
    script = shutil.which("xent-ref", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the xent-ref console script is not installed in this environment")
    for args in (["examples"], ["examples", "--list"], ["examples", "four-by-three"]):
        assert _run(script, *args) == _run(sys.executable, "-m", "xent_ref", *args)
    assert _run(sys.executable, "-m", "xent_ref", "examples") == "\n".join(
        examples.run(name) for name in EXPECTED
    )


def test_the_readme_excerpt_is_current():
    readme = (Path(__file__).parent.parent / "docs" / "learning.md").read_text(encoding="utf-8")
    section = readme[readme.index("An excerpt of `uv run --no-dev xent-ref examples four-by-three`"):]
    excerpt = section.split("```\n")[1]
    text = examples.run("four-by-three")
    for part in excerpt.split("\n...\n"):  # "..." marks a cut
        assert part.strip() and part.strip() in text
