"""Golden slices per framework: corpus inputs in a framework's signature, with the
values :mod:`xent_ref.frameworks` computes for them.

A :class:`FrameworkCase` is one golden case of the corpus recast as a call of one
framework function (``keras.sparse_categorical_crossentropy``, ``optax.softmax_
cross_entropy``...): the same arrays, moved to the framework's argument order and
names, and expected values computed by the reference of that framework, not by
PyTorch's rules. How a corpus case maps (the rules are :data:`MAPPINGS`):

* only float32 and float64 cases of kind ``systematic`` and ``edge``; a case is taken
  only where the framework can express it (no class weights where the framework has
  none, no label smoothing where it has none, no ignored targets where it cannot
  ignore one);
* PyTorch's class axis 1 is passed as ``axis=1`` where the framework has an ``axis``;
  where it has none (TensorFlow's sparse loss, optax's ``safe_`` one, Megatron,
  torchtune) only cases whose classes are already last are taken, or the arrays
  are moved as the framework lays them out (torchtune: ``[batch, seq, vocab]``);
* reductions: Keras's ``sum_over_batch_size`` for PyTorch's ``mean``, ``sum`` and
  ``none`` as they are; scikit-learn's ``normalize`` for ``mean``/``sum``;
  frameworks that return per-example losses (optax, TensorFlow, Megatron) take the
  ``reduction="none"`` cases;
* the corpus's ``ignore_index`` (PyTorch's default -100 when the case leaves it out)
  becomes Keras's ``ignore_class`` or ONNX's ``ignore_index``;
* scikit-learn takes probabilities: ``y_proba`` is the softmax of the case's logits;
  Megatron's shards split the vocabulary into ``[2, C - 2]``;
* the expected values are the reference's on the inputs widened to float64, rounded
  once to the case's dtype (Keras and scikit-learn, whose clips depend on the dtype:
  computed in the case's dtype, :data:`IN_THE_CASE_DTYPE`); the tolerances are the source case's; ``grad_output`` is
  the source case's where it has the loss's shape, else ``linspace(0.5, 1.5)``.

>>> [c.id for c in framework_cases("sklearn")][:1]
['sklearn/log_loss/cross_entropy/index/NxC/mean/no-w/ign=none/ls=0.0/f32']
>>> case = framework_cases("keras")[0]
>>> case.function, case.kwargs["reduction"], case.kwargs["axis"]
('sparse_categorical_crossentropy', 'none', 1)
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from xent_ref.golden.cases import DTYPES, Case
from xent_ref.golden.expected import build_corpus
from xent_ref.softmax import softmax

FRAMEWORKS = ("keras", "optax", "tensorflow", "sklearn", "onnx", "megatron", "torchtune")


@dataclass(frozen=True)
class FrameworkCase:
    """One corpus case as a call of a framework function, with that framework's answer.

    ``args``/``kwargs``: the framework function's arguments; ``grad`` is what the
    reference's ``<function>_grad`` returns (an array, or a tuple or list of them);
    ``source``: the corpus case's id; tolerances as in :class:`xent_ref.golden.Case`.
    """

    id: str
    framework: str
    function: str
    source: str
    args: tuple
    kwargs: dict
    grad_output: np.ndarray | None  # None: the gradient takes none (a metric)
    loss: np.ndarray
    grad: Any
    rtol: float
    atol: float
    grad_atol: float

    def __str__(self) -> str:
        return self.id

    @property
    def dtype(self) -> str:
        return self.loss.dtype.name

    def call(self, fn: Callable, grad: bool = False):
        """``fn(*args, **kwargs)`` on fresh copies (``grad``: with ``grad_output=``)."""
        args = [_fresh(a) for a in self.args]
        kwargs = {key: _fresh(value) for key, value in self.kwargs.items()}
        if grad and self.grad_output is not None:
            kwargs["grad_output"] = np.array(self.grad_output)
        return fn(*args, **kwargs)


def _fresh(value):
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


def _widened(value):
    """Float arrays (and lists of them) in float64, for the expected values."""
    if isinstance(value, list):
        return [_widened(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64)
    return value


def _rounded(value, dtype):
    if isinstance(value, (tuple, list)):
        return type(value)(_rounded(v, dtype) for v in value)
    return None if value is None else np.asarray(value).astype(dtype)


# ---------------------------------------------------------------------------
# Which corpus cases a framework can express
# ---------------------------------------------------------------------------


def _plain(case: Case, function: str, target: str | None = None) -> bool:
    """A float32/float64 case of ``function`` without LLM options (and with ``target``)."""
    options = case.options
    return (case.function == function and case.dtype in DTYPES
            and options["kind"] in ("systematic", "edge")
            and not {"logit_scale", "softcap", "z_loss"} & set(case.kwargs)
            and (target is None or case.inputs["target"].dtype.kind == ("f" if target ==
                                                                           "probs" else "i")))


def _ignore_index(case: Case) -> int:
    return int(case.kwargs.get("ignore_index", -100))


def _ignores(case: Case) -> bool:
    """Whether some target is the case's ignore_index."""
    return bool(np.any(case.inputs["target"] == _ignore_index(case)))


def _smoothing(case: Case) -> float:
    return float(case.kwargs.get("label_smoothing", 0.0))


def _reduction(case: Case) -> str:
    return case.kwargs.get("reduction", "mean")


def _class_axis(case: Case) -> int:
    return 1 if case.inputs["input"].ndim > 1 else -1


def _index(case, reductions=("none",), smoothing=False, ignore=False, weight=False,
           min_ndim=1, max_ndim=4) -> bool:
    """An index-target cross_entropy case with these freedoms."""
    if not _plain(case, "cross_entropy", "index"):
        return False
    x = case.inputs["input"]
    return (_reduction(case) in reductions
            and (smoothing or _smoothing(case) == 0.0) and (ignore or not _ignores(case))
            and (weight or "weight" not in case.kwargs) and min_ndim <= x.ndim <= max_ndim
            and x.size > 0)


def _probs(case, reductions=("none",), smoothing=False, max_ndim=4) -> bool:
    if not _plain(case, "cross_entropy", "probs"):
        return False
    x = case.inputs["input"]
    return (_reduction(case) in reductions
            and (smoothing or _smoothing(case) == 0.0) and "weight" not in case.kwargs
            and x.ndim <= max_ndim and x.size > 0)


def _binary(case, function, reductions=("none",)) -> bool:
    return (_plain(case, function) and _reduction(case) in reductions
            and not {"weight", "pos_weight"} & set(case.kwargs)
            and case.inputs["input"].ndim >= 1)


# Frameworks whose clip depends on the dtype (Keras's 1 - 1e-7, scikit-learn's eps):
# their expected values are computed in the case's dtype, not widened.
IN_THE_CASE_DTYPE = frozenset({"keras", "sklearn"})
_KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
_ALL = ("none", "mean", "sum")


# ---------------------------------------------------------------------------
# How a corpus case becomes a framework call: (framework, function, takes, arguments)
# ---------------------------------------------------------------------------


def _keras_sparse(case):
    ignore = _ignore_index(case) if _ignores(case) else None
    return (case.inputs["target"], case.inputs["input"]), dict(
        from_logits=True, ignore_class=ignore, axis=_class_axis(case),
        reduction=_KERAS_REDUCTION[_reduction(case)])


def _keras_categorical(case):
    return (case.inputs["target"], case.inputs["input"]), dict(
        from_logits=True, label_smoothing=_smoothing(case), axis=_class_axis(case),
        reduction=_KERAS_REDUCTION[_reduction(case)])


def _keras_binary(from_logits):
    def arguments(case):
        return (case.inputs["target"], case.inputs["input"]), dict(
            from_logits=from_logits, reduction=_KERAS_REDUCTION[_reduction(case)])
    return arguments


def _logits_labels(with_axis=True):
    def arguments(case):
        kwargs = dict(axis=_class_axis(case)) if with_axis else {}
        return (case.inputs["input"], case.inputs["target"]), kwargs
    return arguments


def _labels_logits(with_axis=True):
    def arguments(case):
        kwargs = dict(axis=_class_axis(case)) if with_axis else {}
        return (case.inputs["target"], case.inputs["input"]), kwargs
    return arguments


def _sklearn(case):
    y_proba = softmax(case.inputs["input"].astype(np.float64), axis=1).astype(case.dtype)
    n_classes = case.inputs["input"].shape[1]
    return (case.inputs["target"], y_proba), dict(
        normalize=_reduction(case) == "mean", labels=list(range(n_classes)))


def _onnx(case):
    return (case.inputs["input"], case.inputs["target"], case.kwargs.get("weight")), dict(
        reduction=_reduction(case), ignore_index=_ignore_index(case))


def _megatron(case):
    x = case.inputs["input"]
    return ([x[:, :2], x[:, 2:]], case.inputs["target"]), dict(
        label_smoothing=_smoothing(case))


def _torchtune_chunked(case):
    logits = np.moveaxis(case.inputs["input"], 1, -1)  # [batch, seq, vocab]
    return (np.array_split(logits, 2, axis=1), case.inputs["target"]), dict(
        ignore_index=_ignore_index(case))


def _torchtune_linear(case):
    kwargs = dict(num_output_chunks=2, ignore_index=_ignore_index(case))
    if "linear_bias" in case.kwargs:
        kwargs["linear_bias"] = case.kwargs["linear_bias"]
    return (case.inputs["input"][None], case.inputs["linear_weight"],
            case.inputs["target"][None]), kwargs


def _linear_plain(case) -> bool:
    return (_plain(case, "linear_cross_entropy") and _reduction(case) == "mean"
            and case.inputs["linear_weight"].ndim == 2 and case.inputs["target"].ndim == 1
            and not {"weight", "label_smoothing"} & set(case.kwargs))


MAPPINGS: dict[str, tuple] = {
    "keras": (
        ("sparse_categorical_crossentropy",
         lambda c: _index(c, _ALL, ignore=True, min_ndim=2), _keras_sparse),
        ("categorical_crossentropy",
         lambda c: _probs(c, _ALL, smoothing=True) and c.inputs["input"].ndim >= 2,
         _keras_categorical),
        ("binary_crossentropy", lambda c: _binary(c, "binary_cross_entropy_with_logits", _ALL),
         _keras_binary(True)),
        ("binary_crossentropy", lambda c: _binary(c, "binary_cross_entropy", _ALL),
         _keras_binary(False)),
    ),
    "optax": (
        ("softmax_cross_entropy_with_integer_labels", _index, _logits_labels()),
        ("softmax_cross_entropy", _probs, _logits_labels()),
        ("safe_softmax_cross_entropy", lambda c: _probs(c, max_ndim=2),
         _logits_labels(False)),
        ("sigmoid_binary_cross_entropy",
         lambda c: _binary(c, "binary_cross_entropy_with_logits"), _logits_labels(False)),
    ),
    "tensorflow": (
        ("sparse_softmax_cross_entropy_with_logits", lambda c: _index(c, max_ndim=2),
         _labels_logits(False)),
        ("softmax_cross_entropy_with_logits", _probs, _labels_logits()),
    ),
    "sklearn": (
        ("log_loss", lambda c: _index(c, ("mean", "sum"), min_ndim=2, max_ndim=2)
         and c.inputs["input"].shape[1] >= 2, _sklearn),
    ),
    "onnx": (
        ("softmax_cross_entropy_loss",
         lambda c: _index(c, _ALL, ignore=True, weight=True, min_ndim=2), _onnx),
        ("negative_log_likelihood_loss",
         lambda c: (_plain(c, "nll_loss") and c.inputs["input"].ndim >= 2), _onnx),
    ),
    "megatron": (
        ("vocab_parallel_cross_entropy",
         lambda c: _index(c, smoothing=True, min_ndim=2, max_ndim=2)
         and c.inputs["input"].shape[1] >= 4, _megatron),  # two classes on each rank at least
    ),
    "torchtune": (
        ("chunked_cross_entropy",
         lambda c: _index(c, ("mean",), ignore=True, min_ndim=3, max_ndim=3),
         _torchtune_chunked),
        ("linear_cross_entropy_loss", _linear_plain, _torchtune_linear),
    ),
}


def _grad_output(name: str, source: Case, loss: np.ndarray) -> np.ndarray:
    """The source case's upstream gradient where it fits the framework's loss (Megatron's:
    one per token, the same on every rank, so the loss's shape without the rank axis)."""
    shape = loss.shape[1:] if name == "megatron" else loss.shape
    if np.shape(source.grad_output) == shape:
        return np.array(source.grad_output)
    return np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape).astype(loss.dtype)


def _framework_case(name, function, source: Case, arguments) -> FrameworkCase:
    reference = importlib.import_module(f"xent_ref.frameworks.{name}")
    args, kwargs = arguments(source)
    wide_args, wide_kwargs = list(args), dict(kwargs)
    if name not in IN_THE_CASE_DTYPE:
        wide_args, wide_kwargs = _widened(wide_args), {k: _widened(v) for k, v in kwargs.items()}
    with np.errstate(all="ignore"):  # the edge cases' infinities are the expected values
        loss = _rounded(getattr(reference, function)(*wide_args, **wide_kwargs), source.dtype)
        grad_fn = getattr(reference, function + "_grad")
        # scikit-learn's log_loss is a metric: a scalar with no upstream gradient
        grad_output = (_grad_output(name, source, loss)
                       if "grad_output" in inspect.signature(grad_fn).parameters else None)
        upstream = {} if grad_output is None else {
            "grad_output": _widened(grad_output) if name not in IN_THE_CASE_DTYPE
            else grad_output}
        grad = _rounded(grad_fn(*wide_args, **wide_kwargs, **upstream), source.dtype)
    return FrameworkCase(f"{name}/{function}/{source.id}", name, function, source.id,
                         tuple(args), kwargs, grad_output, loss, grad, source.rtol,
                         source.atol, source.grad_atol)


@functools.lru_cache(maxsize=None)
def _cases(name: str) -> tuple[FrameworkCase, ...]:
    corpus = build_corpus()
    return tuple(_framework_case(name, function, case, arguments)
                 for function, takes, arguments in MAPPINGS[name]
                 for case in corpus if takes(case))


def framework_cases(name: str, function: str | None = None) -> list[FrameworkCase]:
    """The golden slice of framework ``name`` (one of :data:`FRAMEWORKS`), optionally of
    one of its functions: corpus inputs in the framework's signature, the expected
    values of :mod:`xent_ref.frameworks` (see the module docstring for the mapping)."""
    if name not in MAPPINGS:
        raise ValueError(f"name: unknown framework {name!r}; expected one of "
                         f"{', '.join(FRAMEWORKS)}")
    chosen = list(_cases(name))
    if function is not None:
        known = {f for f, _, _ in MAPPINGS[name]}
        if function not in known:
            raise ValueError(f"function: {name} has no golden slice of {function!r}; "
                             f"expected one of {', '.join(sorted(known))}")
        chosen = [case for case in chosen if case.function == function]
    return chosen


def iter_sources(name: str) -> Iterator[tuple[str, Case]]:
    """``(function, corpus case)`` for every case of framework ``name``'s slice."""
    for function, takes, _ in MAPPINGS[name]:
        for case in build_corpus():
            if takes(case):
                yield function, case
