# %% [markdown]
# # 5. Gradients by hand, checked three ways, and put to use
#
# Training needs $\partial \text{loss} / \partial \text{logits}$. For the
# cross-entropy family the answer is short: **probabilities minus targets**,
# scaled by the weights and divided by the same denominator as the loss. This
# notebook derives it, starting from the softmax's Jacobian, writes it in a few
# lines of NumPy, and checks it against (1) the library's `*_grad` functions,
# (2) central finite differences of the library's losses, and (3) values
# computed by PyTorch's autograd, stored in `data/torch_values.json` by
# `scripts/make_notebook_torch_values.py`. The last part uses the gradient: one
# step of gradient descent on a tiny classifier, then a whole training run that
# shows, in numbers, why applying softmax twice slows training.
#
# The examples are the worked examples of document 001,
# "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数", and of document 004,
# "交叉熵损失函数"; the smoothing is that of document 003,
# "PyTorch实现CrossEntropyLoss示例"; the double softmax is the code of document 000,
# "pytorch交叉熵损失详细计算步骤" (notebook 3).
#
# Every comparison prints three things, as in Karpathy's "Becoming a Backprop
# Ninja": whether the two arrays are bit-for-bit equal, whether they are close
# (`np.allclose`), and the largest absolute difference. Where a gradient is
# written out by hand here, it is also compared with `xent_ref.textbook`, the
# library's plain NumPy version of the same formula.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref import textbook

np.set_printoptions(precision=6, suppress=True)

with open("data/torch_values.json", encoding="utf-8") as f:
    stored = json.load(f)
torch_cases = {case["name"]: case for case in stored["cases"]}
print("PyTorch", stored["torch_version"], "values for:", sorted(torch_cases))


def array(case, key):
    """A stored array: {"dtype", "shape", "data": flat row-major values} -> ndarray."""
    entry = case[key]
    return np.array(entry["data"], dtype=entry["dtype"]).reshape(entry["shape"])


def compare(name, ours, reference):
    """Print whether ours equals reference exactly, approximately, and by how much;
    stop the notebook if they are not even approximately equal."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    exact = bool(np.array_equal(ours, reference))
    approx = bool(np.allclose(ours, reference))
    maxdiff = float(np.abs(ours - reference).max())
    print(f"{name:34} | exact: {exact!s:5} | approx: {approx!s:5} | max |diff| = {maxdiff:.1e}")
    assert approx, name


def central_differences(f, x, h=1e-6):
    """Numerical gradient of the scalar f at x, one element at a time."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad

# %% [markdown]
# ## The softmax Jacobian
#
# For one row $p = \operatorname{softmax}(x)$ with $p_i = e^{x_i} / S$ and
# $S = \sum_k e^{x_k}$, the quotient rule gives
#
# $$\frac{\partial p_i}{\partial x_j} = \frac{[i = j]\, e^{x_i}}{S} - \frac{e^{x_i} e^{x_j}}{S^2}
#   = p_i\,([i = j] - p_j), \qquad J = \operatorname{diag}(p) - p\,p^\top.$$
#
# $J$ is symmetric, and each row and column sums to $p_i - p_i \sum_j p_j = 0$:
# adding a constant to every logit does not move the probabilities. Its diagonal
# $p_i (1 - p_i)$ is positive (raising $x_i$ raises $p_i$), every other entry
# $-p_i p_j$ is negative (raising $x_j$ takes probability from every other class).

# %%
x = np.array([2.0, 1.0, 0.1, -1.0])
p = xr.softmax(x)
J = np.diag(p) - np.outer(p, p)
J_numeric = np.stack([central_differences(lambda z: xr.softmax(z)[i], x) for i in range(len(x))])
print("p =", p)
print("J =\n", J)
compare("J vs finite differences", J, J_numeric)
print(f"largest |row sum| = {np.abs(J.sum(axis=1)).max():.1e}, "
      f"largest |J - J^T| = {np.abs(J - J.T).max():.1e}")
assert np.abs(J - J_numeric).max() < 1e-9 and np.abs(J.sum(axis=1)).max() < 1e-16

fig, ax = plt.subplots(figsize=(4.5, 3.8))
image = ax.imshow(J, cmap="RdBu_r", vmin=-np.abs(J).max(), vmax=np.abs(J).max())
for (i, j), value in np.ndenumerate(J):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8)
ax.set_xticks(range(4), [f"x[{j}]" for j in range(4)])
ax.set_yticks(range(4), [f"p[{i}]" for i in range(4)])
ax.set_title("J = diag(p) - p p^T for x = [2, 1, 0.1, -1]", fontsize=10)
fig.colorbar(image, ax=ax, shrink=0.8)
plt.show()

# %% [markdown]
# ## The vector-Jacobian product never forms $J$
#
# Backpropagation does not need $J$ itself, only $g^\top J$ for the gradient
# $g = \partial L / \partial p$ arriving from above. Multiplying out,
#
# $$(g^\top J)_j = \sum_i g_i\, p_i([i = j] - p_j) = p_j g_j - p_j \sum_i g_i p_i
#   = p_j\,\bigl(g_j - \langle g, p\rangle\bigr).$$
#
# One dot product and one elementwise product: $O(C)$ work and memory per row
# instead of the $O(C^2)$ of $J$, which for a language model with $C = 50\,000$
# classes would be 2.5 billion numbers per row. This is what
# `xr.softmax_grad(x, g)` computes.

# %%
g = np.array([0.5, -1.0, 2.0, 0.0])
vjp = p * (g - g @ p)
compare("p * (g - <g, p>) vs g^T J", vjp, g @ J)
compare("p * (g - <g, p>) vs softmax_grad", vjp, xr.softmax_grad(x, g))
compare("p * (g - <g, p>) vs finite diff.", vjp, central_differences(lambda z: g @ xr.softmax(z), x))
assert np.abs(vjp - xr.softmax_grad(x, g)).max() < 1e-15

# %% [markdown]
# Chained with the loss, the VJP gives the result derived below. For
# $\ell = -\log p_t$, the gradient arriving at $p$ is $g = -\text{onehot}(t) / p_t$, so
# $\langle g, p\rangle = -1$ and $p \odot (g + 1) = p - \text{onehot}(t)$: the
# $1/p_t$ cancels against the $p_t$ of the Jacobian.

# %%
t = 0
g_loss = -np.eye(4)[t] / p[t]
compare("VJP of -log p_t vs p - onehot", p * (g_loss - g_loss @ p), p - np.eye(4)[t])
compare("p - onehot vs cross_entropy_grad", p - np.eye(4)[t],
        xr.cross_entropy_grad(x, np.array(t)))

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


# %% [markdown]
# ## The 4x3 example: `weight=[2, 1, 2]`, `ignore_index=2`

# %%
logits = np.array([[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]])
labels = np.array([2, 1, 0, 1])
options = {"weight": np.array([2.0, 1.0, 2.0]), "ignore_index": 2}

by_hand = hand_grad(logits, labels, **options)
library = xr.cross_entropy_grad(logits, labels, **options)
numeric = central_differences(lambda z: float(xr.cross_entropy(z, labels, **options)), logits)
torch_grad = array(torch_cases["4x3 weight ignore_index"], "grad")
print("by hand:\n", by_hand)
compare("by hand vs library", by_hand, library)
compare("by hand vs textbook", by_hand, textbook.cross_entropy_grad(logits, labels, **options))
compare("by hand vs finite differences", by_hand, numeric)
compare("by hand vs PyTorch", by_hand, torch_grad)
assert np.allclose(by_hand, library, rtol=0, atol=1e-15)
assert np.allclose(by_hand, torch_grad, rtol=0, atol=1e-15)
assert np.allclose(by_hand, numeric, rtol=0, atol=1e-9)
assert not by_hand[0].any()  # the ignored sample gets no gradient

# %% [markdown]
# ## The `nll_loss` gradient, and the chain back to the logits
#
# `nll_loss` takes log-probabilities $a = \log p$ and only reads the target's
# entry of each row: $L = \frac{1}{D}\sum_{\text{kept } i} -w_{t_i} a_{i, t_i}$.
# Its gradient is therefore a single number per kept row, $-w_{t_i} / D$ at
# column $t_i$, and zero everywhere else (including the ignored rows):
#
# $$\frac{\partial L}{\partial a_{i,c}} = -\frac{w_{t_i}}{D}\,[c = t_i]\,[t_i \ne \text{ignore\_index}].$$
#
# `cross_entropy` is `nll_loss` of `log_softmax`, so its gradient is this one
# pushed back through log-softmax. The VJP of $a = x - \log\sum_k e^{x_k}$ is
# $g \mapsto g - p \sum_c g_c$ (the same argument as for the softmax above). With
# $\sum_c g_{i,c} = -w_{t_i}/D$ it gives $w_{t_i}(p_i - \text{onehot}(t_i))/D$:
# the cross-entropy gradient, row for row.

# %%
log_probs = xr.log_softmax(logits, axis=1)
weight = np.array(options["weight"])
kept = labels != options["ignore_index"]
D = weight[labels[kept]].sum()
nll_hand = np.zeros_like(log_probs)
nll_hand[np.flatnonzero(kept), labels[kept]] = -weight[labels[kept]] / D
nll_case = torch_cases["nll_loss 4x3 weight ignore_index"]
print("d nll / d log_probs:\n", nll_hand)
compare("by hand vs library", nll_hand, xr.nll_loss_grad(log_probs, labels, **options))
compare("by hand vs textbook", nll_hand, textbook.nll_loss_grad(log_probs, labels, **options))
compare("by hand vs finite differences", nll_hand, central_differences(
    lambda a: float(xr.nll_loss(a, labels, **options)), log_probs))
compare("by hand vs PyTorch", nll_hand, array(nll_case, "grad"))
chained = nll_hand - xr.softmax(logits, axis=1) * nll_hand.sum(axis=1, keepdims=True)
compare("chained through log_softmax vs CE", chained, by_hand)
compare("... vs log_softmax_grad", chained, xr.log_softmax_grad(logits, nll_hand, axis=1))
assert np.array_equal(nll_hand, xr.nll_loss_grad(log_probs, labels, **options))
assert np.allclose(chained, by_hand, rtol=0, atol=1e-15)

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

print(f"largest |row sum| = {np.abs(by_hand.sum(axis=1)).max():.1e}")
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
options3 = {"weight": np.array([1.0, 2.0]), "label_smoothing": 0.1}
smooth_hand = hand_grad(logits3, labels3, **options3)
smooth_torch = array(torch_cases["3x2 weight label_smoothing"], "grad")
smooth_numeric = central_differences(
    lambda z: float(xr.cross_entropy(z, labels3, **options3)), logits3)
print(smooth_hand)
compare("by hand vs library", smooth_hand, xr.cross_entropy_grad(logits3, labels3, **options3))
compare("by hand vs textbook", smooth_hand,
        textbook.cross_entropy_grad(logits3, labels3, **options3))
compare("by hand vs finite differences", smooth_hand, smooth_numeric)
compare("by hand vs PyTorch", smooth_hand, smooth_torch)
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
seg_logits, seg_labels = array(seg, "input"), array(seg, "target")
seg_library = xr.cross_entropy_grad(seg_logits, seg_labels, ignore_index=255)
seg_torch = array(seg, "grad")
ignored = seg_labels == 255
print(f"loss: library {float(xr.cross_entropy(seg_logits, seg_labels, ignore_index=255)):.10f}, "
      f"PyTorch {seg['loss']:.10f}")
print(f"{ignored.sum()} ignored pixels")
compare("library vs PyTorch", seg_library, seg_torch)
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
bin_torch = array(torch_cases["binary with logits pos_weight"], "grad")
print("by hand:", bin_hand)
compare("by hand vs library", bin_hand, bin_library)
compare("by hand vs textbook", bin_hand,
        textbook.binary_cross_entropy_with_logits_grad(x, y, pos_weight=np.array([pos_weight])))
compare("by hand vs finite differences", bin_hand, bin_numeric)
compare("by hand vs PyTorch", bin_hand, bin_torch)
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
probs = array(bce_case, "input")
prob_hand = (probs - y) / (probs * (1 - probs)) / len(y)
prob_library = xr.binary_cross_entropy_grad(probs, y)
print("by hand:", prob_hand)
compare("by hand vs library", prob_hand, prob_library)
compare("by hand vs textbook", prob_hand, textbook.binary_cross_entropy_grad(probs, y))
compare("by hand vs PyTorch", prob_hand, array(bce_case, "grad"))
assert np.allclose(prob_hand, prob_library, rtol=1e-14, atol=0)
assert np.allclose(prob_hand, array(bce_case, "grad"), rtol=1e-14, atol=0)
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

# %% [markdown]
# ## The gradient in use: one step of gradient descent
#
# A tiny classifier: six points in the plane, three classes, and a linear model
# $\text{logits} = X W^\top$, where each row of $X$ is a point with a constant 1
# appended (so the last column of $W$ is a bias). Since
# $\text{logits}_{i,c} = \sum_k W_{c,k} X_{i,k}$, the chain rule gives
#
# $$\frac{\partial L}{\partial W} = \Bigl(\frac{\partial L}{\partial\, \text{logits}}\Bigr)^{\!\top} X,$$
#
# the hand gradient of the loss times the inputs. One step $W \leftarrow W - \eta\,
# \partial L / \partial W$ with $\eta = 0.5$, starting from $W = 0$ (every class
# equally likely, loss $\log 3$):

# %%
points = np.array([[1.0, 2.0], [2.0, 1.5], [-1.0, 1.0], [-2.0, 0.5], [0.0, -1.5], [0.5, -2.0]])
classes = np.array([0, 0, 1, 1, 2, 2])
X = np.hstack([points, np.ones((len(points), 1))])
lr = 0.5


def loss_of(W):
    return float(xr.cross_entropy(X @ W.T, classes))


def grad_of(W):
    return xr.cross_entropy_grad(X @ W.T, classes).T @ X


W0 = np.zeros((3, 3))
dW = grad_of(W0)
W1 = W0 - lr * dW
print("dL/dW =\n", dW)
compare("dL/dW vs finite differences", dW, central_differences(loss_of, W0))
print(f"loss before the step : {loss_of(W0):.6f}   (log 3 = {np.log(3):.6f})")
print(f"loss after the step  : {loss_of(W1):.6f}")
forecast = loss_of(W0) - lr * (dW ** 2).sum()
print(f"first-order forecast : {forecast:.6f}   (loss - lr * |dW|^2: the tangent line)")
assert forecast < loss_of(W1) < 0.6 * loss_of(W0)
assert np.abs(dW - central_differences(loss_of, W0)).max() < 1e-9

# %% [markdown]
# One step removes more than 40% of the loss (the cell checks it). The forecast
# from the gradient alone, the tangent line, is too optimistic: a step of 0.5 is
# not small, and the loss curves upward away from its tangent.
#
# ## Softmax applied twice slows training: the numbers
#
# Notebook 3 showed that document 000's code, `CrossEntropyLoss` applied to
# `softmax(logits)`, has a loss that cannot fall below a floor. Does it also
# train more slowly? Train the same classifier twice from $W = 0$ with the same
# learning rate: once with `cross_entropy(logits)`, once with
# `cross_entropy(softmax(logits))`. The second one's gradient goes through the
# softmax VJP above: first `cross_entropy_grad` at the probabilities, then
# `softmax_grad` back to the logits. Both runs are judged by the same measure,
# the ordinary cross-entropy of their logits.

# %%
def train(double_softmax, steps=300):
    W = np.zeros((3, 3))
    losses, grad_norms = [], []
    for _ in range(steps):
        logits = X @ W.T
        if double_softmax:
            probs = xr.softmax(logits, axis=1)
            dlogits = xr.softmax_grad(logits, xr.cross_entropy_grad(probs, classes), axis=1)
        else:
            dlogits = xr.cross_entropy_grad(logits, classes)
        dW = dlogits.T @ X
        losses.append(float(xr.cross_entropy(logits, classes)))
        grad_norms.append(float(np.linalg.norm(dW)))
        W = W - lr * dW
    return np.array(losses), np.array(grad_norms), W


runs = {"cross_entropy(logits)": train(False), "cross_entropy(softmax(logits))": train(True)}
thresholds = [0.5, 0.2, 0.1, 0.05, 0.02]
print("steps until the cross-entropy of the logits falls below", thresholds)
steps = {}
for name, (losses, grad_norms, W) in runs.items():
    steps[name] = np.array([int(np.argmax(losses < t)) for t in thresholds])
    print(f"  {name:31} {str(steps[name].tolist()):20} loss after {len(losses)} steps: {losses[-1]:.5f}")
slowdown = steps["cross_entropy(softmax(logits))"] / steps["cross_entropy(logits)"]
print("slowdown:", slowdown.round(2))
(right_losses, right_norms, _), (twice_losses, twice_norms, W_twice) = runs.values()
print(f"first gradient norm: {right_norms[0]:.6f} vs {twice_norms[0]:.6f} "
      f"(ratio {twice_norms[0] / right_norms[0]:.6f})")
# the losses fall monotonically, so the gradient norm at a given loss level interpolates
at_level = {name: np.interp(thresholds, losses[::-1], norms[::-1])
            for name, (losses, norms, _) in runs.items()}
norm_ratio = at_level["cross_entropy(softmax(logits))"] / at_level["cross_entropy(logits)"]
print("gradient norm at those loss levels, double softmax / right:", norm_ratio.round(2))
floor3 = np.log1p(2 / np.e)
own = float(xr.cross_entropy(xr.softmax(X @ W_twice.T, axis=1), classes))
print(f"the double-softmax run's own loss after 300 steps: {own:.5f} "
      f"(its floor log(1 + 2/e) = {floor3:.5f})")
assert all(np.diff(right_losses) < 0) and all(np.diff(twice_losses) < 0)
assert all((twice_losses >= right_losses)[1:]) and all((1.5 < slowdown) & (slowdown < 2.5))
assert np.isclose(twice_norms[0] / right_norms[0], 1 / 3, rtol=1e-12)
assert all((0.5 < norm_ratio) & (norm_ratio < 0.65))

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (losses, grad_norms, _) in runs.items():
    left.plot(losses, label=name)
    right.plot(losses, grad_norms, label=name)
left.set_yscale("log")
left.set_xlabel("step")
left.set_ylabel("cross_entropy(logits)")
left.set_title("Same model, same learning rate")
left.legend(fontsize=8)
right.set_xscale("log")
right.set_yscale("log")
right.invert_xaxis()
right.set_xlabel("cross_entropy(logits)  (training goes right)")
right.set_ylabel("|dL/dW|")
right.set_title("Gradient norm at the same loss")
plt.show()

# %% [markdown]
# The first gradient of the double-softmax run is exactly a third of the right
# one. At $W = 0$ the probabilities are uniform, $p = 1/3$, so the softmax of
# $p$ is uniform too and the gradient arriving at the probabilities equals the
# right run's $p - \text{onehot}$; the softmax VJP then multiplies a vector whose
# entries sum to zero by $p_j = 1/3$. With $C$ classes the factor is $1/C$.
# Later, at every loss level the double-softmax gradient stays smaller than the
# right one (right plot; the printed ratios are 0.5 to 0.65). Every gradient it
# gets has passed through the Jacobian $\operatorname{diag}(p) - pp^\top$, whose
# entries are at most $1/4$ in size and which shrinks toward zero as the
# predictions grow confident. Smaller steps, slower training: here it needs
# between 1.5 and 2.5 times as many steps to reach each loss
# level (the cell checks this range). Pass raw logits to `cross_entropy`.
