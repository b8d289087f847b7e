"""The corpus's files: content hashes, the JSON document (large arrays in ``.npy`` files
beside it), reading it back with every field checked, and the export command.
``docs/golden-format.md`` describes the format for readers in any language.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from xent_ref.version import __version__
from xent_ref.golden import schema as _schema
from xent_ref.golden.cases import Case, frozen
from xent_ref.golden.expected import build_corpus
from xent_ref.golden.inputs import SEED, Stream, rounded
from xent_ref.golden.jsonio import decode_array, encode_array, npy_bytes, read_npy
from xent_ref.golden.schema import SIGNATURES, SchemaError, printable

FORMAT = "xent-ref-golden"
# 3: nll_loss inputs drawn without log_softmax (bit-identical across NumPy versions),
#    an optional per-case "rule" and inputs given as a seed spec.
# 4: large arrays in .npy files beside the JSON, float16/bfloat16 arrays, vocabulary-scale
#    cases (a tolerance that grows as sqrt(n)), reference-error cases with exact_only.
SCHEMA_VERSION = 4


# ---------------------------------------------------------------------------
# Content hashes
# ---------------------------------------------------------------------------


def _canonical(document) -> bytes:
    return json.dumps(document, allow_nan=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def corpus_sha256(cases, files: dict | None = None) -> str:
    """The sha256 of the cases' canonical JSON (sorted keys, no spaces; an array in a
    ``.npy`` file enters by its own sha256): the same for a generated corpus and for any
    file exported from it, whatever its header says."""
    return hashlib.sha256(_canonical([case_to_json(case, files)
                                      for case in cases])).hexdigest()


def inputs_sha256(cases) -> str:
    """The sha256 of every case's inputs only (ids, positional arrays, keyword arguments,
    ``grad_output``): what must not move with the NumPy version (expected values may, by
    an ulp, within the tolerance)."""
    digest = hashlib.sha256()
    for case in cases:
        arrays = [*case.inputs.items(), *sorted(case.kwargs.items()),
                  ("grad_output", case.grad_output)]
        # (an hvp's several directions: one entry each, "v[0]"...; None as any other value)
        arrays = [entry for name, value in arrays for entry in (
            [(f"{name}[{i}]", part) for i, part in enumerate(value)]
            if isinstance(value, tuple) else [(name, value)])]
        digest.update(case.id.encode())
        for name, value in arrays:
            if isinstance(value, np.ndarray):
                digest.update(f"{name}:{value.dtype.name}:{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(f"{name}={value!r}".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# The JSON file
# ---------------------------------------------------------------------------


# Arrays of more elements than this are written to .npy files beside the JSON (the
# vocabulary-scale cases: 4 x 128256 numbers as JSON text would be 10 MB per array).
LARGE_ARRAY = 4096
ARRAY_DIRECTORY = "xent-ref-arrays"  # beside the corpus file; names are content hashes


def encode_stored(value, files: dict | None):
    """An array as JSON: its values inline, or (over :data:`LARGE_ARRAY` elements) a
    reference ``{"dtype", "shape", "npy", "sha256"}`` to the ``.npy`` file named by its
    content's sha256, whose bytes go into ``files`` (when given) for the writer (a corpus,
    or a results file: :func:`write_arrays`)."""
    if value.size <= LARGE_ARRAY:
        return encode_array(value)
    data = npy_bytes(value)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{ARRAY_DIRECTORY}/{digest}.npy"
    if files is not None:
        files[name] = data
    return {"dtype": value.dtype.name, "shape": list(value.shape), "npy": name,
            "sha256": digest}


def case_to_json(case: Case, files: dict | None = None) -> dict:
    """The case's JSON object; the bytes of its ``.npy`` files go into ``files``."""
    def encode(value):
        return encode_stored(value, files) if isinstance(value, np.ndarray) else value

    if case.kind != "loss":
        return _second_order_to_json(case, encode)
    document = {
        "id": case.id,
        "function": case.function,
        "grad_function": case.grad_function,
        "inputs": {name: encode(a) for name, a in case.inputs.items()},
        "kwargs": {key: encode(value) for key, value in case.kwargs.items()},
        "grad_output": encode(case.grad_output),
        "loss": encode(case.loss),
        "grad": encode_grad(case.grad, encode),
        "rtol": case.rtol,
        "atol": case.atol,
        "grad_atol": case.grad_atol,
        "exact_only": case.exact_only,
    }
    if case.rule != "tolerance":
        document["rule"] = case.rule
        document["rule_params"] = {
            key: encode_grad(v, encode) if key == "grad_reference"
            else list(v) if isinstance(v, tuple) else encode(v)
            for key, v in case.rule_params.items()}
    return document


def _second_order_to_json(case: Case, encode) -> dict:
    """A second-order case's JSON object: the function an implementation offers for it
    (``calls``, with ``call_kwargs``), its inputs (an hvp's ``v`` a list for several
    parameters), ``grad_output`` but for the statistics, and the expected field(s)."""
    signature = _schema.signature_of(case.function)
    document = {"id": case.id, "function": case.function, "kind": signature.kind,
                "calls": signature.calls}
    if signature.kind == "grad_target":
        document["call_kwargs"] = dict(_schema.GRAD_TARGET_KWARGS)
    document["inputs"] = {name: encode_grad(a, encode) for name, a in case.inputs.items()}
    document["kwargs"] = {key: encode(value) for key, value in case.kwargs.items()}
    if case.grad_output is not None:
        document["grad_output"] = encode(case.grad_output)
    if signature.kind == "stats":
        document["stats"] = {name: encode(case.expected[name]) for name in signature.fields}
    else:
        field = signature.fields[0]
        document[field] = encode_grad(case.expected[field], encode)
    document.update(rtol=case.rtol, atol=case.atol, grad_atol=case.grad_atol)
    return document


def decode_stored(obj, where: str, base=None, limits: _schema.Limits | None = None
                  ) -> np.ndarray:
    """A checked (:func:`xent_ref.golden.schema.check_array`) array, decoded: inline values, or the
    ``.npy`` file ``obj["npy"]`` under the directory ``base`` (the JSON file's), whose
    sha256, dtype and shape must be the ones the JSON gives."""
    try:
        if "npy" not in obj:
            return frozen(decode_array(obj))
        if base is None:
            raise ValueError(f"the array is in {obj['npy']}, but no directory to find it in")
        limits = limits or _schema.Limits()
        path = os.path.join(base, obj["npy"])
        try:
            with open(path, "rb") as f:
                data = f.read(limits.max_bytes + 1)
        except OSError as error:
            raise ValueError(f"cannot read {obj['npy']}: {error.strerror or error}") from None
        if len(data) > limits.max_bytes:
            raise ValueError(f"{obj['npy']} is larger than {limits.max_bytes} bytes")
        if hashlib.sha256(data).hexdigest() != obj["sha256"]:
            raise ValueError(f"{obj['npy']} does not have the sha256 the JSON gives")
        array = read_npy(data, obj["dtype"], tuple(obj["shape"]))
        return frozen(array)
    except (ValueError, TypeError, OverflowError) as error:
        raise SchemaError(f"{where}: {printable(error)}") from None


def encode_grad(grad, encode=encode_array):
    """A gradient as JSON: one encoded array, or (several) a list of them, null for None."""
    if isinstance(grad, tuple):
        return [None if part is None else encode(part) for part in grad]
    return encode(grad)


def decode_grad(obj, where: str, base=None, limits=None):
    """A checked gradient: one stored array, or a list of them (and nulls) as a tuple."""
    if isinstance(obj, list):
        return tuple(None if part is None else decode_stored(part, f"{where}[{i}]", base, limits)
                     for i, part in enumerate(obj))
    return decode_stored(obj, where, base, limits)


def _decode_input(obj, where: str, base=None, limits=None) -> np.ndarray:
    """A checked (:func:`~xent_ref.golden.schema.check_input`) array
    (:func:`decode_stored`), or a seed spec regenerated here: ``{"generate": "uniform",
    "stream": KEY, "low", "high", "shape", "dtype"}`` or ``{"generate": "integers",
    "stream": KEY, "n", "shape", "dtype"}``, drawn from :class:`Stream` (``KEY`` seeds
    it) and rounded (:func:`rounded`) as the generator draws."""
    if isinstance(obj, dict) and "generate" in obj:
        stream, shape = Stream(obj["stream"]), tuple(obj["shape"])
        if obj["generate"] == "uniform":
            values = stream.uniform(obj["low"], obj["high"], shape)
        else:
            values = stream.integers(obj["n"], shape)
        return frozen(rounded(values, _schema.dtype_of(obj["dtype"])))
    return decode_stored(obj, where, base, limits)


def case_from_json(obj, where: str = "case", limits: _schema.Limits | None = None,
                   base=None) -> Case:
    """A :class:`Case` from its JSON object, every field checked (:class:`SchemaError`);
    ``base``: the directory of the corpus file (for arrays in ``.npy`` files)."""
    limits = limits or _schema.Limits()
    where = _schema.check_case(obj, where, limits)

    def decode(value, label):
        return _decode_input(value, f"{where}.{label}", base, limits)

    def decoded(mapping, label):
        return {key: decode(value, f"{label}.{key}") if isinstance(value, dict) else value
                for key, value in mapping.items()}

    if _schema.signature_of(obj["function"]).kind != "loss":
        return _second_order_from_json(obj, where, decode, base, limits)
    positional = SIGNATURES[obj["function"]].positional
    return Case(
        id=obj["id"],
        function=obj["function"],
        inputs=decoded({name: obj["inputs"][name] for name in positional}, "inputs"),
        kwargs=decoded(obj["kwargs"], "kwargs"),
        grad_output=decode(obj["grad_output"], "grad_output"),
        loss=decode(obj["loss"], "loss"),
        grad=decode_grad(obj["grad"], f"{where}.grad", base, limits),
        rtol=float(obj["rtol"]),
        atol=float(obj["atol"]),
        grad_atol=float(obj["grad_atol"]),
        exact_only=obj.get("exact_only"),
        rule=obj.get("rule", "tolerance"),
        rule_params=_decoded_rule_params(obj.get("rule_params", {}), decode, where, base,
                                         limits),
    )


def _second_order_from_json(obj, where: str, decode, base, limits) -> Case:
    """A checked second-order case (:func:`case_from_json`)."""
    signature = _schema.signature_of(obj["function"])
    inputs = {}
    for name in signature.positional:
        value = obj["inputs"][name]
        inputs[name] = (decode_grad(value, f"{where}.inputs.{name}", base, limits)
                        if isinstance(value, list) else decode(value, f"inputs.{name}"))
    kwargs = {key: decode(value, f"kwargs.{key}") if isinstance(value, dict) else value
              for key, value in obj["kwargs"].items()}
    if signature.kind == "stats":
        expected = {name: decode_stored(obj["stats"][name], f"{where}.stats.{name}", base,
                                        limits) for name in signature.fields}
    else:
        field = signature.fields[0]
        expected = {field: decode_grad(obj[field], f"{where}.{field}", base, limits)}
    return Case(id=obj["id"], function=obj["function"], inputs=inputs, kwargs=kwargs,
                grad_output=decode(obj["grad_output"], "grad_output")
                if "grad_output" in obj else None, loss=None, grad=None,
                rtol=float(obj["rtol"]), atol=float(obj["atol"]),
                grad_atol=float(obj["grad_atol"]), expected=expected)


def _decoded_rule_params(params: dict, decode, where: str, base, limits) -> dict:
    """A case's ``rule_params``: the references decoded (the gradient's as
    :func:`decode_grad` does, a tuple for several), the errors as floats (a tuple of
    floats and ``None`` for several gradients)."""
    decoded = {}
    for key, value in params.items():
        if key == "grad_reference":
            decoded[key] = decode_grad(value, f"{where}.rule_params.{key}", base, limits)
        elif isinstance(value, dict):
            decoded[key] = decode(value, f"rule_params.{key}")
        elif isinstance(value, list):
            decoded[key] = tuple(None if v is None else float(v) for v in value)
        else:
            decoded[key] = value
    return decoded


def corpus_to_json(cases, files: dict | None = None) -> dict:
    """The corpus document; the bytes of its ``.npy`` files go into ``files``."""
    return {
        "format": FORMAT,
        "schema": SCHEMA_VERSION,
        "xent_ref_version": __version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "sha256": corpus_sha256(cases),
        "tolerance": "|got - expected| <= atol + rtol * |expected|, elementwise, with the "
        "case's atol for the loss and grad_atol for the gradient; nan matches nan, inf "
        "matches inf of the same sign; dtype and shape must match",
        "cases": [case_to_json(case, files) for case in cases],
    }


def read_corpus(path, limits: _schema.Limits | None = None) -> tuple[Case, ...]:
    """The cases of an exported corpus file; :class:`SchemaError` (a ValueError) with one
    printable line if the file is not one (see :mod:`xent_ref.golden.schema` for the limits)."""
    limits = limits or _schema.Limits.from_env()
    document = _schema.read_json(path, "corpus", limits)
    where = f"corpus {printable(path)}"
    cases = _schema.check_corpus(document, where, FORMAT, SCHEMA_VERSION)
    base = os.path.dirname(os.path.abspath(path))
    return tuple(case_from_json(obj, f"{where}: cases[{i}]", limits, base)
                 for i, obj in enumerate(cases))


def write_corpus(path, cases=None) -> dict[str, bytes]:
    """Write ``cases`` (default: the whole corpus) as one JSON file, and its large arrays
    as ``.npy`` files in :data:`ARRAY_DIRECTORY` beside it (named by their sha256, so
    two corpora in one directory share them safely); returns those files' names and
    bytes."""
    files: dict[str, bytes] = {}
    document = corpus_to_json(build_corpus() if cases is None else cases, files)
    write_arrays(path, files)
    with open(path, "w", encoding="utf-8") as f:
        # allow_nan=False: non-finite values are strings already; a bare NaN would be a bug.
        json.dump(document, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    return files


def write_arrays(path, files: dict[str, bytes]) -> None:
    """Write the ``.npy`` files of :func:`encode_stored` beside the JSON file ``path``,
    in :data:`ARRAY_DIRECTORY` (the JSON file's directory must exist)."""
    base = os.path.dirname(os.path.abspath(path))
    if files:
        Path(base, ARRAY_DIRECTORY).mkdir(exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data)


def export_main(path, force: bool = False) -> int:
    """``xent-ref golden export PATH [--force]``: write the corpus; 0 on success, 2 when
    ``PATH`` exists (without ``force``) or cannot be written."""
    if os.path.lexists(path) and not force:
        print(f"xent-ref golden export: {printable(path)} exists; "
              "give --force to overwrite it")
        return 2
    try:
        files = write_corpus(path)
    except OSError as error:
        print(f"xent-ref golden export: cannot write {printable(path)}: "
              f"{printable(error.strerror or error)}")
        return 2
    cases = build_corpus()
    if files:
        size = sum(len(data) for data in files.values())
        print(f"wrote {len(files)} large arrays ({size / 2**20:.1f} MiB) to "
              f"{printable(os.path.join(os.path.dirname(path) or '.', ARRAY_DIRECTORY))}/")
    print(f"wrote {len(cases)} cases (schema {SCHEMA_VERSION}, xent_ref {__version__}, "
          f"numpy {np.__version__}) to {printable(path)}")
    print(f"sha256 {corpus_sha256(cases)}")
    return 0
