# %% [markdown]
# <!-- en -->
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
# `reduction='none'` returns an `(N, C)` matrix. This notebook also exists in
# Chinese, `zh/03_targets.ipynb`, built from the same source.
# <!-- zh -->
# # 3. 目标的几种形式：类别下标、one-hot、概率、标签平滑
#
# `cross_entropy` 接受两种形式的目标，而源文档把它们混在一起的方式很有启发性。本笔记本把这几种形式
# 并排放在一起，说明它们什么时候给出相同的损失、什么时候不同，重放文档 003《PyTorch实现CrossEntropyLoss示例》
# 中的标签平滑，并纠正两个错误：文档 000《pytorch交叉熵损失详细计算步骤》在 `CrossEntropyLoss` 之前先做了
# softmax；文档 001《关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数》下面引用的一篇"相关文章"
# 说 `reduction='none'` 返回一个 `(N, C)` 矩阵。本笔记本与英文版 `../03_targets.ipynb` 由同一个源文件生成。

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref import explain

np.set_printoptions(precision=7, suppress=True)

LANG = _("nb.lang")


logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels = np.array([0, 1, 0])

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## 下标、one-hot、概率
#
# * **类别下标**：形状为 `(N,)`（或 `(N, d1, ...)`）的整数目标，每个样本一个类别。这是最常见的形式。
# * **概率**：与*输入形状相同*的浮点目标；每一行是类别上的一个分布，损失为 $-\sum_c y_c \log p_c$
#   （文档 002《Softmax损失函数计算详解》就是这样写的）。one-hot 行是其中只有一个 1 的特例。
#
# 不带权重时，两种形式给出相同的损失：

# %%
one_hot = np.eye(2)[labels]  # floating point: read as probabilities
by_index = xr.cross_entropy(logits, labels)
by_probs = xr.cross_entropy(logits, one_hot)
print(_("nb.03.index_targets") + f"{float(by_index):.7f}")
print(_("nb.03.one_hot_as_probs") + f"{float(by_probs):.7f}")
assert np.isclose(by_index, by_probs, rtol=1e-15)

# %% [markdown]
# <!-- en -->
# An *integer* one-hot array is neither form: it has the input's shape, so it
# is not a list of indices, and it is not floating point, so it is not a list
# of distributions. Document 004, "交叉熵损失函数" (The cross-entropy loss
# function), marks that target as wrong, and the library refuses it with an
# error that names the argument:
# <!-- zh -->
# *整数*类型的 one-hot 数组两种形式都不是：它与输入形状相同，所以不是下标列表；它又不是浮点数，所以也不是
# 分布列表。文档 004《交叉熵损失函数》把这种目标标为错误，库会拒绝它，并在错误信息里指明是哪个参数：

# %%
try:
    xr.cross_entropy(logits, np.eye(2, dtype=np.int64)[labels])
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("an integer one-hot target must be refused")

# %% [markdown]
# <!-- en -->
# ### With class weights the two forms part ways
#
# Index targets divide by the sum of the targets' weights; probability targets
# divide by the number of samples $N$, whatever the weights. The numerators
# agree (one-hot rows pick one weighted term each), the denominators do not:
# <!-- zh -->
# ### 带类别权重时，两种形式就分道扬镳了
#
# 下标目标除以各目标权重之和；概率目标不管权重如何，都除以样本数 $N$。分子相同（one-hot 行各自取出一个
# 加权项），分母不同：

# %%
w = [1.0, 2.0]
ex_index = explain("cross_entropy", logits, labels, weight=w)
ex_probs = explain("cross_entropy", logits, one_hot, weight=w)
for name, ex in ((_("nb.03.index_targets_2"), ex_index),
                 (_("nb.03.one_hot_probabilities"), ex_probs)):
    print(f"{name:22} {ex.numerator:.7f} / {ex.denominator:g} = {ex.value:.7f}")
assert np.isclose(ex_index.numerator, ex_probs.numerator, rtol=1e-15)
assert (ex_index.denominator, ex_probs.denominator) == (4.0, 3.0)

# %% [markdown]
# <!-- en -->
# ## Label smoothing (document 003)
#
# Label smoothing replaces the one-hot target $y$ by
# $(1 - \varepsilon) y + \varepsilon / K$. With $\varepsilon = 0.1$ and $K = 10$
# classes, the document's numbers: the true class gets $0.9 + 0.01 = 0.91$,
# every other class $0.01$.
# <!-- zh -->
# ## 标签平滑（文档 003）
#
# 标签平滑把 one-hot 目标 $y$ 换成 $(1 - \varepsilon) y + \varepsilon / K$。取 $\varepsilon = 0.1$、
# $K = 10$ 个类别，就是文档里的数字：真实类别得到 $0.9 + 0.01 = 0.91$，其余每个类别 $0.01$。

# %%
eps, K = 0.1, 10
targets = np.array([2, 5])  # the document's example targets
smoothed = (1 - eps) * np.eye(K)[targets] + eps / K
print(smoothed)
assert np.isclose(smoothed[0, 2], 0.91) and np.isclose(smoothed[0, 0], 0.01)
assert np.allclose(smoothed.sum(axis=1), 1.0)

# %% [markdown]
# <!-- en -->
# Document 003's loss class ends with `(-targets * log_probs).mean(0).sum()`:
# the smoothed cross-entropy of each sample, averaged over the batch (the
# mean over axis 0 and the sum over classes commute). The document draws its
# logits at random; we fix them, and compare its formula with
# `label_smoothing=0.1` and with the smoothed rows passed as probabilities.
# <!-- zh -->
# 文档 003 的损失类最后一步是 `(-targets * log_probs).mean(0).sum()`：每个样本的平滑交叉熵，再在批次上
# 求平均（对第 0 轴求平均与对类别求和可以交换次序）。文档的 logits 是随机生成的；这里把它们固定下来，
# 拿它的公式与 `label_smoothing=0.1`、以及把平滑后的行当作概率传入这两种做法比较。

# %%
rng = np.random.default_rng(3)
logits10 = rng.normal(size=(2, K)).round(2)
log_probs = xr.log_softmax(logits10, axis=1)
document_003 = (-smoothed * log_probs).mean(0).sum()
library = xr.cross_entropy(logits10, targets, label_smoothing=eps)
as_probs = xr.cross_entropy(logits10, smoothed)
print(_("nb.03.document_003_s_formula")
      + f"{document_003:.10f}")
print(f"cross_entropy(label_smoothing)  : {float(library):.10f}")
print(_("nb.03.cross_entropy_smoothed_as_probs")
      + f"{float(as_probs):.10f}")
assert np.isclose(document_003, library, rtol=1e-14, atol=0)
assert np.isclose(as_probs, library, rtol=1e-14, atol=0)

# %% [markdown]
# <!-- en -->
# Why they agree: $\sum_c y_c (-\log p_c) = (1-\varepsilon)(-\log p_t) +
# \frac{\varepsilon}{K} \sum_c (-\log p_c)$. `explain` shows both parts per
# sample: `-log p` and the smoothing term `smooth` $= -\sum_c \log p_c$.
# <!-- zh -->
# 它们为什么一致：$\sum_c y_c (-\log p_c) = (1-\varepsilon)(-\log p_t) +
# \frac{\varepsilon}{K} \sum_c (-\log p_c)$。`explain` 逐个样本列出这两部分：`-log p` 和平滑项
# `smooth` $= -\sum_c \log p_c$。

# %%
print(explain("cross_entropy", logits10, targets, label_smoothing=eps).to_text(lang=LANG))

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## 错误 1：softmax 做了两次（文档 000）
#
# 文档 000 的第二段代码先算 `probs = torch.softmax(logits)`，再把 `probs` 连同用 `scatter_` 构造的
# one-hot 目标交给 `CrossEntropyLoss`。但 `CrossEntropyLoss` 自己会做 log-softmax，于是概率又经过了一次
# softmax。概率都在 $[0, 1]$ 之内，对彼此这么接近的数做 softmax 几乎是均匀的，所以损失永远不可能接近 0。
# 对两个类别，即使是完全自信且正确的预测（$p = (1, 0)$），得分也是
# $-\log \operatorname{softmax}(1, 0)_0 = \log(1 + e^{-1}) \approx 0.3133$。

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

print(_("nb.03.margin_12_right_softmax_twice"))
assert right[-1] < 1e-5 and twice.min() > floor - 1e-12

# %% [markdown]
# <!-- en -->
# The double softmax also shrinks the gradient: every gradient passes through
# the softmax's Jacobian on its way back to the logits. Notebook 5 trains the
# same tiny classifier both ways and measures the cost in steps. Pass raw logits.
#
# ## Mistake 2: `reduction='none'` returns one loss per sample
#
# The related article under document 001 says that `reduction='none'` returns
# a `(batch_size, num_classes)` matrix, "the loss of every class of every
# sample". It returns one number per *target*: shape `(N,)` for `(N, C)` input.
# <!-- zh -->
# 两次 softmax 还会让梯度变小：每个梯度在传回 logits 的路上都要穿过 softmax 的雅可比矩阵。笔记本 5
# 用两种方式训练同一个小分类器，并以步数衡量这个代价。请传入原始 logits。
#
# ## 错误 2：`reduction='none'` 每个样本返回一个损失
#
# 文档 001 下面的相关文章说 `reduction='none'` 返回一个 `(batch_size, num_classes)` 矩阵，即"每个样本
# 每个类别的损失"。实际上它为每个*目标*返回一个数：输入为 `(N, C)` 时形状是 `(N,)`。

# %%
per_sample = xr.cross_entropy(logits, labels, reduction="none")
print(_("nb.03.input"), logits.shape, _("nb.03.reduction_none_gives"),
      per_sample.shape)
assert per_sample.shape == (3,)

# %% [markdown]
# <!-- en -->
# ## Segmentation: `(N, C, H, W)` input, `(N, H, W)` target, `ignore_index=255`
#
# Document 001 introduces the loss for segmentation, where every pixel is a
# sample. The class axis is axis 1; the target has no class axis, and the
# value 255 commonly marks pixels to skip (borders, unlabeled regions).
# <!-- zh -->
# ## 语义分割：`(N, C, H, W)` 输入、`(N, H, W)` 目标、`ignore_index=255`
#
# 文档 001 介绍了语义分割中的这个损失，那里每个像素都是一个样本。类别轴是第 1 轴；目标没有类别轴，
# 通常用 255 标记要跳过的像素（边界、未标注区域）。

# %%
rng = np.random.default_rng(7)
seg_logits = rng.normal(size=(2, 3, 4, 4)).round(2)
seg_labels = rng.integers(0, 3, size=(2, 4, 4))
seg_labels[:, 0, :] = 255  # the top row of each image is unlabeled
seg = explain("cross_entropy", seg_logits, seg_labels, ignore_index=255)
print(_("nb.03.per_pixel_losses"), xr.cross_entropy(seg_logits, seg_labels,
                                                          ignore_index=255, reduction="none").shape)
print(_("nb.03.kept_pixels_of_loss"))
assert seg.kept.sum() == 24 and seg.denominator == 24

# %% [markdown]
# <!-- en -->
# The same loss, by flattening: move the class axis last, one row per pixel,
# and drop the ignored rows. This is the "one sample per pixel" view.
# <!-- zh -->
# 同一个损失也可以展平来算：把类别轴移到最后，每个像素一行，去掉被忽略的行。这就是"每个像素一个样本"
# 的视角。

# %%
rows = np.moveaxis(seg_logits, 1, -1).reshape(-1, 3)
flat = seg_labels.reshape(-1)
kept = flat != 255
flattened = xr.cross_entropy(rows[kept], flat[kept])
print(_("nb.03.n_c_h_w_call") + f"{seg.value:.10f}\n"
      + _("nb.03.flattened_rows") + f"{float(flattened):.10f}")
assert np.isclose(flattened, seg.result, rtol=1e-14)
