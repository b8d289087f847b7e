"""xent_ref in float64 against an mpmath oracle, on a stress corpus.

Every loss value (per sample and reduced) and every gradient row must lie
within 4 eps of the exact value, scaled by the problem's conditioning
``|exact| * (1 + max|x|)``: see ``tests/accuracy_oracle.py`` for the corpus and
the measure, and ``scripts/torch_accuracy.py`` for PyTorch's figure on it.
"""

import dataclasses

import mpmath
import numpy as np
import pytest

import xent_ref
from tests.helpers import accuracy_oracle as oracle


@pytest.fixture(scope="module")
def cases():
    return oracle.corpus()


@pytest.fixture(scope="module")
def worst(cases):
    return oracle.measure(xent_ref, cases)


@pytest.mark.parametrize("kind", ["loss", "grad"])
@pytest.mark.parametrize("func", oracle.FUNCTIONS)
def test_within_four_eps_of_exact(worst, func, kind):
    found = worst[(func, kind)]
    assert found.case, f"the corpus has no {func} case"
    assert found.ratio <= oracle.BOUND, found.describe()


def test_measure_flags_a_loss_rounded_to_zero():
    # logits [50, 0, 0], target 0: the true loss is log1p(2 e^-50) = 3.86e-22;
    # the textbook lse - x_t rounds it to 0, which must score far beyond the bound.
    case = oracle.Case("cross_entropy", "confident", np.array([[50.0, 0.0, 0.0]]), np.array([0]), {"reduction": "none"})
    exact = oracle.exact(case)
    with mpmath.workdps(60):
        assert mpmath.almosteq(exact.value[0], mpmath.log1p(2 * mpmath.exp(-50)), rel_eps=mpmath.mpf(10) ** -45)
    assert oracle.ratios(np.array([0.0]), exact.value, exact.value_scale)[0] > 1e13


# The oracle's gradients are written by hand; check them against central
# differences of the oracle's own exact values on a sample of the corpus.
DIFFERENCED = {"random x1", "confident", "near-ties", "(2,5,3,4)", "random x1, prob targets",
               "confident, prob targets", "random x1, soft targets", "large +-30..700", "soft targets"}


def shrunk(case):
    """A smaller case of the same kind (differencing costs the square of the size):
    two rows from the top and three from the bottom, or a 2x2 corner of an image."""
    if case.input.ndim == 4:
        corner = (slice(None), slice(None), slice(0, 2), slice(0, 2))
        target_corner = corner if case.target.ndim == 4 else corner[:1] + corner[2:]
        return dataclasses.replace(case, input=case.input[corner], target=case.target[target_corner])
    if len(case.input) <= 5:
        return case
    rows = [0, 1, -3, -2, -1]
    # Per-sample arrays lose the same rows; so does a per-row weight (N, 1).
    kwargs = {k: v[rows] if np.ndim(v) == 2 else v for k, v in case.kwargs.items()}
    pick = lambda a: None if a is None else a[rows]  # noqa: E731
    return dataclasses.replace(case, input=case.input[rows], target=pick(case.target), kwargs=kwargs,
                               grad_output=pick(case.grad_output))


def differenced(cases):
    """A quick sample: the labels above, each loss bare or with two or more options."""
    for case in cases:
        if case.label.removesuffix(", ignored") not in DIFFERENCED:
            continue
        options = len(case.kwargs) - ("reduction" in case.kwargs)
        if case.func in ("cross_entropy", "binary_cross_entropy_with_logits") and options == 1:
            continue
        if case.func == "binary_cross_entropy_with_logits" and options == 0:
            continue
        if case.kwargs.get("reduction", "none") not in ("mean", "none"):
            continue
        case = shrunk(case)
        if case.input.size > 40 and case.kwargs.get("reduction") == "none":
            continue  # the larger inputs once, through the mean
        if case.func == "binary_cross_entropy":
            # Inside the clamps only: there the gradient formula is the derivative.
            p = case.input
            case = dataclasses.replace(case, input=p[(p * (1 - p) > 1e-10).all(axis=1)])
            case = dataclasses.replace(case, target=case.target[: len(case.input)])
        yield case


def check_slopes(case, digits):
    """Assert the oracle's gradient rows against central differences of its values."""
    exact = oracle.exact(case, digits)
    x = np.asarray(case.input, dtype=np.float64)
    seed = np.ones(len(exact.value)) if case.grad_output is None else np.ravel(case.grad_output)
    # Differences are taken value by value, so a confident row's 1e-300 slope is
    # not lost in the rounding of the other samples' losses; a mean is a single
    # value of size ~1, whose slopes are resolved down to ~1e-40 only.
    floor = 1e-38 if case.kwargs.get("reduction") == "mean" else 0.0
    where = oracle.as_rows(np.arange(x.size).reshape(x.shape), exact.row_axis)
    for row, flat_indices in zip(exact.grad_rows, where):
        size = max(abs(e) for e in row)
        for e, flat in zip(row, flat_indices):
            v = x.flat[flat]
            step = 1e-7 * (min(v, 1 - v) if case.func == "binary_cross_entropy" else max(1.0, abs(v)))
            up, down = x.copy(), x.copy()
            up.flat[flat] += step
            down.flat[flat] -= step
            with mpmath.workdps(digits):
                ups = oracle.exact(dataclasses.replace(case, input=up), digits).value
                downs = oracle.exact(dataclasses.replace(case, input=down), digits).value
                slope = mpmath.fsum((u - d) * s for u, d, s in zip(ups, downs, seed)) / (up.flat[flat] - down.flat[flat])
                assert abs(slope - e) <= 1e-6 * size + floor, (case.describe(), flat, slope, e)


def test_oracle_gradients_match_central_differences(cases):
    checked = 0
    for case in differenced(cases):
        if case.func == "softmax":
            # A probability near 1 moves by 1e-7 * 1e-324 (logits [745, 0, 0, 0]):
            # resolved with 360 digits, one row at a time to keep it quick.
            for i in range(len(case.input)):
                check_slopes(dataclasses.replace(case, input=case.input[i:i + 1], grad_output=case.grad_output[i:i + 1]), 360)
        else:
            check_slopes(case, oracle.DIGITS)
        checked += 1
    assert checked >= 20
