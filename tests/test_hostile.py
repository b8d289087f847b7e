"""Hostile and broken files are normal input for a verifier: every one gets exit status 2
and one printable line (never a traceback, a hang or unbounded memory), and a hostile
implementation fails its cases instead of crashing or fooling ``verify``."""

import copy
import json
import os
from pathlib import Path

import pytest

from xent_ref import cli, golden, verify
from xent_ref.golden import schema as _schema

ESC = "\x1b"


@pytest.fixture(scope="module")
def corpus_document():
    """A small valid corpus (the first 40 cases) as a JSON document to break."""
    return golden.corpus_to_json(golden.build_corpus()[:40])


def _write(tmp_path, document, name="file.json") -> str:
    path = tmp_path / name
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text, encoding="utf-8")
    return str(path)


def _one_line(capsys, start: str) -> str:
    """The single line printed; it starts with ``start`` and holds no control character."""
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith(start), lines[0]
    assert lines[0].isprintable() and len(lines[0]) < 600
    return lines[0]


def _verify(capsys, *args) -> str:
    assert cli.main(["verify", *args]) == 2
    return _one_line(capsys, "xent-ref verify: ")


# ---------------------------------------------------------------------------
# Files that are not JSON at all, or too much of it
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("flag", ["--results", "--corpus"])
def test_endless_devices_stop_at_the_size_limit(device, flag, capsys):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    args = [flag, device] + (["--impl", "xent_ref"] if flag == "--corpus" else [])
    line = _verify(capsys, *args, "--max-bytes", "1000000")
    assert f"is larger than 1000000 bytes" in line


def test_the_default_limit_and_the_environment(tmp_path, monkeypatch, capsys):
    assert _schema.Limits.from_env() == _schema.Limits(64 * 2**20, 2**24)
    path = _write(tmp_path, {"format": "xent-ref-results"})
    monkeypatch.setenv("XENT_REF_MAX_BYTES", "10")
    line = _verify(capsys, "--results", path)
    assert "larger than 10 bytes" in line and "XENT_REF_MAX_BYTES" in line
    monkeypatch.setenv("XENT_REF_MAX_BYTES", "ten")
    assert "XENT_REF_MAX_BYTES=ten is not an integer" in _verify(capsys, "--results", path)
    monkeypatch.delenv("XENT_REF_MAX_BYTES")
    assert "the limit -5 must be positive" in _verify(capsys, "--results", path,
                                                       "--max-elements", "-5")


def test_not_utf8_and_not_json(tmp_path, capsys):
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "is not UTF-8 text" in _verify(capsys, "--results", str(binary))
    assert "is not JSON" in _verify(capsys, "--results", _write(tmp_path, "{'a': 1"))


def test_deep_nesting_is_refused(tmp_path, capsys):
    path = _write(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in _verify(capsys, "--results", path)
    assert "nested too deeply" in _verify(capsys, "--impl", "xent_ref", "--corpus", path)


def test_a_huge_string_is_shown_cut_short(tmp_path, results_document, capsys):
    document = copy.deepcopy(results_document)
    document["implementation"] = "x" * 20_000_000
    document["results"][0] = {"id": document["results"][0]["id"], "error": "y" * 20_000_000}
    assert verify.main(results=_write(tmp_path, document)) == 1
    out = capsys.readouterr().out
    assert len(out) < 20_000 and "(20000000 characters)" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_a_huge_declared_dtype_is_refused_before_allocation(tmp_path, corpus_document, capsys):
    document = copy.deepcopy(corpus_document)
    document["cases"] = [document["cases"][0]]
    document["cases"][0]["inputs"]["x"] = {"dtype": "U100000000", "shape": [1], "data": ["a"]}
    text = json.dumps(document)
    line = _verify(capsys, "--impl", "xent_ref", "--corpus", _write(tmp_path, text))
    assert "dtype 'U100000000' is not one of float32, float64" in line
    small = json.dumps({"format": "xent-ref-results", "schema": 1, "results": [
        {"id": "softmax/C/axis=0/f32", "loss": {"dtype": "U100000000", "shape": [1],
                                                 "data": ["a"]}}]})
    assert len(small) < 300
    assert "dtype 'U100000000'" in _verify(capsys, "--results", _write(tmp_path, small))


def test_an_array_larger_than_the_limit_is_refused(tmp_path, capsys):
    document = {"format": "xent-ref-results", "schema": 1, "results": [
        {"id": "softmax/C/axis=0/f32", "loss": {"dtype": "float32", "shape": [10**6, 10**6],
                                                 "data": []}}]}
    line = _verify(capsys, "--results", _write(tmp_path, document), "--max-elements", "1000")
    assert "1000000000000 elements is more than the limit 1000" in line


# ---------------------------------------------------------------------------
# A corpus that parses but lies
# ---------------------------------------------------------------------------


def _broken(corpus_document, change):
    document = copy.deepcopy(corpus_document)
    change(document)
    return document


def _set(path, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


BROKEN_CORPORA = [
    ("cases-is-5", _set(["cases"], 5), '"cases": must be a list'),
    ("string-case", _set(["cases", 0], "softmax"), "cases[0]: must be an object"),
    ("list-kwargs", _set(["cases", 30, "kwargs", "weight"], [1.0, 2.0, 3.0, 4.0, 5.0]),
     'weight: must be {"dtype", "shape", "data"}'),
    ("float99", _set(["cases", 0, "loss", "dtype"], "float99"), "dtype 'float99' is not one of"),
    ("unknown-function", _set(["cases", 0, "function"], "softmaxx"),
     "unknown function 'softmaxx'"),
    ("nan-rtol", _set(["cases", 0, "rtol"], "nan"), "rtol: must be a finite number >= 0"),
    ("negative-atol", _set(["cases", 0, "atol"], -1.0), "atol: must be a finite number >= 0"),
    ("unknown-kwarg", _set(["cases", 0, "kwargs", "dim"], 1), "softmax takes no keyword 'dim'"),
    ("bad-reduction", _set(["cases", 30, "kwargs", "reduction"], "avg"),
     "'avg' is not a valid reduction"),
    ("ragged-data", _set(["cases", 0, "loss", "data"], [[1.0], 2.0, 3.0, 4.0, 5.0]),
     "value [1.0] is not a valid float32"),
    ("wrong-size", _set(["cases", 0, "loss", "shape"], [7]), "data must be a flat list of 7"),
    ("missing-field", lambda d: d["cases"][0].pop("grad"), "missing grad"),
    ("no-format", lambda d: d.pop("format"), "not an xent-ref golden corpus"),
    ("old-schema", _set(["schema"], 2), "schema 2, this xent_ref reads schema 4"),
    ("duplicate-id", _set(["cases", 1, "id"], "softmax/C/axis=0/f32"), "two cases share an id"),
]


@pytest.mark.parametrize("name, change, message", BROKEN_CORPORA,
                         ids=[name for name, _, _ in BROKEN_CORPORA])
def test_a_broken_corpus_exits_2(tmp_path, corpus_document, capsys, name, change, message):
    assert corpus_document["cases"][30]["function"] == "cross_entropy"  # has a weight
    path = _write(tmp_path, _broken(corpus_document, change))
    line = _verify(capsys, "--impl", "xent_ref", "--corpus", path)
    assert line.startswith("xent-ref verify: cannot read the corpus: corpus ")
    assert message in line
    with pytest.raises(_schema.SchemaError, match="corpus"):
        golden.read_corpus(path)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_tolerances_cannot_let_anything_pass(tmp_path, corpus_document, capsys, token):
    text = json.dumps(corpus_document).replace('"rtol":', f'"rtol":{token},"was":', 1)
    line = _verify(capsys, "--impl", "xent_ref", "--corpus", _write(tmp_path, text))
    assert "bare" in line or "rtol: must be a finite number >= 0" in line


def test_control_characters_from_a_file_are_escaped(tmp_path, corpus_document, results_document,
                                                     capsys):
    evil = f"{ESC}]0;pwned{ESC}\\{ESC}[2J"
    document = copy.deepcopy(results_document)
    document["implementation"] = evil
    document["results"][0]["error"] = evil
    document["results"].append({"id": evil, "error": "x"})
    assert verify.main(results=_write(tmp_path, document)) == 1
    out = capsys.readouterr().out
    assert ESC not in out and "\\x1b]0;pwned" in out
    broken = _broken(corpus_document, _set(["cases", 0, "function"], evil))
    line = _verify(capsys, "--impl", "xent_ref", "--corpus", _write(tmp_path, broken))
    assert "\\x1b[2J" in line
    assert ESC not in _verify(capsys, "--results", str(tmp_path / f"no{ESC}[2J.json"))


# ---------------------------------------------------------------------------
# Results files
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results_document():
    """A correct results document for the softmax cases, computed by xent_ref."""
    import xent_ref as xr
    from xent_ref.golden.jsonio import encode_array

    return {"format": "xent-ref-results", "schema": 1, "implementation": "xent_ref",
            "results": [{"id": c.id, "loss": encode_array(golden.call_function(xr.softmax, c))}
                        for c in golden.build_corpus() if c.function == "softmax"]}


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(results=5), '"results": must be a list'),
    (lambda d: d["results"].__setitem__(0, "softmax"), "results[0]: must be an object"),
    (lambda d: d["results"][0].update(id=7), "id must be a string"),
    (lambda d: d["results"][0].update(error=["list"]), "error: must be a string"),
    (lambda d: d["results"][0].update(extra=1), "unknown key"),
    (lambda d: d.update(schema=99), "schema 99, expected 1"),
])
def test_a_broken_results_file_exits_2(tmp_path, results_document, capsys, change, message):
    document = copy.deepcopy(results_document)
    change(document)
    assert message in _verify(capsys, "--results", _write(tmp_path, document))


def test_the_results_of_a_correct_softmax_pass(tmp_path, results_document, capsys):
    assert verify.main(results=_write(tmp_path, results_document)) == 0


# ---------------------------------------------------------------------------
# Hostile implementations
# ---------------------------------------------------------------------------


def _impl(tmp_path, source: str) -> str:
    path = tmp_path / "impl.py"
    path.write_text(source)
    return str(path)


def test_a_ragged_list_is_a_failed_case(tmp_path, capsys):
    path = _impl(tmp_path, "def softmax(x, axis=-1):\n    return [[1.0, 2.0], [3.0]]\n")
    assert verify.main(impl=path) == 1
    out = capsys.readouterr().out
    assert "returned something that is not an array" in out and "FAILED: 26 of 26" in out  # 24 + float16/bfloat16


def test_strings_and_objects_are_failed_cases(tmp_path, capsys):
    path = _impl(tmp_path, "def softmax(x, axis=-1):\n    return 'softmax'\n"
                           "def softmax_grad(x, g, axis=-1):\n    return object()\n")
    assert verify.main(impl=path) == 1
    out = capsys.readouterr().out
    assert "returned an array of dtype <U7, not numbers" in out
    assert "returned an array of dtype object, not numbers" in out


def test_sys_exit_in_an_implementation_fails_its_cases(tmp_path, capsys):
    path = _impl(tmp_path, "import sys\ndef softmax(x, axis=-1):\n    sys.exit(0)\n")
    assert verify.main(impl=path) == 1
    assert "raised SystemExit: 0" in capsys.readouterr().out
    path = _impl(tmp_path, "import sys\nsys.exit(0)\n")
    assert "cannot import" in _verify(capsys, "--impl", path)


def test_sys_exit_in_check_fails_its_cases():
    from xent_ref import testing

    def leaves(x, axis=-1):
        raise SystemExit(0)

    report = testing.check(leaves, "softmax")
    assert not report.ok and len(report.failures) == 26  # 24 + float16/bfloat16


# ---------------------------------------------------------------------------
# golden export
# ---------------------------------------------------------------------------


def test_export_refuses_to_overwrite_without_force(tmp_path, capsys):
    path = tmp_path / "corpus.json"
    path.write_text("precious")
    assert cli.main(["golden", "export", str(path)]) == 2
    line = _one_line(capsys, "xent-ref golden export: ")
    assert "exists; give --force" in line and path.read_text() == "precious"
    assert cli.main(["golden", "export", "--force", str(path)]) == 0
    assert golden.read_corpus(path)[0].id == golden.build_corpus()[0].id


def test_export_prints_the_content_hash(tmp_path, capsys):
    assert cli.main(["golden", "export", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {golden.corpus_sha256(golden.build_corpus())}" in out
    assert Path(tmp_path / "c.json").stat().st_size < _schema.Limits().max_bytes / 10


@pytest.fixture(scope="module")
def linear_low_document():
    """The corpus's low-precision linear_cross_entropy cases (with a bias: three gradients)."""
    cases = [c for c in golden.build_corpus() if c.id.startswith("lowprec/linear_cross_entropy/")]
    return golden.corpus_to_json(cases)


@pytest.mark.parametrize("name, change, message", [
    ("error-null-for-bias", lambda p: p["grad_error"].__setitem__(2, None),
     "grad_reference and grad_error must be null exactly where grad is null"),
    ("reference-null-for-bias", lambda p: p["grad_reference"].__setitem__(2, None),
     "grad_reference and grad_error must be null exactly where grad is null"),
    ("error-scalar", lambda p: p.__setitem__("grad_error", 1e-3),
     "grad_error: must be a list of 3 numbers or nulls"),
    ("reference-short", lambda p: p.__setitem__("grad_reference", p["grad_reference"][:2]),
     "grad_reference: must be a list of 3 arrays or nulls"),
])
def test_a_broken_rule_for_several_gradients_exits_2(tmp_path, linear_low_document, capsys,
                                                     name, change, message):
    document = copy.deepcopy(linear_low_document)
    change(document["cases"][0]["rule_params"])
    path = _write(tmp_path, document)
    line = _verify(capsys, "--impl", "xent_ref", "--corpus", path)
    assert message in line
    assert cli.main(["verify", "--impl", "xent_ref", "--corpus",
                     _write(tmp_path, linear_low_document, "good.json")]) == 0
