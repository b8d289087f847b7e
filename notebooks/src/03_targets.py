# %% [markdown]
# # 3. Targets: class indices, one-hot, probabilities, label smoothing
#
# `cross_entropy` accepts its target in two forms, and the source documents
# mix them up in instructive ways. This notebook puts the forms side by side,
# shows where they give the same loss and where they do not, replays the
# label smoothing of document 003, "PyTorch实现CrossEntropyLoss示例" (A PyTorch
# CrossEntropyLoss example), and corrects two mistakes: document 000,
# "pytorch交叉熵损失详细计算步骤", applies softmax before `CrossEntropyLoss`, and
# a "related article" quoted under document 001,
# "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数", says
# `reduction='none'` returns an `(N, C)` matrix.

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref.explain import explain

np.set_printoptions(precision=7, suppress=True)

logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels = np.array([0, 1, 0])

# %% [markdown]
# ## Indices, one-hot, probabilities
#
# * **Class indices**: an integer target of shape `(N,)` (or `(N, d1, ...)`),
#   one class per sample. This is the usual form.
# * **Probabilities**: a floating target with the *same shape as the input*;
#   each row is a distribution over the classes and the loss is
#   $-\sum_c y_c \log p_c$ (document 002, "Softmax损失函数计算详解", writes it
#   this way). A one-hot row is the special case with a single 1.
#
# Without weights the two forms give the same loss:

# %%
one_hot = np.eye(2)[labels]  # floating point: read as probabilities
by_index = xr.cross_entropy(logits, labels)
by_probs = xr.cross_entropy(logits, one_hot)
print(f"index targets      : {float(by_index):.7f}")
print(f"one-hot as probs   : {float(by_probs):.7f}")
assert np.isclose(by_index, by_probs, rtol=1e-15)

# %% [markdown]
# An *integer* one-hot array is neither form: it has the input's shape, so it
# is not a list of indices, and it is not floating point, so it is not a list
# of distributions. Document 004, "交叉熵损失函数" (The cross-entropy loss
# function), marks that target as wrong, and the library refuses it with an
# error that names the argument:

# %%
try:
    xr.cross_entropy(logits, np.eye(2, dtype=np.int64)[labels])
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("an integer one-hot target must be refused")

# %% [markdown]
# ### With class weights the two forms part ways
#
# Index targets divide by the sum of the targets' weights; probability targets
# divide by the number of samples $N$, whatever the weights. The numerators
# agree (one-hot rows pick one weighted term each), the denominators do not:

# %%
w = [1.0, 2.0]
ex_index = explain("cross_entropy", logits, labels, weight=w)
ex_probs = explain("cross_entropy", logits, one_hot, weight=w)
for name, ex in (("index targets", ex_index), ("one-hot probabilities", ex_probs)):
    print(f"{name:22} {ex.numerator:.7f} / {ex.denominator:g} = {ex.value:.7f}")
assert np.isclose(ex_index.numerator, ex_probs.numerator, rtol=1e-15)
assert (ex_index.denominator, ex_probs.denominator) == (4.0, 3.0)

# %% [markdown]
# ## Label smoothing (document 003)
#
# Label smoothing replaces the one-hot target $y$ by
# $(1 - \varepsilon) y + \varepsilon / K$. With $\varepsilon = 0.1$ and $K = 10$
# classes, the document's numbers: the true class gets $0.9 + 0.01 = 0.91$,
# every other class $0.01$.

# %%
eps, K = 0.1, 10
targets = np.array([2, 5])  # the document's example targets
smoothed = (1 - eps) * np.eye(K)[targets] + eps / K
print(smoothed)
assert np.isclose(smoothed[0, 2], 0.91) and np.isclose(smoothed[0, 0], 0.01)
assert np.allclose(smoothed.sum(axis=1), 1.0)

# %% [markdown]
# Document 003's loss class ends with `(-targets * log_probs).mean(0).sum()`:
# the smoothed cross-entropy of each sample, averaged over the batch (the
# mean over axis 0 and the sum over classes commute). The document draws its
# logits at random; we fix them, and compare its formula with
# `label_smoothing=0.1` and with the smoothed rows passed as probabilities.

# %%
rng = np.random.default_rng(3)
logits10 = rng.normal(size=(2, K)).round(2)
log_probs = xr.log_softmax(logits10, axis=1)
document_003 = (-smoothed * log_probs).mean(0).sum()
library = xr.cross_entropy(logits10, targets, label_smoothing=eps)
as_probs = xr.cross_entropy(logits10, smoothed)
print(f"document 003's formula          : {document_003:.10f}")
print(f"cross_entropy(label_smoothing)  : {float(library):.10f}")
print(f"cross_entropy(smoothed as probs): {float(as_probs):.10f}")
assert np.isclose(document_003, library, rtol=1e-14, atol=0)
assert np.isclose(as_probs, library, rtol=1e-14, atol=0)

# %% [markdown]
# Why they agree: $\sum_c y_c (-\log p_c) = (1-\varepsilon)(-\log p_t) +
# \frac{\varepsilon}{K} \sum_c (-\log p_c)$. `explain` shows both parts per
# sample: `-log p` and the smoothing term `smooth` $= -\sum_c \log p_c$.

# %%
print(explain("cross_entropy", logits10, targets, label_smoothing=eps))

# %% [markdown]
# ## Mistake 1: softmax applied twice (document 000)
#
# Document 000's second code block computes `probs = torch.softmax(logits)`
# and passes `probs`, with a one-hot target built by `scatter_`, to
# `CrossEntropyLoss`. But `CrossEntropyLoss` applies
# log-softmax itself, so the probabilities go through softmax a second time.
# Probabilities lie in $[0, 1]$, and the softmax of numbers that close together
# is nearly uniform, so the loss can never approach 0. For two classes, even a
# perfectly confident, correct prediction ($p = (1, 0)$) scores
# $-\log \operatorname{softmax}(1, 0)_0 = \log(1 + e^{-1}) \approx 0.3133$.

# %%
margins = np.linspace(-6, 12, 181)  # logit of the true class minus the other
two_class = np.stack([margins, np.zeros_like(margins)], axis=1)
target0 = np.zeros(len(margins), dtype=np.int64)
right = xr.cross_entropy(two_class, target0, reduction="none")
twice = xr.cross_entropy(xr.softmax(two_class, axis=1), target0, reduction="none")
floor = np.log1p(np.exp(-1.0))

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(margins, right, label="cross_entropy(logits)  (right)")
ax.plot(margins, twice, label="cross_entropy(softmax(logits))  (softmax twice)")
ax.axhline(floor, color="gray", linestyle=":", label=f"floor log(1 + 1/e) = {floor:.4f}")
ax.set_xlabel("logit margin of the true class")
ax.set_ylabel("loss")
ax.set_ylim(0, 3)
ax.legend()
ax.set_title("Softmax before CrossEntropyLoss: the loss cannot go below a floor")
plt.show()

print(f"margin 12: right {right[-1]:.7f}, softmax twice {twice[-1]:.7f}, floor {floor:.7f}")
assert right[-1] < 1e-5 and twice.min() > floor - 1e-12

# %% [markdown]
# The double softmax also shrinks the gradient: every gradient passes through
# the softmax's Jacobian on its way back to the logits. Notebook 5 trains the
# same tiny classifier both ways and measures the cost in steps. Pass raw logits.
#
# ## Mistake 2: `reduction='none'` returns one loss per sample
#
# The related article under document 001 says that `reduction='none'` returns
# a `(batch_size, num_classes)` matrix, "the loss of every class of every
# sample". It returns one number per *target*: shape `(N,)` for `(N, C)` input.

# %%
per_sample = xr.cross_entropy(logits, labels, reduction="none")
print("input", logits.shape, "-> reduction='none' gives", per_sample.shape)
assert per_sample.shape == (3,)

# %% [markdown]
# ## Segmentation: `(N, C, H, W)` input, `(N, H, W)` target, `ignore_index=255`
#
# Document 001 introduces the loss for segmentation, where every pixel is a
# sample. The class axis is axis 1; the target has no class axis, and the
# value 255 commonly marks pixels to skip (borders, unlabeled regions).

# %%
rng = np.random.default_rng(7)
seg_logits = rng.normal(size=(2, 3, 4, 4)).round(2)
seg_labels = rng.integers(0, 3, size=(2, 4, 4))
seg_labels[:, 0, :] = 255  # the top row of each image is unlabeled
seg = explain("cross_entropy", seg_logits, seg_labels, ignore_index=255)
print("per-pixel losses:", xr.cross_entropy(seg_logits, seg_labels, ignore_index=255,
                                            reduction="none").shape)
print(f"kept pixels: {seg.kept.sum()} of {seg.kept.size}, loss {seg.value:.7f}")
assert seg.kept.sum() == 24 and seg.denominator == 24

# %% [markdown]
# The same loss, by flattening: move the class axis last, one row per pixel,
# and drop the ignored rows. This is the "one sample per pixel" view.

# %%
rows = np.moveaxis(seg_logits, 1, -1).reshape(-1, 3)
flat = seg_labels.reshape(-1)
kept = flat != 255
flattened = xr.cross_entropy(rows[kept], flat[kept])
print(f"(N, C, H, W) call: {seg.value:.10f}\nflattened rows   : {float(flattened):.10f}")
assert np.isclose(flattened, seg.result, rtol=1e-14)
