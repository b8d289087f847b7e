# %% [markdown]
# # 2. The cross-entropy worked examples, replayed exactly
#
# Document 001, "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数" (On the
# weight and ignore_index parameters of nn.CrossEntropyLoss), works five small
# examples by hand and with PyTorch. Its hand calculations use probabilities
# rounded to 4 places, so its figures drift from the exact values in the 4th
# or 5th digit, and one of them has an arithmetic slip. Here each example is
# rebuilt from the softmax table up, the rounded hand calculation is replayed
# beside the exact one, and the last step is the library call.
#
# The same replays print in a terminal with `uv run xent-ref examples`.

# %%
import numpy as np

import xent_ref as xr
from xent_ref.explain import explain

np.set_printoptions(precision=7, suppress=True)

logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels = np.array([0, 1, 0])

# %% [markdown]
# ## Step 1: the softmax table
#
# Three samples, two classes. Each row of probabilities is the softmax of a
# row of logits (notebook 1); the loss only looks at the probability of each
# sample's true class.

# %%
probs = xr.softmax(logits, axis=1)
p_true = probs[np.arange(len(labels)), labels]
print("softmax table:\n", probs)
print("p(true class):", p_true)
print("rounded to 4 places, as the document writes them:", p_true.round(4))

# %% [markdown]
# ## Example 1: the plain mean (document: 0.6406)
#
# $$\text{loss} = \frac{1}{N} \sum_i -\log p_{i, t_i}$$
#
# The document computes `-(ln0.69 + ln0.3543 + ln0.5987) / 3 = 0.6406`.

# %%
def hand(p_rounded, weights):
    """The document's method: weighted mean of -ln of rounded probabilities."""
    return float((weights * -np.log(p_rounded)).sum() / weights.sum())


by_hand = hand(p_true.round(4), np.ones(3))
exact = float(xr.cross_entropy(logits, labels))
print(f"document (by hand)      : 0.6406")
print(f"hand method, replayed   : {by_hand:.7f}")
print(f"exact                   : {exact:.7f}")
assert round(by_hand, 4) == 0.6406 and round(exact, 7) == 0.6405346

# %% [markdown]
# The document's figure is right for its rounded inputs; the exact value
# rounds to 0.6405. Rounding 0.3543437 down to 0.3543 alone raises that
# sample's $-\log p$ by about $1.2 \times 10^{-4}$.
#
# `explain` shows every number of the same call: the rows, the numerator, the
# denominator, and the library's result (which it checks equals their ratio).

# %%
explain(xr.cross_entropy, logits, labels)

# %% [markdown]
# ## Example 2: `ignore_index=1` (document: 0.4421)
#
# A target equal to `ignore_index` leaves the numerator *and* the denominator:
# the mean is over the 2 kept samples, not 3.

# %%
ex = explain("cross_entropy", logits, labels, ignore_index=1)
print(ex)
replayed = hand(p_true[[0, 2]].round(4), np.ones(2))
print(f"\ndocument: PyTorch 0.4421, hand '(-ln0.69-ln0.5987)/2 = 0.4421'")
print(f"hand method, replayed: {replayed:.7f}   exact: {ex.value:.7f}")
assert ex.denominator == 2 and round(ex.value, 7) == 0.4420580
assert round(replayed, 4) == 0.4420  # the hand line really gives 0.4420

# %% [markdown]
# PyTorch's 0.4421 is the exact value rounded. The document's own hand line,
# with its rounded probabilities, gives 0.44203, which rounds to 0.4420: the
# "= 0.4421" at its end repeats PyTorch's figure.
#
# ## Example 3: `weight=[1, 2]` (document: PyTorch 0.7398, hand 0.7396)
#
# With class weights $w$ the mean is a weighted mean:
#
# $$\text{loss} = \frac{\sum_i w_{t_i} \cdot (-\log p_{i,t_i})}{\sum_i w_{t_i}}.$$
#
# The denominator is the sum of the targets' weights, $1 + 2 + 1 = 4$.

# %%
w = np.array([1.0, 2.0])
ex = explain("cross_entropy", logits, labels, weight=w)
print(ex)
doc_terms = np.array([0.3711, 2.0741, 0.5130])  # the document's three terms
our_terms = (w[labels] * -np.log(p_true.round(4))).round(4)
print("\ndocument's terms   :", doc_terms, f"-> {doc_terms.sum() / 4:.6f}")
print("same terms, redone :", our_terms, f"-> {our_terms.sum() / 4:.6f}")
print(f"exact              : {ex.value:.7f}")
assert round(ex.value, 7) == 0.7397730 and ex.denominator == 4
assert abs(doc_terms.sum() / 4 - 0.73955) < 1e-12  # which the document rounds up to 0.7396
assert round(our_terms.sum() / 4, 4) == 0.7398

# %% [markdown]
# The document blames rounding for its 0.7396, but rounding alone gives 0.7398.
# The slip is the middle term: $2 \times (-\ln 0.3543) = 2.0752$, not 2.0741.
#
# ## Example 4: `weight=[2, 1]` (document: "the loss will be lower")
#
# Weighting the class whose samples are already well fitted pulls the weighted
# mean toward their small losses.

# %%
losses = {
    "weight=[2, 1]": float(xr.cross_entropy(logits, labels, weight=[2.0, 1.0])),
    "no weight": float(xr.cross_entropy(logits, labels)),
    "weight=[1, 2]": float(xr.cross_entropy(logits, labels, weight=[1.0, 2.0])),
}
for name, value in losses.items():
    print(f"{name:14} {value:.7f}")
assert losses["weight=[2, 1]"] < losses["no weight"] < losses["weight=[1, 2]"]

# %% [markdown]
# ## Example 5: 4x3 logits, `weight=[2, 1, 2]`, `ignore_index=2` (document: 1.0401, hand 1.0400175)
#
# Both options at once. The first sample's label is 2, so it is ignored, and
# its class weight 2 appears nowhere. The kept samples have labels 1, 0, 1 with
# weights 1, 2, 1: the denominator is 4.

# %%
logits4 = np.array([[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]])
labels4 = np.array([2, 1, 0, 1])
ex = explain("cross_entropy", logits4, labels4, weight=[2.0, 1.0, 2.0], ignore_index=2)
ex

# %%
kept = labels4 != 2
p4 = xr.softmax(logits4, axis=1)[np.arange(4), labels4]
w4 = np.array([2.0, 1.0, 2.0])[labels4]
replayed = hand(p4[kept].round(4), w4[kept])
print("document's rounded p :", p4[kept].round(4))
print("document (by hand)   : 1.0400175")
print(f"hand method, replayed: {replayed:.7f}")
print(f"exact                : {ex.value:.7f}  (numerator {ex.numerator:.7f} / denominator {ex.denominator:g})")
assert round(ex.value, 7) == 1.0400556 and ex.denominator == 4
assert abs(replayed - 1.0400175) < 1e-6
assert [row.kept for row in ex.rows] == [False, True, True, True]

# %% [markdown]
# This time the hand arithmetic is right; the whole difference,
# $3.8 \times 10^{-5}$, comes from rounding the probabilities to 4 places.
#
# ## Summary
#
# | example | document | exact (xent_ref) | why they differ |
# |---|---|---|---|
# | plain | 0.6406 | 0.6405346 | probabilities rounded to 4 places |
# | `ignore_index=1` | 0.4421 | 0.4420580 | agree (PyTorch's rounding); the hand line gives 0.4420 |
# | `weight=[1, 2]` | 0.7398 / hand 0.7396 | 0.7397730 | a slip: 2 x 1.0376 = 2.0752, not 2.0741 |
# | `weight=[2, 1]` | "lower" | 0.5611440 | - |
# | 4x3 | 1.0401 / hand 1.0400175 | 1.0400556 | probabilities rounded to 4 places |
#
# The table's exact column is checked by the cell below, so it cannot go stale.

# %%
table = {
    0.6405346: xr.cross_entropy(logits, labels),
    0.4420580: xr.cross_entropy(logits, labels, ignore_index=1),
    0.7397730: xr.cross_entropy(logits, labels, weight=[1.0, 2.0]),
    0.5611440: xr.cross_entropy(logits, labels, weight=[2.0, 1.0]),
    1.0400556: xr.cross_entropy(logits4, labels4, weight=[2.0, 1.0, 2.0], ignore_index=2),
}
for shown, value in table.items():
    assert round(float(value), 7) == shown, (shown, value)
print("all five exact figures confirmed")
