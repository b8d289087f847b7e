# %% [markdown]
# # 5. Gradients by hand, checked three ways
#
# Training needs $\partial \text{loss} / \partial \text{logits}$. For the
# cross-entropy family the answer is short: **probabilities minus targets**,
# scaled by the weights and divided by the same denominator as the loss. This
# notebook derives it, writes it in a few lines of NumPy, and checks it against
# (1) the library's `*_grad` functions, (2) central finite differences of the
# library's losses, and (3) values computed by PyTorch's autograd, stored in
# `data/torch_values.json` by `scripts/make_notebook_torch_values.py`.
#
# The examples are the worked examples of document 001,
# "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数", and of document 004,
# "交叉熵损失函数"; the smoothing is that of document 003,
# "PyTorch实现CrossEntropyLoss示例".

# %%
import json

import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref._jsonio import decode_array

np.set_printoptions(precision=6, suppress=True)

with open("data/torch_values.json", encoding="utf-8") as f:
    torch_cases = {case["name"]: case for case in json.load(f)["cases"]}
print(sorted(torch_cases))

# %% [markdown]
# ## Deriving the softmax cross-entropy gradient
#
# For one sample with logits $x$ and class $t$,
# $\ell = -\log p_t = -x_t + \log \sum_j e^{x_j}$. Differentiating,
# $\partial \ell / \partial x_c = -[c = t] + e^{x_c} / \sum_j e^{x_j}$, so
#
# $$\frac{\partial \ell}{\partial x} = p - \text{onehot}(t).$$
#
# The options only rescale rows:
#
# * **weight**: sample $i$'s loss is multiplied by $w_{t_i}$, so is its row.
# * **mean**: every row is divided by $D = \sum_{\text{kept } i} w_{t_i}$.
# * **ignore_index**: an ignored sample is not in the loss: its row is 0.
# * **label smoothing** $\varepsilon$: the loss adds
#   $\frac{\varepsilon}{C} \cdot \text{smooth}_i$ with
#   $\text{smooth}_i = -\sum_c w_c \log p_c$, whose gradient is
#   $W p - w$ with $W = \sum_c w_c$. The $\text{onehot}$ part is scaled by
#   $1 - \varepsilon$.
#
# $$\frac{\partial L}{\partial x_i} = \frac{(1-\varepsilon)\, w_{t_i} \,(p_i - \text{onehot}(t_i)) + \frac{\varepsilon}{C}(W p_i - w)}{D}$$

# %%
def hand_grad(logits, labels, weight=None, ignore_index=-100, label_smoothing=0.0):
    """d mean-loss / d logits for (N, C) logits, from the formula above."""
    n, c = logits.shape
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=float)
    kept = labels != ignore_index
    safe = np.where(kept, labels, 0)
    p = xr.softmax(logits, axis=1)
    one_hot = np.eye(c)[safe]
    rows = (1 - label_smoothing) * w[safe][:, None] * (p - one_hot)
    rows += label_smoothing / c * (w.sum() * p - w)
    rows[~kept] = 0.0
    return rows / w[safe][kept].sum()


def central_differences(f, x, h=1e-6):
    """Numerical gradient of the scalar f at x, one element at a time."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad

# %% [markdown]
# ## The 4x3 example: `weight=[2, 1, 2]`, `ignore_index=2`

# %%
logits = np.array([[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]])
labels = np.array([2, 1, 0, 1])
options = {"weight": [2.0, 1.0, 2.0], "ignore_index": 2}

by_hand = hand_grad(logits, labels, **options)
library = xr.cross_entropy_grad(logits, labels, **options)
numeric = central_differences(lambda z: float(xr.cross_entropy(z, labels, **options)), logits)
torch_grad = decode_array(torch_cases["4x3 weight ignore_index"]["grad"])
print("by hand:\n", by_hand)
for name, other in (("library", library), ("finite differences", numeric), ("PyTorch", torch_grad)):
    tolerance = 1e-9 if name == "finite differences" else 1e-15
    print(f"max |by hand - {name}| < {tolerance:.0e}: {np.abs(by_hand - other).max() < tolerance}")
assert np.allclose(by_hand, library, rtol=0, atol=1e-15)
assert np.allclose(by_hand, torch_grad, rtol=0, atol=1e-15)
assert np.allclose(by_hand, numeric, rtol=0, atol=1e-9)
assert not by_hand[0].any()  # the ignored sample gets no gradient

# %% [markdown]
# ## Every gradient row sums to zero
#
# $\sum_c (p_c - \text{onehot}_c) = 1 - 1 = 0$, and the smoothing part sums to
# $W \cdot 1 - W = 0$ too. Adding the same constant to every logit of a row
# does not change the softmax, so it cannot change the loss: the gradient has
# no component along $(1, 1, \dots, 1)$. Each row pushes the true class's
# logit up and the others down by the same total amount.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.25
for c in range(3):
    ax.bar(np.arange(4) + (c - 1) * width, by_hand[:, c], width, label=f"d L / d x[:, {c}]")
ax.plot(np.arange(4), by_hand.sum(axis=1), "k*", markersize=12, label="row sum")
ax.axhline(0, color="gray", linewidth=0.8)
ax.set_xticks(np.arange(4), [f"sample {i}\nlabel {t}" + (" (ignored)" if t == 2 else "")
                             for i, t in enumerate(labels)])
ax.set_ylabel("gradient")
ax.legend(fontsize=8)
ax.set_title("Gradient rows of the 4x3 example: each sums to zero")
plt.show()

print("largest |row sum| < 1e-16:", np.abs(by_hand.sum(axis=1)).max() < 1e-16)
assert np.abs(by_hand.sum(axis=1)).max() < 1e-16

# %% [markdown]
# ## Label smoothing and weights together
#
# The 3x2 example of document 001 with `weight=[1, 2]` and document 003's
# smoothing $\varepsilon = 0.1$: still probabilities minus (smoothed, weighted)
# targets, and the rows still sum to zero.

# %%
logits3 = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels3 = np.array([0, 1, 0])
options3 = {"weight": [1.0, 2.0], "label_smoothing": 0.1}
smooth_hand = hand_grad(logits3, labels3, **options3)
smooth_torch = decode_array(torch_cases["3x2 weight label_smoothing"]["grad"])
smooth_numeric = central_differences(
    lambda z: float(xr.cross_entropy(z, labels3, **options3)), logits3)
print(smooth_hand)
print("max |by hand - PyTorch| < 1e-15:", np.abs(smooth_hand - smooth_torch).max() < 1e-15)
assert np.allclose(smooth_hand, xr.cross_entropy_grad(logits3, labels3, **options3), atol=1e-15)
assert np.allclose(smooth_hand, smooth_torch, rtol=0, atol=1e-15)
assert np.allclose(smooth_hand, smooth_numeric, rtol=0, atol=1e-9)
assert np.abs(smooth_hand.sum(axis=1)).max() < 1e-16

# %% [markdown]
# ## Segmentation: `(N, C, H, W)` with `ignore_index=255`
#
# The same formula per pixel, with the class axis at position 1. PyTorch's
# gradient for a `(2, 3, 4, 4)` input (stored with its inputs) matches the
# library's, and the ignored pixels get exactly zero.

# %%
seg = torch_cases["segmentation ignore 255"]
seg_logits, seg_labels = decode_array(seg["input"]), decode_array(seg["target"])
seg_library = xr.cross_entropy_grad(seg_logits, seg_labels, ignore_index=255)
seg_torch = decode_array(seg["grad"])
ignored = seg_labels == 255
print(f"loss: library {float(xr.cross_entropy(seg_logits, seg_labels, ignore_index=255)):.10f}, "
      f"PyTorch {seg['loss']:.10f}")
print(f"{ignored.sum()} ignored pixels; max |library - PyTorch| < 1e-15: "
      f"{np.abs(seg_library - seg_torch).max() < 1e-15}")
assert np.allclose(seg_library, seg_torch, rtol=0, atol=1e-15)
assert not np.moveaxis(seg_library, 1, -1)[ignored].any()
assert np.abs(seg_library.sum(axis=1)).max() < 1e-16

# %% [markdown]
# ## Binary cross-entropy with logits: sigmoid minus target
#
# With $p = \sigma(x)$, $\ell = -w_{+} y \log p - (1-y)\log(1-p)$ and
# $\sigma'(x) = p(1-p)$:
#
# $$\frac{\partial \ell}{\partial x} = w_{+}\, y\,(p - 1) + (1 - y)\, p,$$
#
# which for $w_{+} = 1$ is just $p - y$. The mean divides by the number of
# elements. Document 004's example with `pos_weight=3`:

# %%
x = np.array([2.0, -1.0, 0.5])
y = np.array([1.0, 0.0, 1.0])
pos_weight = 3.0
p = 1 / (1 + np.exp(-x))
bin_hand = (pos_weight * y * (p - 1) + (1 - y) * p) / len(x)
bin_library = xr.binary_cross_entropy_with_logits_grad(x, y, pos_weight=[pos_weight])
bin_numeric = central_differences(
    lambda z: float(xr.binary_cross_entropy_with_logits(z, y, pos_weight=[pos_weight])), x)
bin_torch = decode_array(torch_cases["binary with logits pos_weight"]["grad"])
print("by hand:", bin_hand, "\nPyTorch:", bin_torch)
assert np.allclose(bin_hand, bin_library, rtol=1e-14, atol=0)
assert np.allclose(bin_hand, bin_torch, rtol=1e-14, atol=0)
assert np.allclose(bin_hand, bin_numeric, rtol=0, atol=1e-9)
assert np.allclose((p - y) / 3, xr.binary_cross_entropy_with_logits_grad(x, y), rtol=1e-14, atol=0)

# %% [markdown]
# ## Binary cross-entropy on probabilities
#
# Differentiating with respect to $p$ instead of $x$ gives
# $\partial \ell / \partial p = (p - y) / (p (1 - p))$: the chain rule's
# $\sigma'(x) = p(1-p)$ is missing, so the gradient blows up as $p$ nears 0 or
# 1. (The library, like PyTorch, keeps the denominator at least $10^{-12}$.)

# %%
bce_case = torch_cases["binary on probabilities"]
probs = decode_array(bce_case["input"])
prob_hand = (probs - y) / (probs * (1 - probs)) / len(y)
prob_library = xr.binary_cross_entropy_grad(probs, y)
print("by hand:", prob_hand)
assert np.allclose(prob_hand, prob_library, rtol=1e-14, atol=0)
assert np.allclose(prob_hand, decode_array(bce_case["grad"]), rtol=1e-14, atol=0)
# chain rule: d/dx = d/dp * p(1-p) is the "sigmoid minus target" above
assert np.allclose(prob_hand * probs * (1 - probs), (probs - y) / 3, rtol=1e-14)

# %% [markdown]
# The last plot compares the two: with respect to the logit the gradient is
# bounded by $w_{+}$ (for $y = 1$) and 1 (for $y = 0$), so a confident mistake
# gets a firm but finite push; with respect to the probability it grows
# without bound.

# %%
xs = np.linspace(-8, 8, 321)
ones, zeros = np.ones_like(xs), np.zeros_like(xs)
n = len(xs)  # undo the mean to plot per-element gradients
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(xs, n * xr.binary_cross_entropy_with_logits_grad(xs, ones), label="y = 1")
left.plot(xs, n * xr.binary_cross_entropy_with_logits_grad(xs, zeros), label="y = 0")
left.plot(xs, n * xr.binary_cross_entropy_with_logits_grad(xs, ones, pos_weight=[3.0]),
          label="y = 1, pos_weight = 3")
left.set_xlabel("logit x")
left.set_ylabel("d loss / d x")
left.legend(fontsize=8)
left.set_title("w.r.t. the logit: sigmoid(x) - y")
ps = 1 / (1 + np.exp(-xs))
right.plot(ps, n * xr.binary_cross_entropy_grad(ps, ones), label="y = 1")
right.plot(ps, n * xr.binary_cross_entropy_grad(ps, zeros), label="y = 0")
right.set_yscale("symlog", linthresh=1)
right.set_xlabel("probability p")
right.set_ylabel("d loss / d p")
right.legend(fontsize=8)
right.set_title("w.r.t. the probability: (p - y) / (p (1 - p))")
plt.show()

logit_grads = n * xr.binary_cross_entropy_with_logits_grad(xs, ones, pos_weight=[3.0])
print(f"largest |d/dx| with pos_weight 3: {np.abs(logit_grads).max():.6f}")
assert np.abs(logit_grads).max() <= 3.0
