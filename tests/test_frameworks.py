"""The framework references (xent_ref.frameworks): gradients against finite differences,
the conventions each docstring states, and -- behind the markers ``sklearn``, ``onnx``,
``jax`` (optax, and keras on the jax backend) and ``tensorflow`` -- the real libraries where
they are installed.

Without those packages the marked tests skip; with them (the optional extra
``pip install -e ".[frameworks]"``, and TensorFlow by hand: it is in no extra)::

    PYTHONPATH=. python -m pytest -m "sklearn or onnx or jax or tensorflow" -o addopts="" \
        tests/test_frameworks.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.test_finite_differences import BOUND, numerical_gradient, relative_error
from xent_ref.cross_entropy import cross_entropy, cross_entropy_grad
from xent_ref.frameworks import keras, onnx, optax, sklearn, tensorflow, torchtune


def assert_gradient(loss, grad, x, g=1.0):
    """``grad(x)`` equals the differences of ``sum(g * loss(x))`` (norm-wise relative error)."""
    analytic = grad(x)
    numeric = numerical_gradient(lambda z: float(np.sum(g * loss(z))), x)
    assert analytic.shape == x.shape and analytic.dtype == np.float64
    assert np.linalg.norm(numeric) > 0
    error = relative_error(analytic, numeric)
    assert error < BOUND, f"relative error {error:.3g}"


rng = np.random.default_rng(19)
LOGITS = rng.normal(size=(5, 4))
PROBS = rng.dirichlet(np.ones(4), size=5)
TARGET = np.array([0, 3, 1, 1, 2])


# ---------------------------------------------------------------------------------------
# Keras
# ---------------------------------------------------------------------------------------

KERAS_REDUCTIONS = ["none", "sum", "sum_over_batch_size", "mean_with_sample_weight"]


@pytest.mark.parametrize("reduction", KERAS_REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("ignore_class", [None, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_keras_sparse_gradient(reduction, from_logits, ignore_class, weighted):
    sw = rng.random(5) if weighted else None
    x = LOGITS if from_logits else PROBS * rng.uniform(0.5, 2.0, (5, 1))  # (rescaled by Keras)
    g = rng.normal(size=5) if reduction == "none" else 1.3
    options = dict(from_logits=from_logits, ignore_class=ignore_class, reduction=reduction,
                   sample_weight=sw)
    assert_gradient(lambda z: keras.sparse_categorical_crossentropy(TARGET, z, **options),
                    lambda z: keras.sparse_categorical_crossentropy_grad(
                        TARGET, z, **options, grad_output=g), x, g)


@pytest.mark.parametrize("reduction", KERAS_REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_keras_categorical_and_binary_gradients(reduction, from_logits, label_smoothing):
    sw = rng.random(3)
    x = rng.normal(size=(3, 4, 2)) if from_logits else rng.uniform(0.05, 0.95, (3, 4, 2))
    y = rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1)  # classes on axis 1
    g = rng.normal(size=(3, 2)) if reduction == "none" else 0.7
    options = dict(from_logits=from_logits, label_smoothing=label_smoothing, axis=1,
                   reduction=reduction, sample_weight=sw[:, None])
    assert_gradient(lambda z: keras.categorical_crossentropy(y, z, **options),
                    lambda z: keras.categorical_crossentropy_grad(y, z, **options,
                                                                  grad_output=g), x, g)
    yb = (rng.random((3, 4, 2)) > 0.5).astype(float)
    assert_gradient(lambda z: keras.binary_crossentropy(yb, z, **options),
                    lambda z: keras.binary_crossentropy_grad(yb, z, **options,
                                                             grad_output=g), x, g)


def test_keras_sum_over_batch_size_divides_by_the_number_of_losses():
    sw = np.array([1.0, 0.0, 0.0, 0.0, 1.0])
    losses = keras.sparse_categorical_crossentropy(TARGET, LOGITS, True)
    over_batch = keras.sparse_categorical_crossentropy(TARGET, LOGITS, True,
                                                       reduction="sum_over_batch_size",
                                                       sample_weight=sw)
    assert np.isclose(over_batch, (losses[0] + losses[4]) / 5, rtol=1e-15)
    by_weight = keras.sparse_categorical_crossentropy(TARGET, LOGITS, True,
                                                      reduction="mean_with_sample_weight",
                                                      sample_weight=sw)
    assert np.isclose(by_weight, (losses[0] + losses[4]) / 2, rtol=1e-15)
    # PyTorch's per-class weights are another thing; its unweighted mean is Keras's
    assert np.isclose(keras.sparse_categorical_crossentropy(TARGET, LOGITS, True, reduction="mean"),
                      cross_entropy(LOGITS, TARGET), rtol=1e-15)


def test_keras_masked_mean_counts_the_kept_and_gives_0_when_all_are_ignored():
    t = np.array([0, 7, 1, 7, 2])
    masked = keras.sparse_categorical_crossentropy(t, LOGITS, True, ignore_class=7,
                                                   reduction="sum_over_batch_size")
    assert np.isclose(masked, cross_entropy(LOGITS, t, ignore_index=7), rtol=1e-15)
    everything = np.full(5, 7)
    for from_logits, x in [(True, LOGITS), (False, PROBS)]:
        loss = keras.sparse_categorical_crossentropy(everything, x, from_logits, ignore_class=7,
                                                     reduction="sum_over_batch_size")
        grad = keras.sparse_categorical_crossentropy_grad(everything, x, from_logits,
                                                          ignore_class=7,
                                                          reduction="sum_over_batch_size")
        assert loss == 0.0 and not grad.any()
    assert np.isnan(cross_entropy(LOGITS, everything, ignore_index=7))  # PyTorch's 0/0


def test_keras_clips_probabilities_to_1e_minus_7():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    loss = keras.sparse_categorical_crossentropy([1, 0], p)
    assert np.isclose(loss[0], -np.log(1e-7), rtol=1e-12)
    assert np.isclose(loss[1], np.log(2), rtol=1e-15)
    grad = keras.sparse_categorical_crossentropy_grad([1, 0], p)
    assert not grad[0].any()  # both entries clipped: the clip's derivative is 0
    p32 = p.astype(np.float32)
    assert keras.sparse_categorical_crossentropy([1, 0], p32).dtype == np.float32
    assert np.isclose(keras.binary_crossentropy([[1.0]], [[0.0]])[0], -np.log(1e-7))


def test_keras_binary_smooths_towards_one_half_and_means_over_the_last_axis():
    x, y = rng.normal(size=(3, 4)), (rng.random((3, 4)) > 0.5).astype(float)
    from xent_ref.binary import binary_cross_entropy_with_logits as bce

    expected = bce(x, y * 0.8 + 0.1, reduction="none").mean(axis=-1)
    assert np.allclose(keras.binary_crossentropy(y, x, True, 0.2), expected, rtol=1e-15)


def test_keras_reductions_and_errors():
    with pytest.raises(ValueError, match="reduction"):
        keras.sparse_categorical_crossentropy(TARGET, LOGITS, reduction="avg")
    with pytest.raises(ValueError, match="sample_weight"):
        keras.sparse_categorical_crossentropy(TARGET, LOGITS, reduction="sum",
                                              sample_weight=np.ones(4))
    with pytest.raises(TypeError, match="y_true"):
        keras.sparse_categorical_crossentropy(np.array([0.5, 1, 1, 1, 1]), LOGITS)
    with pytest.raises(ValueError, match="y_true: class index 4 is out of range"):
        keras.sparse_categorical_crossentropy(TARGET + 1, LOGITS)  # Keras: silently 0
    with pytest.raises(ValueError, match=r"y_true: expected shape \(5,\)"):
        keras.sparse_categorical_crossentropy(TARGET[:3], LOGITS)
    # integral floats and a trailing 1 are what Keras users pass
    assert np.array_equal(keras.sparse_categorical_crossentropy(TARGET[:, None].astype(float),
                                                                PROBS),
                          keras.sparse_categorical_crossentropy(TARGET, PROBS))
    assert keras.sparse_categorical_crossentropy(np.zeros(0, int), np.zeros((0, 3)),
                                                 reduction="sum").shape == (0,)


# ---------------------------------------------------------------------------------------
# optax
# ---------------------------------------------------------------------------------------

X3 = rng.normal(size=(2, 3, 5))
Y3 = rng.dirichlet(np.ones(5), size=(2, 3))
T3 = rng.integers(0, 5, (2, 3))
ROW_MASK = np.array([[True, False, True], [True, True, False]])
CLASS_MASK = rng.random((2, 3, 5)) > 0.3
CLASS_MASK[0, 0] = False  # an example with no class left
CLASS_MASK[1, 1] = True


@pytest.mark.parametrize("where", [None, ROW_MASK, CLASS_MASK], ids=["none", "rows", "classes"])
def test_optax_gradients(where):
    g = rng.normal(size=(2, 3))
    assert_gradient(lambda z: optax.softmax_cross_entropy(z, Y3, where=where),
                    lambda z: optax.softmax_cross_entropy_grad(z, Y3, where=where,
                                                               grad_output=g), X3, g)
    assert_gradient(lambda z: optax.softmax_cross_entropy_with_integer_labels(z, T3, where=where),
                    lambda z: optax.softmax_cross_entropy_with_integer_labels_grad(
                        z, T3, where=where, grad_output=g), X3, g)


def test_optax_tuple_axis_safe_and_sigmoid_gradients():
    labels = np.array([3, 14])
    assert_gradient(lambda z: optax.softmax_cross_entropy_with_integer_labels(z, labels, (1, 2)),
                    lambda z: optax.softmax_cross_entropy_with_integer_labels_grad(
                        z, labels, (1, 2)), X3)
    assert_gradient(lambda z: optax.safe_softmax_cross_entropy(z, Y3),
                    lambda z: optax.safe_softmax_cross_entropy_grad(z, Y3), X3)
    assert_gradient(lambda z: optax.sigmoid_binary_cross_entropy(z, Y3),
                    lambda z: optax.sigmoid_binary_cross_entropy_grad(z, Y3), X3)


def test_optax_is_per_example_pytorch_and_masks_to_zero():
    assert np.allclose(optax.softmax_cross_entropy_with_integer_labels(X3, T3),
                       cross_entropy(X3.transpose(0, 2, 1), T3, reduction="none"), rtol=1e-15)
    assert np.allclose(optax.softmax_cross_entropy(X3, Y3),
                       cross_entropy(X3.transpose(0, 2, 1), Y3.transpose(0, 2, 1),
                                     reduction="none"), rtol=1e-15)
    masked = optax.softmax_cross_entropy_with_integer_labels(X3, T3, where=ROW_MASK)
    assert np.array_equal(masked == 0, ~ROW_MASK)
    by_class = optax.softmax_cross_entropy(X3, Y3, where=CLASS_MASK)
    assert by_class[0, 0] == 0
    assert not optax.softmax_cross_entropy_grad(X3, Y3, where=CLASS_MASK)[0, 0].any()


def test_optax_safe_against_minus_inf():
    x, y = np.array([[0.0, -np.inf, 1.0]]), np.array([[0.5, 0.0, 0.5]])
    assert np.isnan(optax.softmax_cross_entropy(x, y)[0])
    safe = optax.safe_softmax_cross_entropy(x, y)
    assert np.isclose(safe[0], optax.safe_softmax_cross_entropy(x[:, [0, 2]], y[:, [0, 2]])[0])
    assert np.isfinite(optax.safe_softmax_cross_entropy_grad(x, y)).all()
    with pytest.raises(ValueError, match="labels"):
        optax.softmax_cross_entropy_with_integer_labels(X3, T3 + 5)


# ---------------------------------------------------------------------------------------
# TensorFlow
# ---------------------------------------------------------------------------------------


def test_tensorflow_gradients_and_the_labels_gradient():
    g = rng.normal(size=5)
    assert_gradient(lambda z: tensorflow.sparse_softmax_cross_entropy_with_logits(TARGET, z),
                    lambda z: tensorflow.sparse_softmax_cross_entropy_with_logits_grad(
                        TARGET, z, g), LOGITS, g)
    assert_gradient(lambda z: tensorflow.softmax_cross_entropy_with_logits(PROBS, z),
                    lambda z: tensorflow.softmax_cross_entropy_with_logits_grad(
                        PROBS, z, grad_output=g)[0], LOGITS, g)
    assert_gradient(lambda y: tensorflow.softmax_cross_entropy_with_logits(y, LOGITS),
                    lambda y: tensorflow.softmax_cross_entropy_with_logits_grad(
                        y, LOGITS, grad_output=g)[1], PROBS, g)


def test_tensorflow_logits_gradient_assumes_labels_sum_to_one():
    y = PROBS * 2.0  # rows sum to 2
    tf_grad = tensorflow.softmax_cross_entropy_with_logits_grad(y, LOGITS)[0]
    exact = cross_entropy_grad(LOGITS, y, reduction="sum")
    assert np.allclose(tf_grad, softmax_minus(y))
    assert not np.allclose(tf_grad, exact)
    assert np.allclose(tensorflow.softmax_cross_entropy_with_logits_grad(PROBS, LOGITS)[0],
                       cross_entropy_grad(LOGITS, PROBS, reduction="sum"), rtol=1e-12)


def softmax_minus(y):
    e = np.exp(LOGITS - LOGITS.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) - y


def test_tensorflow_shapes_and_axis():
    x = rng.normal(size=(4, 2, 3))
    y = rng.dirichlet(np.ones(4), size=(2, 3)).transpose(2, 0, 1)
    assert np.allclose(tensorflow.softmax_cross_entropy_with_logits(y, x, axis=0),
                       tensorflow.softmax_cross_entropy_with_logits(np.moveaxis(y, 0, -1),
                                                                    np.moveaxis(x, 0, -1)))
    with pytest.raises(ValueError, match="labels"):
        tensorflow.sparse_softmax_cross_entropy_with_logits(TARGET[:4], LOGITS)
    with pytest.raises(ValueError, match="out of range"):
        tensorflow.sparse_softmax_cross_entropy_with_logits(TARGET - 1, LOGITS)


# ---------------------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_sklearn_gradient(normalize, weighted):
    sw = rng.random(5) if weighted else None
    options = dict(normalize=normalize, sample_weight=sw)
    assert_gradient(lambda p: sklearn.log_loss(TARGET, p, **options),
                    lambda p: sklearn.log_loss_grad(TARGET, p, **options), PROBS)
    positive = rng.uniform(0.1, 0.9, 5)
    y = np.array(["no", "yes", "yes", "no", "yes"])
    assert_gradient(lambda p: sklearn.log_loss(y, p, **options),
                    lambda p: sklearn.log_loss_grad(y, p, **options), positive)


def test_sklearn_clips_to_the_dtype_eps():
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.isclose(sklearn.log_loss([1, 1], p, labels=[0, 1]),
                      -np.log(np.finfo(np.float64).eps) / 2)
    loss32 = sklearn.log_loss([1, 1], p.astype(np.float32), labels=[0, 1])
    assert loss32.dtype == np.float32
    assert np.isclose(loss32, -np.log(np.finfo(np.float32).eps) / 2, rtol=1e-6)
    assert not sklearn.log_loss_grad([1, 1], p, labels=[0, 1])[0].any()  # clipped: no gradient


def test_sklearn_labels_and_errors():
    p = np.array([[0.2, 0.8], [0.3, 0.7]])
    assert np.isclose(sklearn.log_loss([1, 1], p, labels=[0, 1]), -np.log([0.8, 0.7]).mean())
    with pytest.raises(ValueError, match="two classes"):
        sklearn.log_loss([1, 1], p)
    with pytest.raises(ValueError, match="sample_weight"):
        sklearn.log_loss([0, 1], p, sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match="y_proba"):
        sklearn.log_loss([0, 1], p * 2)


# ---------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------

SCORES = rng.normal(size=(3, 4, 2))
LABELS = np.array([[0, 3], [1, 2], [2, 2]])
CLASS_WEIGHTS = rng.random(4) + 0.5


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", [None, CLASS_WEIGHTS], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ignore_index", [None, 2])
def test_onnx_gradients_with_the_log_prob_output(reduction, weights, ignore_index):
    g = rng.normal(size=(3, 2)) if reduction == "none" else 0.9
    gamma = rng.normal(size=SCORES.shape)
    options = dict(reduction=reduction, ignore_index=ignore_index)

    def both(z):  # sum(g * output) + sum(gamma * log_prob), as one scalar's pieces
        loss, log_prob = onnx.softmax_cross_entropy_loss(z, LABELS, weights, **options,
                                                         return_log_prob=True)
        return np.append(np.ravel(g * loss), np.ravel(gamma * log_prob))

    assert_gradient(both, lambda z: onnx.softmax_cross_entropy_loss_grad(
        z, LABELS, weights, **options, grad_output=g, grad_log_prob=gamma), SCORES)
    assert_gradient(lambda z: onnx.negative_log_likelihood_loss(z, LABELS, weights, **options),
                    lambda z: onnx.negative_log_likelihood_loss_grad(
                        z, LABELS, weights, **options, grad_output=g), SCORES, g)


def test_onnx_differences_from_pytorch():
    with pytest.raises(ValueError, match="scores"):
        onnx.softmax_cross_entropy_loss(LOGITS[0], 1)  # PyTorch takes (C,)
    assert np.isclose(cross_entropy(LOGITS[0], 1), cross_entropy(LOGITS[:1], [1]))
    with pytest.raises(ValueError, match="out of range"):  # no ignore_index by default
        onnx.softmax_cross_entropy_loss(LOGITS, [0, -100, 1, 1, 2])
    all_ignored = onnx.softmax_cross_entropy_loss(LOGITS, np.full(5, 9), ignore_index=9)
    assert np.isnan(all_ignored)
    assert np.allclose(onnx.softmax_cross_entropy_loss(SCORES, LABELS, CLASS_WEIGHTS),
                       cross_entropy(SCORES, LABELS, CLASS_WEIGHTS), rtol=1e-15)


# ---------------------------------------------------------------------------------------
# torchtune
# ---------------------------------------------------------------------------------------

HIDDEN = rng.normal(size=(2, 5, 3))
PROJECTION = rng.normal(size=(6, 3))
BIAS = rng.normal(size=6)
TOKENS = np.array([[0, 5, -100, 2, 1], [3, -100, -100, 4, 0]])


@pytest.mark.parametrize("chunks", [1, 2, 8])
def test_torchtune_linear_gradients(chunks):
    def call(h, w, b):
        return torchtune.linear_cross_entropy_loss(h, w, TOKENS, linear_bias=b,
                                                   num_output_chunks=chunks)

    def grads(h, w, b):
        return torchtune.linear_cross_entropy_loss_grad(h, w, TOKENS, linear_bias=b,
                                                        num_output_chunks=chunks, grad_output=1.4)

    assert_gradient(lambda h: call(h, PROJECTION, BIAS), lambda h: grads(h, PROJECTION, BIAS)[0],
                    HIDDEN, 1.4)
    assert_gradient(lambda w: call(HIDDEN, w, BIAS), lambda w: grads(HIDDEN, w, BIAS)[1],
                    PROJECTION, 1.4)
    assert_gradient(lambda b: call(HIDDEN, PROJECTION, b),
                    lambda b: grads(HIDDEN, PROJECTION, b)[2], BIAS, 1.4)
    logits = HIDDEN @ PROJECTION.T + BIAS
    mean = cross_entropy(logits.transpose(0, 2, 1), TOKENS)
    assert np.isclose(call(HIDDEN, PROJECTION, BIAS), mean, rtol=1e-14)


def test_torchtune_all_ignored_is_0_for_linear_and_nan_for_chunked():
    ignored = np.full((2, 5), -100)
    assert torchtune.linear_cross_entropy_loss(HIDDEN, PROJECTION, ignored) == 0.0
    dh, dw, db = torchtune.linear_cross_entropy_loss_grad(HIDDEN, PROJECTION, ignored)
    assert not dh.any() and not dw.any() and db is None
    chunks = np.array_split(HIDDEN @ PROJECTION.T, 3, axis=1)
    assert np.isnan(torchtune.chunked_cross_entropy(chunks, ignored))
    assert not any(g.any() for g in torchtune.chunked_cross_entropy_grad(chunks, ignored))


def test_torchtune_chunked_gradient():
    logits = HIDDEN @ PROJECTION.T

    def split(z):
        return np.array_split(z, 3, axis=1)

    assert_gradient(lambda z: torchtune.chunked_cross_entropy(split(z), TOKENS),
                    lambda z: np.concatenate(torchtune.chunked_cross_entropy_grad(split(z), TOKENS),
                                             axis=1), logits)
    with pytest.raises(ValueError, match="logits"):
        torchtune.chunked_cross_entropy(np.array_split(logits, 2, axis=1)[::-1], TOKENS)


def test_inputs_are_not_modified():
    x, y, t = LOGITS.copy(), PROBS.copy(), TARGET.copy()
    keras.sparse_categorical_crossentropy_grad(t, x, True)
    keras.categorical_crossentropy_grad(y, x)
    optax.softmax_cross_entropy_grad(x, y, where=np.ones(5, bool))
    tensorflow.softmax_cross_entropy_with_logits_grad(y, x)
    sklearn.log_loss_grad(t, y)
    onnx.softmax_cross_entropy_loss_grad(x, t, grad_log_prob=np.ones_like(x))
    assert np.array_equal(x, LOGITS) and np.array_equal(y, PROBS) and np.array_equal(t, TARGET)


# ---------------------------------------------------------------------------------------
# Against the real libraries (each skips when its package is not installed)
# ---------------------------------------------------------------------------------------


@pytest.mark.sklearn
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sklearn_log_loss_is_the_library(dtype):
    metrics = pytest.importorskip("sklearn.metrics")
    p = rng.dirichlet(np.ones(4), 9).astype(dtype)
    p[0], p[1] = [1, 0, 0, 0], [0, 1, 0, 0]  # clipped at 0 and at 1
    t = np.array([1, 0, 3, 2, 1, 0, 2, 3, 1])  # every class present, as log_loss wants
    for normalize in (True, False):
        for sw in (None, rng.random(9)):
            expected = metrics.log_loss(t, p, normalize=normalize, sample_weight=sw)
            got = sklearn.log_loss(t, p, normalize=normalize, sample_weight=sw)
            assert got.dtype == dtype
            assert np.isclose(got, expected, rtol=1e-15 if dtype == np.float64 else 1e-7, atol=0)
    names, positive = np.array(["b", "a", "b", "c"]), rng.dirichlet(np.ones(3), 4)
    assert np.isclose(sklearn.log_loss(names, positive), metrics.log_loss(names, positive),
                      rtol=1e-15)
    y, q = np.array(["no", "yes", "no"]), np.array([0.2, 0.9, 0.0])
    assert np.isclose(sklearn.log_loss(y, q), metrics.log_loss(y, q), rtol=1e-15)
    assert np.isclose(sklearn.log_loss([2, 2], [[0.3, 0.7], [0.6, 0.4]], labels=[1, 2]),
                      metrics.log_loss([2, 2], [[0.3, 0.7], [0.6, 0.4]], labels=[1, 2]),
                      rtol=1e-15)


def _onnx_run(op, inputs, n_outputs=1, **attributes):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    names = ["x", "t", "w"][:len(inputs)]
    kinds = {np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.float32): TensorProto.FLOAT,
             np.dtype(np.int64): TensorProto.INT64}
    outputs = ["loss", "log_prob"][:n_outputs]
    float_kind = kinds[inputs[0].dtype]
    node = helper.make_node(op, names, outputs, **attributes)
    graph = helper.make_graph(
        [node], "xent", [helper.make_tensor_value_info(n, kinds[a.dtype], None)
                         for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info(n, float_kind, None) for n in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))


@pytest.mark.onnx
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (2, 4, 2, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 2])
def test_onnx_operators_are_the_reference_evaluator(shape, reduction, weighted, ignore_index):
    x = rng.normal(size=shape)
    t = rng.integers(0, 4, (shape[0],) + shape[2:])
    t.flat[0] = 2
    w = rng.random(4) + 0.1 if weighted else None
    inputs = [x, t] + ([w] if weighted else [])
    attributes = {"reduction": reduction}
    if ignore_index is not None:
        attributes["ignore_index"] = ignore_index
    options = dict(reduction=reduction, ignore_index=ignore_index)
    loss, log_prob = _onnx_run("SoftmaxCrossEntropyLoss", inputs, 2, **attributes)
    ours, our_log_prob = onnx.softmax_cross_entropy_loss(x, t, w, **options, return_log_prob=True)
    assert np.allclose(ours, loss, rtol=1e-13, atol=0)
    assert np.allclose(our_log_prob, log_prob, rtol=1e-13, atol=0)
    (nll,) = _onnx_run("NegativeLogLikelihoodLoss", [log_prob] + inputs[1:], **attributes)
    assert np.allclose(onnx.negative_log_likelihood_loss(log_prob, t, w, **options), nll,
                       rtol=1e-13, atol=0)


@pytest.mark.onnx
def test_onnx_float32_and_all_ignored():
    x = rng.normal(size=(4, 3)).astype(np.float32)
    t = np.array([1, 0, 2, 1])
    (loss,) = _onnx_run("SoftmaxCrossEntropyLoss", [x, t], reduction="sum")
    ours = onnx.softmax_cross_entropy_loss(x, t, reduction="sum")
    assert ours.dtype == np.float32 and np.isclose(ours, loss, rtol=1e-6)
    with np.errstate(invalid="ignore"):  # the reference evaluator divides 0 by 0 itself
        (nothing,) = _onnx_run("SoftmaxCrossEntropyLoss", [x.astype(np.float64), np.full(4, 1)],
                               ignore_index=1)
    assert np.isnan(nothing) and np.isnan(onnx.softmax_cross_entropy_loss(x, np.full(4, 1),
                                                                           ignore_index=1))


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _vjp(jax, f, x, g):
    value, pullback = jax.vjp(f, jax.numpy.asarray(x))
    return np.asarray(value), np.asarray(pullback(jax.numpy.asarray(g))[0])


@pytest.mark.jax
@pytest.mark.parametrize("where", [None, ROW_MASK, CLASS_MASK], ids=["none", "rows", "classes"])
def test_optax_is_the_library(where):
    jax = _jax()
    losses = pytest.importorskip("optax").losses
    jw = None if where is None else jax.numpy.asarray(where)
    g = rng.normal(size=(2, 3))
    for ours, ours_grad, theirs, labels in [
            (optax.softmax_cross_entropy, optax.softmax_cross_entropy_grad,
             losses.softmax_cross_entropy, Y3),
            (optax.softmax_cross_entropy_with_integer_labels,
             optax.softmax_cross_entropy_with_integer_labels_grad,
             losses.softmax_cross_entropy_with_integer_labels, T3)]:
        value, grad = _vjp(jax, lambda z: theirs(z, jax.numpy.asarray(labels), where=jw), X3, g)
        assert np.allclose(ours(X3, labels, where=where), value, rtol=1e-13, atol=1e-15)
        assert np.allclose(ours_grad(X3, labels, where=where, grad_output=g), grad,
                           rtol=1e-12, atol=1e-15)


@pytest.mark.jax
def test_optax_tuple_axis_safe_and_sigmoid_are_the_library():
    jax = _jax()
    losses = pytest.importorskip("optax").losses
    labels = np.array([3, 14])
    value, grad = _vjp(jax, lambda z: losses.softmax_cross_entropy_with_integer_labels(
        z, jax.numpy.asarray(labels), axis=(1, 2)), X3, np.ones(2))
    assert np.allclose(optax.softmax_cross_entropy_with_integer_labels(X3, labels, (1, 2)), value)
    assert np.allclose(optax.softmax_cross_entropy_with_integer_labels_grad(X3, labels, (1, 2)),
                       grad)
    x, y = X3.copy(), Y3.copy()
    x[0, 0, 1], y[0, 0, 1] = -np.inf, 0.0
    value, grad = _vjp(jax, lambda z: losses.safe_softmax_cross_entropy(z, jax.numpy.asarray(y)),
                       x, np.ones((2, 3)))
    assert np.allclose(optax.safe_softmax_cross_entropy(x, y), value, rtol=1e-13)
    assert np.allclose(optax.safe_softmax_cross_entropy_grad(x, y), grad, rtol=1e-12, atol=1e-15)
    value, grad = _vjp(jax, lambda z: losses.sigmoid_binary_cross_entropy(
        z, jax.numpy.asarray(Y3)), X3, np.ones_like(X3))
    assert np.allclose(optax.sigmoid_binary_cross_entropy(X3, Y3), value, rtol=1e-13)
    assert np.allclose(optax.sigmoid_binary_cross_entropy_grad(X3, Y3), grad, rtol=1e-12)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    jax = _jax()
    library = pytest.importorskip("keras")
    if library.backend.backend() != "jax":
        pytest.skip("keras runs on another backend here")
    return jax, library


@pytest.mark.jax
@pytest.mark.parametrize("reduction", KERAS_REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_keras_losses_are_the_library(reduction, from_logits):
    jax, library = _keras()
    sw = rng.random(5)
    t = TARGET.copy()
    x = LOGITS if from_logits else PROBS

    def check(cls, ours, ours_grad, y_true, y_pred, rtol=1e-13, **options):
        loss = cls(reduction=reduction, dtype="float64", from_logits=from_logits, **options)
        for weight in (None, sw):
            def f(z):
                return loss(jax.numpy.asarray(y_true), z,
                            sample_weight=None if weight is None else jax.numpy.asarray(weight))

            ones = np.ones(np.shape(ours(y_true, y_pred, from_logits, **options)))
            value, grad = _vjp(jax, f, y_pred, ones * 1.5 if reduction == "none" else 1.5)
            mine = ours(y_true, y_pred, from_logits, **options, reduction=reduction,
                        sample_weight=weight)
            assert np.allclose(mine, value, rtol=rtol, atol=1e-15)
            mine_grad = ours_grad(y_true, y_pred, from_logits, **options, reduction=reduction,
                                  sample_weight=weight, grad_output=np.full(np.shape(mine), 1.5))
            assert np.allclose(mine_grad, grad, rtol=rtol, atol=1e-15)

    losses = library.losses
    for ignore_class in (None, 1, 9):
        labels = t if ignore_class is None else np.where(t == 3, ignore_class, t)
        check(losses.SparseCategoricalCrossentropy, keras.sparse_categorical_crossentropy,
              keras.sparse_categorical_crossentropy_grad, labels, x, ignore_class=ignore_class)
    for smoothing in (0.0, 0.1):
        check(losses.CategoricalCrossentropy, keras.categorical_crossentropy,
              keras.categorical_crossentropy_grad, PROBS[::-1].copy(), x,
              label_smoothing=smoothing)
        yb = (rng.random((5, 4)) > 0.5).astype(float)
        xb = LOGITS if from_logits else rng.uniform(0.02, 0.98, (5, 4))
        # (Keras's jax backend takes ops.mean in float32, even of float64 values)
        check(losses.BinaryCrossentropy, keras.binary_crossentropy, keras.binary_crossentropy_grad,
              yb, xb, rtol=1e-6, label_smoothing=smoothing)


@pytest.mark.jax
def test_keras_all_ignored_is_the_library():
    _, library = _keras()
    loss = library.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2)
    everything = np.full(5, 2)
    assert float(loss(everything, LOGITS.astype(np.float32))) == 0.0
    assert keras.sparse_categorical_crossentropy(everything, LOGITS, True, 2,
                                                 reduction="sum_over_batch_size") == 0.0


@pytest.mark.jax
def test_keras_clipped_probabilities_and_float32_are_the_library():
    jax, library = _keras()
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
    t = np.array([1, 0, 2])
    loss = library.losses.SparseCategoricalCrossentropy(reduction="sum", dtype="float64")
    value, grad = _vjp(jax, lambda z: loss(jax.numpy.asarray(t), z), p, 1.0)
    assert np.isclose(keras.sparse_categorical_crossentropy(t, p, reduction="sum"), value,
                      rtol=1e-13)
    assert np.allclose(keras.sparse_categorical_crossentropy_grad(t, p, reduction="sum"), grad,
                       rtol=1e-13, atol=0)
    x32 = LOGITS.astype(np.float32)
    default = library.losses.SparseCategoricalCrossentropy(from_logits=True)  # floatx: float32
    value, grad = _vjp(jax, lambda z: default(jax.numpy.asarray(TARGET), z), x32,
                       np.float32(1.0))
    ours = keras.sparse_categorical_crossentropy(TARGET, x32, True,
                                                 reduction="sum_over_batch_size")
    assert ours.dtype == np.float32 and np.isclose(ours, value, rtol=1e-6)
    assert np.allclose(keras.sparse_categorical_crossentropy_grad(
        TARGET, x32, True, reduction="sum_over_batch_size"), grad, rtol=1e-5, atol=1e-7)


def _tape(tf, f, *arrays, g):
    """``(f(*arrays), gradients)`` with TensorFlow's autodiff (``output_gradients=g``)."""
    variables = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        for v in variables:
            tape.watch(v)
        value = f(*variables)
    grads = tape.gradient(value, variables, output_gradients=tf.constant(g, value.dtype))
    return value.numpy(), [None if d is None else d.numpy() for d in grads]


@pytest.mark.tensorflow
def test_tensorflow_is_the_library():
    tf = pytest.importorskip("tensorflow")
    g = rng.normal(size=5)
    value, (grad,) = _tape(tf, lambda x: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=TARGET, logits=x), LOGITS, g=g)
    assert np.allclose(tensorflow.sparse_softmax_cross_entropy_with_logits(TARGET, LOGITS), value,
                       rtol=1e-13)
    assert np.allclose(tensorflow.sparse_softmax_cross_entropy_with_logits_grad(TARGET, LOGITS, g),
                       grad, rtol=1e-12, atol=1e-16)
    x = rng.normal(size=(4, 2, 3))
    for labels in (rng.dirichlet(np.ones(4), size=(2, 3)).transpose(2, 0, 1),
                   rng.random((4, 2, 3))):  # rows that do not sum to 1: TF's p - y
        g = rng.normal(size=(2, 3))
        value, (grad_x, grad_y) = _tape(tf, lambda z, y: tf.nn.softmax_cross_entropy_with_logits(
            labels=y, logits=z, axis=0), x, labels, g=g)
        assert np.allclose(tensorflow.softmax_cross_entropy_with_logits(labels, x, axis=0), value,
                           rtol=1e-13)
        ours_x, ours_y = tensorflow.softmax_cross_entropy_with_logits_grad(labels, x, 0, g)
        assert np.allclose(ours_x, grad_x, rtol=1e-12, atol=1e-16)
        assert np.allclose(ours_y, grad_y, rtol=1e-12, atol=1e-16)


@pytest.mark.torch
@pytest.mark.parametrize("ignored", [False, True], ids=["some-kept", "all-ignored"])
def test_torchtune_is_its_algorithm_under_autograd(ignored):
    """torchtune's ``LinearCrossEntropyLoss.forward`` (chunks of the sequence, ignored
    tokens masked before the projection, one token unmasked in an empty chunk, no division
    when nothing is kept), run by PyTorch with its autograd."""
    torch = pytest.importorskip("torch")
    targets = np.full_like(TOKENS, -100) if ignored else TOKENS
    h = torch.tensor(HIDDEN, requires_grad=True)
    w = torch.tensor(PROJECTION, requires_grad=True)
    b = torch.tensor(BIAS, requires_grad=True)
    t = torch.tensor(targets)
    total = 0.0
    for hidden_chunk, target_chunk in zip(h.tensor_split(2, dim=1), t.tensor_split(2, dim=1)):
        mask = target_chunk != -100
        if mask.sum() == 0:
            mask[0] = True
        logits = torch.nn.functional.linear(hidden_chunk[mask], w, b)
        total = total + torch.nn.functional.cross_entropy(logits, target_chunk[mask],
                                                          reduction="sum", ignore_index=-100)
    kept = (t != -100).sum()
    loss = total if kept == 0 else total / kept
    loss.backward(torch.tensor(1.4, dtype=torch.float64))
    ours = torchtune.linear_cross_entropy_loss(HIDDEN, PROJECTION, targets, linear_bias=BIAS,
                                               num_output_chunks=2)
    assert np.isclose(ours, loss.item(), rtol=1e-13, atol=0)
    grads = torchtune.linear_cross_entropy_loss_grad(HIDDEN, PROJECTION, targets,
                                                     linear_bias=BIAS, num_output_chunks=2,
                                                     grad_output=1.4)
    for got, leaf in zip(grads, (h, w, b)):
        assert np.allclose(got, leaf.grad.numpy(), rtol=1e-12, atol=1e-15)
