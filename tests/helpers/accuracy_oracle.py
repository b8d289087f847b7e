"""Stress corpus and high-precision oracle for the float64 accuracy figures.

One place for the corpus, the exact values and the error measure, shared by
``tests/test_accuracy.py`` (which holds xent_ref to the bound) and
``scripts/torch_accuracy.py`` (which measures PyTorch on the same corpus).

The measure
-----------
Every float64 result is compared with the exact value of the same function at
the same float64 inputs, computed by mpmath at 50 significant digits. The error
is expressed in units of the problem's conditioning::

    ratio = |got - exact| / (eps * |exact| * (1 + max|x|))

where ``eps`` is float64's machine epsilon and ``x`` is the logits the value
depends on: the row (one sample over its classes) for a per-sample loss or a
softmax output, the single element for an element-wise binary loss, the whole
input for a reduced (``sum``/``mean``) loss. ``1 + max|x|`` is there because the
logits themselves carry a rounding error of ``eps * |x|``, which no algorithm can
undo. For a gradient row the error is the row's largest deviation and ``|exact|``
the row's largest exact magnitude. The bound is ``ratio <= 4``.

float64 cannot hold numbers below its smallest normal value (``TINY``, 2.2e-308)
to relative precision: ``|exact|`` is floored at ``TINY``, so a softmax
probability of ``exp(-20000)`` must come out as 0 or a subnormal, not as a
relative match.

>>> round(loss_scale(np.array([50.0, 0.0, 0.0])), 1)
51.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import numpy as np

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
BOUND = 4.0
DIGITS = 50
SEED = 20240611

# PyTorch's BCE constants: each log is clamped at -100, and the gradient's
# denominator p * (1 - p) is clamped at 1e-12 held as a float32 constant.
BCE_LOG_FLOOR = -100
BCE_GRAD_FLOOR = float(np.float32(1e-12))

FUNCTIONS = (
    "cross_entropy",
    "nll_loss",
    "log_softmax",
    "softmax",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
)
REDUCTIONS = ("none", "sum", "mean")


@dataclass(eq=False)
class Case:
    """One call of a public function (and of its ``*_grad`` twin)."""

    func: str
    label: str
    input: np.ndarray
    target: np.ndarray | None = None
    kwargs: dict = field(default_factory=dict)
    grad_output: np.ndarray | None = None  # the VJP seed for softmax/log_softmax

    def describe(self) -> str:
        shown = {k: v for k, v in self.kwargs.items() if not isinstance(v, np.ndarray)}
        shown.update({k: "array" for k, v in self.kwargs.items() if isinstance(v, np.ndarray)})
        return f"{self.func}[{self.label}] {shown}"


@dataclass(eq=False)
class Exact:
    """Exact values (mpmath numbers in object arrays) and their scales.

    value, value_scale : (V,) flattened output and ``1 + max|x|`` per output element.
    grad_rows, grad_scale : (R, K) gradient rows and ``1 + max|x|`` per row.
    row_axis : the input axis that forms a gradient row.
    """

    value: np.ndarray
    value_scale: np.ndarray
    grad_rows: np.ndarray
    grad_scale: np.ndarray
    row_axis: int


@dataclass
class Worst:
    """The largest ratio seen for one function and one kind of result."""

    func: str
    kind: str  # "loss" (the forward value) or "grad"
    ratio: float = 0.0
    case: str = ""
    got: float = 0.0
    exact: str = ""

    def describe(self) -> str:
        return (
            f"{self.func} {self.kind}: ratio {self.ratio:.3g} in {self.case}: "
            f"got {self.got!r}, exact {self.exact}"
        )


# ---------------------------------------------------------------------------
# The corpus


def class_batches(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Logit batches (N, C) for the class-axis functions."""
    batches = [
        (f"random x{scale:g}", scale * rng.standard_normal((6, 7)))
        for scale in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4)
    ]
    batches.append(("random x3, C=100", 3.0 * rng.standard_normal((4, 100))))
    # Near-ties: logits a few ulps apart, and exact ties.
    base = 3.0 * rng.standard_normal((6, 1))
    ties = base * (1.0 + EPS * rng.integers(-3, 4, size=(6, 7)))
    ties[0] = 2.5
    ties[1, :2] = 5.0
    ties[1, 2:] = -1.0
    batches.append(("near-ties", ties))
    # Confident predictions: one logit far above the rest.
    confident = np.array(
        [
            [50.0, 0.0, 0.0, 0.0],
            [0.0, 50.0, 0.0, 0.0],
            [36.0, 0.0, -1.0, 0.0],
            [100.0, 0.0, 0.0, 0.0],
            [30.0, -30.0, 0.0, 1.0],
            [700.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 745.0],
            [1e4, 9990.0, 0.0, 0.0],
            [20.0, 19.999, 0.0, -5.0],
        ]
    )
    batches.append(("confident", confident))
    return batches


def index_targets(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """Even rows aim at the largest logit (tiny losses), odd rows at a random class."""
    n, c = logits.shape
    aimed = np.argmax(logits, axis=1)
    return np.where(np.arange(n) % 2 == 0, aimed, rng.integers(0, c, size=n))


def prob_targets(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Rows of class probabilities: peaked, flat, one-hot."""
    n, c = shape
    alphas = np.where(np.arange(n) % 3 == 0, 0.05, 1.0)
    y = np.stack([rng.dirichlet(np.full(c, a)) for a in alphas])
    y[1 % n] = np.eye(c)[0]
    return y


def with_reductions(func, label, inp, target, kwargs_list) -> list[Case]:
    """One case per option set in ``kwargs_list`` and per reduction."""
    return [
        Case(func, label, inp, target, {**kwargs, "reduction": reduction})
        for kwargs in kwargs_list
        for reduction in REDUCTIONS
    ]


def class_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, logits in class_batches(rng):
        c = logits.shape[1]
        weight = rng.uniform(0.5, 2.0, size=c)
        target = index_targets(rng, logits)
        dropped = target.copy()
        dropped[1] = -100  # one ignored sample
        cases += with_reductions(
            "cross_entropy", label, logits, target, [{}, {"weight": weight}, {"label_smoothing": 0.1}]
        )
        cases += with_reductions(
            "cross_entropy", label + ", ignored", logits, dropped, [{"weight": weight, "label_smoothing": 0.3}]
        )
        probs = prob_targets(rng, logits.shape)
        cases += with_reductions(
            "cross_entropy", label + ", prob targets", logits, probs,
            [{}, {"weight": weight, "label_smoothing": 0.2}],
        )
        cases += with_reductions("nll_loss", label, logits, target, [{}])
        cases += with_reductions("nll_loss", label + ", ignored", logits, dropped, [{"weight": weight}])
        grad_output = rng.standard_normal(logits.shape)
        cases.append(Case("log_softmax", label, logits, grad_output=grad_output))
        cases.append(Case("softmax", label, logits, grad_output=grad_output))
    # Segmentation-shaped (N, C, H, W) input: the class axis is 1.
    seg = 4.0 * rng.standard_normal((2, 5, 3, 4))
    seg[0, 2, 0, 0] = 60.0
    seg_target = rng.integers(0, 5, size=(2, 3, 4))
    seg_target[0, 0, 0] = 2
    seg_target[1, 1, :2] = 255
    seg_weight = rng.uniform(0.5, 2.0, size=5)
    cases += with_reductions(
        "cross_entropy", "(2,5,3,4)", seg, seg_target,
        [{"ignore_index": 255, "weight": seg_weight, "label_smoothing": 0.1}],
    )
    seg_probs = np.moveaxis(prob_targets(rng, (24, 5)).reshape(2, 3, 4, 5), -1, 1)
    cases += with_reductions("cross_entropy", "(2,5,3,4), prob targets", seg, seg_probs, [{"weight": seg_weight}])
    cases += with_reductions("nll_loss", "(2,5,3,4)", seg, seg_target, [{"ignore_index": 255, "weight": seg_weight}])
    return cases


def bce_logit_batches(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, logits (8, 6), targets (8, 6)) for binary_cross_entropy_with_logits."""
    shape = (8, 6)
    hard = rng.integers(0, 2, size=shape).astype(np.float64)
    soft = rng.uniform(0.0, 1.0, size=shape)
    batches = []
    for scale in (1e-3, 1e-1, 1.0, 10.0, 100.0):
        logits = scale * rng.standard_normal(shape)
        batches.append((f"random x{scale:g}", logits, hard))
        batches.append((f"random x{scale:g}, soft targets", logits, soft))
    # Large logits: each row holds one magnitude, with random signs; targets
    # agree with the sign (tiny loss) in even columns, disagree in odd ones.
    sizes = np.array([30.0, 37.0, 50.0, 100.0, 300.0, 500.0, 700.0, 36.5])[:, None]
    large = sizes * rng.choice([-1.0, 1.0], size=shape)
    agree = (large > 0).astype(np.float64)
    large_target = np.where(np.arange(shape[1]) % 2 == 0, agree, 1.0 - agree)
    batches.append(("large +-30..700", large, large_target))
    batches.append(("large +-30..700, targets agree", large, agree))
    batches.append(("large +-30..700, quarter targets", large, rng.choice([0.25, 0.5, 0.75], size=shape)))
    return batches


def bce_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for label, logits, target in bce_logit_batches(rng):
        weight = rng.uniform(0.5, 2.0, size=logits.shape[1])
        row_weight = rng.uniform(0.5, 2.0, size=(logits.shape[0], 1))
        pos_weight = rng.uniform(0.25, 4.0, size=logits.shape[1])
        cases += with_reductions(
            "binary_cross_entropy_with_logits", label, logits, target,
            [{}, {"weight": weight}, {"pos_weight": pos_weight}, {"weight": row_weight, "pos_weight": pos_weight}],
        )
    # Probabilities: from sigmoids of several widths, and the edges of [0, 1].
    probs = 1.0 / (1.0 + np.exp(-np.concatenate([s * rng.standard_normal((2, 6)) for s in (1.0, 10.0, 40.0)])))
    edges = np.array(
        [
            [0.0, 1.0, 1e-50, 1e-20, 1e-13, 0.5],
            [1.0 - 1e-12, 1.0 - 2.0**-53, 1e-300, 0.25, 1.0 - 1e-6, 1e-6],
        ]
    )
    probs = np.concatenate([probs, edges])
    hard = rng.integers(0, 2, size=probs.shape).astype(np.float64)
    soft = rng.uniform(0.0, 1.0, size=probs.shape)
    weight = rng.uniform(0.5, 2.0, size=probs.shape[1])
    for label, target in (("hard targets", hard), ("soft targets", soft)):
        cases += with_reductions("binary_cross_entropy", label, probs, target, [{}, {"weight": weight}])
    return cases


def corpus(seed: int = SEED) -> list[Case]:
    """The whole stress corpus, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return class_cases(rng) + bce_cases(rng)


# ---------------------------------------------------------------------------
# Exact values


def mp_array(a) -> np.ndarray:
    """Object array of mpmath numbers holding the float64 values exactly."""
    return np.vectorize(mpmath.mpf, otypes=[object])(np.asarray(a, dtype=np.float64))


def loss_scale(x: np.ndarray) -> float:
    """``1 + max|x|``: the conditioning factor of the problem on logits ``x``."""
    return 1.0 + float(np.max(np.abs(x))) if x.size else 1.0


def others_sum(values: list) -> list:
    """For each c, the sum of the values other than values[c], without cancellation."""
    total = mpmath.fsum(values)
    return [
        mpmath.fsum(values[:c] + values[c + 1:]) if 2 * v > total else total - v
        for c, v in enumerate(values)
    ]


def row_gaps(row) -> tuple[list, list]:
    """For one logits row: ``lse - x_c`` and the softmax ``p_c``, exactly.

    ``lse - x_c = (m - x_c) + log1p(sum over k != argmax of exp(x_k - m))``:
    written with log1p so that a confident row keeps its tiny gap.
    """
    x = list(mp_array(row))
    top = int(np.argmax(row))
    m = x[top]
    tail = mpmath.fsum(mpmath.exp(v - m) for k, v in enumerate(x) if k != top)
    log_norm = mpmath.log1p(tail)
    gaps = [(m - v) + log_norm for v in x]
    return gaps, [mpmath.exp(-g) for g in gaps]


def as_rows(a: np.ndarray, axis: int) -> np.ndarray:
    """(..., K at ``axis``, ...) -> (R, K): one row per position, K along ``axis``."""
    a = np.asarray(a)
    return np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis])


def reduce_exact(losses: list, grads: np.ndarray, reduction: str, denom, scales, x) -> tuple:
    """Apply the reduction to exact per-sample losses and gradient rows."""
    if reduction == "none":
        return np.array(losses, dtype=object), np.asarray(scales, dtype=float), grads
    total = mpmath.fsum(losses)
    if reduction == "mean":
        return np.array([total / denom], dtype=object), np.array([loss_scale(x)]), grads / denom
    return np.array([total], dtype=object), np.array([loss_scale(x)]), grads


def class_exact(case: Case) -> Exact:
    x = np.asarray(case.input, dtype=np.float64)
    axis = 1 if x.ndim >= 2 else 0
    rows = as_rows(x, axis)
    n_rows, n_classes = rows.shape
    kw = case.kwargs
    weight = mp_array(kw["weight"]) if kw.get("weight") is not None else mp_array(np.ones(n_classes))
    smoothing = mpmath.mpf(kw.get("label_smoothing", 0.0))
    ignore_index = kw.get("ignore_index", -100)
    prob_target = case.target.shape == x.shape
    targets = as_rows(case.target, axis) if prob_target else np.asarray(case.target).reshape(-1)

    losses, grads, denom = [], np.empty(rows.shape, dtype=object), mpmath.mpf(0)
    for i, row in enumerate(rows):
        if case.func == "nll_loss":
            t = int(targets[i])
            grads[i] = mpmath.mpf(0)
            if t == ignore_index:
                losses.append(mpmath.mpf(0))
                continue
            losses.append(-weight[t] * mpmath.mpf(row[t]))
            grads[i, t] = -weight[t]
            denom += weight[t]
            continue
        # cross_entropy: loss_i = sum_c a_c * (lse - x_c) with coefficients a_c >= 0,
        # and its gradient sum(a) * p_c - a_c, written without cancellation.
        if prob_target:
            y = mp_array(targets[i])
            a = [weight[c] * ((1 - smoothing) * y[c] + smoothing / n_classes) for c in range(n_classes)]
            denom += 1
        else:
            t = int(targets[i])
            if t == ignore_index:
                losses.append(mpmath.mpf(0))
                grads[i] = mpmath.mpf(0)
                continue
            a = [weight[c] * smoothing / n_classes for c in range(n_classes)]
            a[t] += (1 - smoothing) * weight[t]
            denom += weight[t]
        gaps, probs = row_gaps(row)
        losses.append(mpmath.fsum(ac * g for ac, g in zip(a, gaps)))
        a_others, p_others = others_sum(a), others_sum(probs)
        grads[i] = [probs[c] * a_others[c] - a[c] * p_others[c] for c in range(n_classes)]

    row_scales = [loss_scale(r) for r in rows]
    value, value_scale, grads = reduce_exact(losses, grads, kw.get("reduction", "mean"), denom, row_scales, x)
    return Exact(value, value_scale, grads, np.array(row_scales), axis)


def softmax_exact(case: Case) -> Exact:
    """softmax / log_softmax along the last axis, and their vector-Jacobian products."""
    x = np.asarray(case.input, dtype=np.float64)
    rows, seeds = as_rows(x, -1), as_rows(case.grad_output, -1)
    values, grads = [], np.empty(rows.shape, dtype=object)
    for i, row in enumerate(rows):
        gaps, probs = row_gaps(row)
        g = list(mp_array(seeds[i]))
        if case.func == "log_softmax":
            values += [-gap for gap in gaps]
            seed_sum = mpmath.fsum(g)
            grads[i] = [g[c] - probs[c] * seed_sum for c in range(len(g))]
        else:
            values += probs
            # p_c * (g_c - sum_k p_k g_k), pivoted on the top class so that
            # the sum is small when one probability is near 1.
            top = int(np.argmax(row))
            spread = mpmath.fsum(probs[k] * (g[k] - g[top]) for k in range(len(g)) if k != top)
            grads[i] = [probs[c] * ((g[c] - g[top]) - spread) for c in range(len(g))]
    row_scales = np.array([loss_scale(r) for r in rows])
    return Exact(np.array(values, dtype=object), np.repeat(row_scales, rows.shape[1]), grads, row_scales, x.ndim - 1)


def softplus(z):
    return mpmath.log1p(mpmath.exp(z))


def sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


def bce_exact(case: Case) -> Exact:
    """Element-wise binary losses; a gradient row is a row of the last axis."""
    x = np.asarray(case.input, dtype=np.float64)
    kw = case.kwargs
    shape = x.shape

    def spread(name, default=1.0):
        value = kw.get(name)
        return np.broadcast_to(np.full(1, default) if value is None else value, shape).reshape(-1)

    xs, ys = x.reshape(-1), np.broadcast_to(case.target, shape).reshape(-1)
    weight, pos_weight = spread("weight"), spread("pos_weight")
    losses, grads = [], []
    for xi, yi, wi, pwi in zip(xs, ys, weight, pos_weight):
        v, y, w, pw = (mpmath.mpf(float(u)) for u in (xi, yi, wi, pwi))
        if case.func == "binary_cross_entropy_with_logits":
            losses.append(w * (pw * y * softplus(-v) + (1 - y) * softplus(v)))
            grads.append(w * ((1 - y) * sigmoid(v) - pw * y * sigmoid(-v)))
        else:
            log_p = max(mpmath.log(v), BCE_LOG_FLOOR) if v > 0 else mpmath.mpf(BCE_LOG_FLOOR)
            log_q = max(mpmath.log1p(-v), BCE_LOG_FLOOR) if v < 1 else mpmath.mpf(BCE_LOG_FLOOR)
            losses.append(-w * (y * log_p + (1 - y) * log_q))
            grads.append(w * (v - y) / max(v * (1 - v), mpmath.mpf(BCE_GRAD_FLOOR)))
    grads = np.array(grads, dtype=object)
    scales = [loss_scale(np.array([xi])) for xi in xs]
    value, value_scale, grads = reduce_exact(losses, grads, kw.get("reduction", "mean"), x.size, scales, x)
    return Exact(value, value_scale, grads.reshape(-1, shape[-1]), np.array([loss_scale(r) for r in as_rows(x, -1)]), x.ndim - 1)


def exact(case: Case, digits: int = DIGITS) -> Exact:
    """The exact output and gradient of ``case`` (mpmath at ``digits`` digits)."""
    with mpmath.workdps(digits):
        if case.func in ("cross_entropy", "nll_loss"):
            return class_exact(case)
        if case.func in ("softmax", "log_softmax"):
            return softmax_exact(case)
        return bce_exact(case)


# ---------------------------------------------------------------------------
# Measuring an implementation


def call(impl, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Run ``case`` through ``impl`` (xent_ref, or anything with its API): (value, grad)."""
    forward = getattr(impl, case.func)
    backward = getattr(impl, case.func + "_grad")
    if case.target is None:
        return forward(case.input), backward(case.input, case.grad_output)
    return forward(case.input, case.target, **case.kwargs), backward(case.input, case.target, **case.kwargs)


def ratios(got: np.ndarray, exact_values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Element-wise ``|got - exact| / (eps * max(|exact|, TINY) * scale)``."""
    with mpmath.workdps(DIGITS):
        return np.array(
            [
                float(abs(mpmath.mpf(float(g)) - e) / (EPS * max(abs(e), TINY) * s))
                for g, e, s in zip(np.ravel(got), exact_values, scales)
            ]
        )


def grad_ratios(got_rows: np.ndarray, exact_rows: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Per row: ``max_j |g_j - exact_j| / (eps * max(max_j |exact_j|, TINY) * scale)``."""
    with mpmath.workdps(DIGITS):
        out = []
        for g, e, s in zip(got_rows, exact_rows, scales):
            err = max(abs(mpmath.mpf(float(gj)) - ej) for gj, ej in zip(g, e))
            out.append(float(err / (EPS * max(max(abs(ej) for ej in e), TINY) * s)))
        return np.array(out)


def measure(impl, cases: list[Case], exacts: list[Exact] | None = None) -> dict[tuple[str, str], Worst]:
    """The worst ratio per (function, "loss" | "grad") of ``impl`` over ``cases``."""
    worst = {(f, kind): Worst(f, kind) for f in FUNCTIONS for kind in ("loss", "grad")}
    exacts = exacts if exacts is not None else [exact(case) for case in cases]
    for case, ex in zip(cases, exacts):
        value, grad = call(impl, case)
        value_ratios = ratios(value, ex.value, ex.value_scale)
        got_rows = as_rows(np.asarray(grad, dtype=np.float64), ex.row_axis)
        grad_row_ratios = grad_ratios(got_rows, ex.grad_rows, ex.grad_scale)
        for kind, r, got, exact_values in (
            ("loss", value_ratios, np.ravel(value), ex.value),
            ("grad", grad_row_ratios, got_rows, ex.grad_rows),
        ):
            # nan (a wrong nan, or an inf/inf) counts as the worst possible.
            k = int(np.argmax(np.where(np.isnan(r), np.inf, r)))
            ratio = np.inf if np.isnan(r[k]) else r[k]
            entry = worst[(case.func, kind)]
            if ratio > entry.ratio or not entry.case:
                where = f"{case.describe()} at {'row' if kind == 'grad' else 'element'} {k}"
                shown_got = got[k] if kind == "loss" else got[k].tolist()
                shown_exact = (
                    mpmath.nstr(exact_values[k], 17) if kind == "loss"
                    else [mpmath.nstr(e, 17) for e in exact_values[k]]
                )
                worst[(case.func, kind)] = Worst(case.func, kind, float(ratio), where, shown_got, str(shown_exact))
    return worst


def format_table(columns: dict[str, dict[tuple[str, str], Worst]]) -> str:
    """Markdown table: one row per function, worst loss and gradient ratio per implementation."""
    names = list(columns)
    head = "| function | " + " | ".join(f"{n} loss | {n} grad" for n in names) + " |"
    rule = "|---|" + "---:|---:|" * len(names)
    lines = [head, rule]
    for func in FUNCTIONS:
        cells = []
        for n in names:
            cells += [f"{columns[n][(func, kind)].ratio:.3g}" for kind in ("loss", "grad")]
        lines.append(f"| `{func}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
