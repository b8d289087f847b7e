"""xent_ref.target_mass: cross-entropy's targets as rows of target mass (shared by the focal
loss and poly-1), checked against the textbook's target_distribution and cross_entropy."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import family as fh
import xent_ref as xr
from xent_ref import textbook as tb
from xent_ref.target_mass import one_minus_probs, target_mass

rng = np.random.default_rng(31)


@pytest.mark.parametrize("kind", ["index", "ignored", "probs"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_rows_are_the_textbooks_target_distribution(kind, weighted, smoothing):
    x, t = fh.class_batch(rng, kind)
    w = rng.uniform(0.5, 2, 4) if weighted else None
    tm = target_mass(x, t, w, label_smoothing=smoothing)
    q, kept, denominator = tb.target_distribution(x, t, w, label_smoothing=smoothing)
    np.testing.assert_allclose(tm.q, q, rtol=1e-15)
    np.testing.assert_array_equal(tm.kept, kept)
    assert tm.denominator == pytest.approx(denominator, rel=1e-15)
    # cross-entropy is sum_c q_c (-log p_c), and mean divides by the same denominator
    losses = (tm.q * -xr.log_softmax(tm.logits, axis=1)).sum(axis=1)
    np.testing.assert_allclose(tm.reduced(losses), xr.cross_entropy(x, t, w,
                                                                    label_smoothing=smoothing),
                               rtol=1e-13)


def test_images_are_laid_out_class_last_and_back():
    x, t = fh.class_batch(rng, "image")  # (2, 4, 3)
    tm = target_mass(x, t, reduction="none")
    assert tm.logits.shape == (6, 4) and tm.loss_shape == (2, 3)
    np.testing.assert_array_equal(tm.logits[1], x[0, :, 1])
    np.testing.assert_array_equal(tm.in_input_layout(tm.logits), x)
    assert not tm.kept[1]  # t[0, 1] is ignored
    scale = tm.row_scale(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(scale[:, 0], [0.0, 0.0, 2.0, 3.0, 4.0, 5.0])


def test_one_row_input():
    tm = target_mass([0.0, 1.0, 2.0], 2, reduction="sum")
    assert tm.logits.shape == (1, 3) and tm.loss_shape == ()
    assert tm.in_input_layout(tm.q).shape == (3,)


def test_one_minus_probs_keeps_a_confident_rows_complement():
    probs = xr.softmax(np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0]]), axis=1)
    got = one_minus_probs(probs)
    assert got[0, 0] == pytest.approx(2 * np.exp(-50.0), rel=1e-15)  # 1 - p rounds to 0
    np.testing.assert_allclose(got[1], 1 - probs[1], rtol=1e-15)


@pytest.mark.parametrize("call, error, words", [
    (lambda: target_mass(np.zeros((2, 0)), np.zeros(2, int)), ValueError, "input"),
    (lambda: target_mass([[0.0, 1.0]], [[0.5, 0.5]], ignore_index=0), ValueError,
     "ignore_index"),
    (lambda: target_mass([[0.0, 1.0]], [0], label_smoothing=-0.1), ValueError,
     "label_smoothing"),
])
def test_errors_name_the_argument(call, error, words):
    fh.check_error(call, error, words)


FAMILY = ("kl_div", "sigmoid_focal_loss", "softmax_focal_loss", "poly1_cross_entropy")


@pytest.mark.parametrize("name", FAMILY)
def test_the_family_is_in_the_face_and_the_by_name_table(name):
    from xent_ref import functions

    for function in (name, name + "_grad"):
        assert function in xr.__all__
        assert functions.named(function) is getattr(xr, function)
