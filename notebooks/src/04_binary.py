# %% [markdown]
# # 4. Binary cross-entropy: probabilities or logits
#
# Document 004, "交叉熵损失函数" (The cross-entropy loss function), presents two
# PyTorch losses for two-class problems: `BCELoss`, which takes probabilities
# (you apply the sigmoid yourself), and `BCEWithLogitsLoss`, which takes raw
# logits and is "numerically stable". This notebook replays its example, adds
# `pos_weight`, and shows with two plots what "stable" means: where the
# probability form breaks and the `-100` clamp that keeps it finite.
#
# For one element with label $y \in [0, 1]$ and probability $p$ of class 1:
#
# $$\ell = -\left[\, y \log p + (1 - y) \log(1 - p) \,\right].$$

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref import textbook
from xent_ref.explain import explain

np.set_printoptions(precision=8, suppress=True)

# %% [markdown]
# ## Document 004's example
#
# Logits `[2.0, -1.0, 0.5]`, labels `[1, 0, 1]`. The document's comment gives
# the sigmoids as `tensor([0.8808, 0.2689, 0.6225])`. A sigmoid is a two-class
# softmax over the logits $(0, x)$, so the library's `softmax` computes it.

# %%
logits = np.array([2.0, -1.0, 0.5])
labels = np.array([1.0, 0.0, 1.0])
probs = xr.softmax(np.stack([np.zeros_like(logits), logits], axis=-1), axis=-1)[:, 1]
print("document 004:", [0.8808, 0.2689, 0.6225])
print("exact       :", probs)
assert np.allclose(probs.round(4), [0.8808, 0.2689, 0.6225], rtol=0, atol=1e-12)
assert np.allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-15)

# %%
bce = xr.binary_cross_entropy(probs, labels)
bce_logits = xr.binary_cross_entropy_with_logits(logits, labels)
print(f"BCELoss(sigmoid(x))  : {float(bce):.10f}")
print(f"BCEWithLogitsLoss(x) : {float(bce_logits):.10f}")
assert np.isclose(bce, bce_logits, rtol=1e-15)
assert round(float(bce), 7) == 0.3047556
# the same two losses as their formulas read (xent_ref.textbook)
print(f"textbook, both forms : {float(textbook.binary_cross_entropy(probs, labels)):.10f}, "
      f"{float(textbook.binary_cross_entropy_with_logits(logits, labels)):.10f}")
assert np.isclose(textbook.binary_cross_entropy(probs, labels), bce, rtol=1e-15)
assert np.isclose(textbook.binary_cross_entropy_with_logits(logits, labels), bce, rtol=1e-15)

# %% [markdown]
# The document prints these losses but not their values; both are
# 0.3047556. `explain` shows the three terms: for $y = 1$ the term is
# $-\log p$, for $y = 0$ it is $-\log(1 - p)$, written `-log p(y)` in the table.

# %%
print(explain("binary_cross_entropy", probs, labels))

# %% [markdown]
# ## `pos_weight`
#
# The document's imbalance example sets `pos_weight = 3`: the positive term is
# multiplied by 3, the negative term is left alone, and the mean still divides
# by the number of elements:
#
# $$\ell = -\left[\, w_{+}\, y \log p + (1 - y) \log(1 - p) \,\right].$$

# %%
ex = explain("binary_cross_entropy_with_logits", logits, labels, pos_weight=[3.0])
print(ex)
by_hand = (3 * ex.rows[0].neg_log_prob + ex.rows[1].neg_log_prob + 3 * ex.rows[2].neg_log_prob) / 3
print(f"\n(3 * l0 + l1 + 3 * l2) / 3 = {by_hand:.10f}")
assert np.isclose(ex.value, by_hand, rtol=1e-15) and ex.denominator == 3
assert round(ex.value, 7) == 0.7054256

# %% [markdown]
# ## The `-100` clamp
#
# With probabilities, $p = 0$ and $y = 1$ would give $-\log 0 = \infty$.
# PyTorch clamps each log at $-100$ instead, so a hopeless prediction costs
# exactly 100, and so does every $p$ below $e^{-100} \approx 3.7 \times 10^{-44}$.

# %%
tiny = np.array([0.0, 1e-50, 1e-44, 1e-43, 1e-10])
clamped = xr.binary_cross_entropy(tiny, np.ones_like(tiny), reduction="none")
for p, loss in zip(tiny, clamped):
    print(f"p = {p:7.0e}  ->  loss {loss:.6f}")
assert list(clamped[:3]) == [100.0, 100.0, 100.0] and clamped[3] < 100

# %% [markdown]
# ## Why the logits form is stable
#
# In the logits form the loss is written with the softplus
# $\operatorname{sp}(z) = \log(1 + e^z)$:
#
# $$\ell = w_{+}\, y\, \operatorname{sp}(-x) + (1 - y)\, \operatorname{sp}(x),$$
#
# and softplus is computed without ever forming $1 - p$. The probability form
# must first round $p = \sigma(x)$ to a float. For a negative sample ($y = 0$)
# with a large logit, $p$ rounds to exactly 1 once $x$ passes about 36.7 in
# float64 (about 17 in float32), $\log(1 - p)$ becomes $\log 0$, and only the clamp
# keeps the loss finite, at the wrong value 100. The true loss keeps growing
# like $x$.

# %%
x = np.linspace(0, 120, 601)
zeros = np.zeros_like(x)
with_logits = xr.binary_cross_entropy_with_logits(x, zeros, reduction="none")
sigmoid = 1 / (1 + np.exp(-x))
on_probs64 = xr.binary_cross_entropy(sigmoid, zeros, reduction="none")
on_probs32 = xr.binary_cross_entropy(sigmoid.astype(np.float32), zeros.astype(np.float32),
                                     reduction="none")

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(x, with_logits, label="BCEWithLogits(x): softplus(x)", linewidth=3, alpha=0.5)
ax.plot(x, on_probs64, "--", label="BCE(sigmoid(x)), float64")
ax.plot(x, on_probs32, ":", label="BCE(sigmoid(x)), float32")
ax.axhline(100, color="gray", linewidth=0.8)
ax.set_xlabel("logit x of a negative sample (y = 0)")
ax.set_ylabel("loss")
ax.legend()
ax.set_title("The probability form saturates where sigmoid(x) rounds to 1")
plt.show()

break64 = x[np.argmax(sigmoid == 1.0)]
break32 = x[np.argmax(sigmoid.astype(np.float32) == 1.0)]
print(f"sigmoid(x) rounds to 1 from x = {break64:g} (float64), {break32:g} (float32)")
print(f"at x = 60: logits form {with_logits[300]:.6f}, probability form {on_probs64[300]:.6f}")
assert 36 < break64 < 38 and 16 < break32 < 18
assert np.allclose(with_logits[x >= 10], x[x >= 10], rtol=1e-5)  # softplus(x) ~ x
assert on_probs64[300] == 100.0

# %% [markdown]
# ## The loss as a function of the logit
#
# For a positive sample the loss is $\operatorname{sp}(-x)$, for a negative one
# $\operatorname{sp}(x)$: mirror images. `pos_weight` scales only the positive
# curve, which is how it tells the model that a missed positive costs more
# than a false alarm.

# %%
x = np.linspace(-6, 6, 241)
ones, zeros = np.ones_like(x), np.zeros_like(x)
curves = {
    "y = 1": xr.binary_cross_entropy_with_logits(x, ones, reduction="none"),
    "y = 0": xr.binary_cross_entropy_with_logits(x, zeros, reduction="none"),
    "y = 1, pos_weight = 3": xr.binary_cross_entropy_with_logits(
        x, ones, pos_weight=[3.0], reduction="none"),
}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, values in curves.items():
    ax.plot(x, values, label=name)
ax.set_xlabel("logit x")
ax.set_ylabel("loss")
ax.legend()
ax.set_title("Binary cross-entropy with logits")
plt.show()

assert np.allclose(curves["y = 1"], curves["y = 0"][::-1], rtol=1e-15)
assert np.allclose(curves["y = 1, pos_weight = 3"], 3 * curves["y = 1"], rtol=1e-15)
print(f"at x = 0 every unweighted curve is log 2 = {curves['y = 1'][120]:.7f}")
