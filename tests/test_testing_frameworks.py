"""xent_ref.testing_frameworks: torch and JAX callables checked against the golden corpus with
their own autograd. Marked ``torch`` / ``jax``; each skips without its framework::

    PYTHONPATH=. python -m pytest -m torch -o addopts="" tests/test_testing_frameworks.py
"""

from __future__ import annotations

import numpy as np
import pytest

from xent_ref import testing
from xent_ref.testing_frameworks import PEER_NAMES, check_jax, check_torch


def test_unknown_function_is_refused():
    with pytest.raises(ValueError, match="function"):
        check_torch(print, "cross_entropy_grad")


@pytest.mark.torch
@pytest.mark.parametrize("name", ["cross_entropy", "linear_cross_entropy", "softmax",
                                  "log_softmax", "nll_loss", "binary_cross_entropy_with_logits"])
def test_torch_functional_passes(name):
    functional = pytest.importorskip("torch.nn.functional")
    report = check_torch(getattr(functional, name), name, dtypes=["float32", "float64"])
    assert report.outcomes and report.ok, report
    assert any(o.function == name + "_grad" for o in report.outcomes)


@pytest.mark.torch
def test_torch_mean_by_count_bug_fails_and_is_named():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional

    def mean_over_every_token(input, target, weight=None, ignore_index=-100, reduction="mean",
                              label_smoothing=0.0):
        total = functional.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                                         reduction="sum" if reduction == "mean" else reduction,
                                         label_smoothing=label_smoothing)
        if reduction != "mean":
            return total
        samples = input.numel() // input.shape[1 if input.dim() > 1 else 0]
        return total / samples  # ignored tokens counted: the bug

    report = check_torch(mean_over_every_token, "cross_entropy", dtypes=["float64"])
    assert not report.ok
    assert "ignored-in-denominator" in {d.id for d in report.diagnoses if d.failing}


@pytest.mark.torch
def test_torch_peer_names_reach_the_llm_cases():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional

    def liger_style(input, target, ignore_index=-100, reduction="mean", lse_square_scale=0.0):
        loss = functional.cross_entropy(input, target, ignore_index=ignore_index,
                                        reduction=reduction)
        lse = torch.logsumexp(input, dim=1 if input.dim() > 1 else 0)
        kept = target != ignore_index
        penalty = torch.where(kept, lse_square_scale * lse**2, torch.zeros_like(lse))
        if reduction == "none":
            return loss + penalty
        return loss + (penalty.sum() if reduction == "sum" else penalty.sum() / kept.sum())

    cases = [c for c in testing.cases("cross_entropy", kind="llm", target="index",
                                                   dtype="float64")
             if set(c.kwargs) <= {"ignore_index", "reduction", "z_loss"}]
    z_loss_cases = [c for c in cases if c.kwargs.get("z_loss")]
    assert z_loss_cases
    report = check_torch(liger_style, "cross_entropy", names=PEER_NAMES["liger"], cases=cases)
    assert report.ok, report
    assert len({o.case.id for o in report.outcomes}) == len(cases)
    left_out = check_torch(liger_style, "cross_entropy", cases=z_loss_cases)
    assert not left_out.outcomes  # without the renaming, no z_loss case can be called


def _optax_cross_entropy():
    jnp = pytest.importorskip("jax.numpy")
    losses = pytest.importorskip("optax").losses

    def cross_entropy(input, target, reduction="mean"):
        logits = jnp.moveaxis(input, 1, -1) if input.ndim > 1 else input
        per_example = losses.softmax_cross_entropy_with_integer_labels(logits, target)
        return {"mean": jnp.mean, "sum": jnp.sum}.get(reduction, lambda x: x)(per_example)

    return cross_entropy


PLAIN_CASES = dict(kind="systematic", weight=False, ignore_index="none", smoothing=0.0,
                   target="index", dtype=["float32", "float64"], shape=["C", "NxC"])


@pytest.mark.jax
def test_jax_optax_passes():
    fn = _optax_cross_entropy()
    report = check_jax(fn, "cross_entropy", cases=testing.cases("cross_entropy", **PLAIN_CASES))
    assert report.outcomes and report.ok, report
    assert {o.case.inputs["input"].dtype for o in report.outcomes} == {np.dtype("float32"),
                                                                      np.dtype("float64")}


@pytest.mark.jax
def test_jax_sum_for_mean_fails():
    fn = _optax_cross_entropy()

    def summed(input, target, reduction="mean"):
        return fn(input, target, "sum" if reduction == "mean" else reduction)

    report = check_jax(summed, "cross_entropy", cases=testing.cases("cross_entropy",
                                                                    **PLAIN_CASES))
    assert not report.ok
    failing = {o.case.kwargs.get("reduction", "mean") for o in report.outcomes if not o.check.ok}
    assert failing == {"mean"}
