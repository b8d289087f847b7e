# %% [markdown]
# <!-- en -->
# # 4. Binary cross-entropy: probabilities or logits
#
# Document 004, "交叉熵损失函数" (The cross-entropy loss function), presents two
# PyTorch losses for two-class problems: `BCELoss`, which takes probabilities
# (you apply the sigmoid yourself), and `BCEWithLogitsLoss`, which takes raw
# logits and is "numerically stable". This notebook replays its example, adds
# `pos_weight`, and shows with two plots what "stable" means: where the
# probability form breaks and the `-100` clamp that keeps it finite. This
# notebook also exists in Chinese, `zh/04_binary.ipynb`, built from the same source.
#
# For one element with label $y \in [0, 1]$ and probability $p$ of class 1:
#
# $$\ell = -\left[\, y \log p + (1 - y) \log(1 - p) \,\right].$$
# <!-- zh -->
# # 4. 二元交叉熵：用概率还是用 logits
#
# 文档 004《交叉熵损失函数》介绍了 PyTorch 中用于二分类的两个损失：`BCELoss` 接受概率（sigmoid 由你自己
# 做），`BCEWithLogitsLoss` 接受原始 logits，并且"数值上更稳定"。本笔记本重放它的例子，加上 `pos_weight`，
# 再用两幅图说明"稳定"是什么意思：概率形式在哪里失效，以及让它保持有限的 `-100` 截断。本笔记本与英文版
# `../04_binary.ipynb` 由同一个源文件生成。
#
# 对一个标签为 $y \in [0, 1]$、类别 1 的概率为 $p$ 的元素：
#
# $$\ell = -\left[\, y \log p + (1 - y) \log(1 - p) \,\right].$$

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref import textbook
from xent_ref import explain

np.set_printoptions(precision=8, suppress=True)

LANG = _("nb.lang")


# %% [markdown]
# <!-- en -->
# ## Document 004's example
#
# Logits `[2.0, -1.0, 0.5]`, labels `[1, 0, 1]`. The document's comment gives
# the sigmoids as `tensor([0.8808, 0.2689, 0.6225])`. A sigmoid is a two-class
# softmax over the logits $(0, x)$, so the library's `softmax` computes it.
# <!-- zh -->
# ## 文档 004 的例子
#
# logits 为 `[2.0, -1.0, 0.5]`，标签为 `[1, 0, 1]`。文档的注释给出 sigmoid 值
# `tensor([0.8808, 0.2689, 0.6225])`。sigmoid 就是对 logits $(0, x)$ 做的两类 softmax，所以库里的
# `softmax` 就能算它。

# %%
logits = np.array([2.0, -1.0, 0.5])
labels = np.array([1.0, 0.0, 1.0])
probs = xr.softmax(np.stack([np.zeros_like(logits), logits], axis=-1), axis=-1)[:, 1]
print(_("nb.04.document_004"), [0.8808, 0.2689, 0.6225])
print(_("nb.04.exact"), probs)
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
print(_("nb.04.textbook_both_forms")
      + f"{float(textbook.binary_cross_entropy(probs, labels)):.10f}, "
      f"{float(textbook.binary_cross_entropy_with_logits(logits, labels)):.10f}")
assert np.isclose(textbook.binary_cross_entropy(probs, labels), bce, rtol=1e-15)
assert np.isclose(textbook.binary_cross_entropy_with_logits(logits, labels), bce, rtol=1e-15)

# %% [markdown]
# <!-- en -->
# The document prints these losses but not their values; both are
# 0.3047556. `explain` shows the three terms: for $y = 1$ the term is
# $-\log p$, for $y = 0$ it is $-\log(1 - p)$, written `-log p(y)` in the table.
# <!-- zh -->
# 文档打印了这两个损失，但没有给出数值；两者都是 0.3047556。`explain` 列出三项：$y = 1$ 时该项为 $-\log p$，
# $y = 0$ 时为 $-\log(1 - p)$，表中写作 `-log p(y)`。

# %%
print(explain("binary_cross_entropy", probs, labels).to_text(lang=LANG))

# %% [markdown]
# <!-- en -->
# ## `pos_weight`
#
# The document's imbalance example sets `pos_weight = 3`: the positive term is
# multiplied by 3, the negative term is left alone, and the mean still divides
# by the number of elements:
#
# $$\ell = -\left[\, w_{+}\, y \log p + (1 - y) \log(1 - p) \,\right].$$
# <!-- zh -->
# ## 正类权重 `pos_weight`
#
# 文档中类别不平衡的例子设 `pos_weight = 3`：正类项乘以 3，负类项不变，mean 仍然除以元素个数：
#
# $$\ell = -\left[\, w_{+}\, y \log p + (1 - y) \log(1 - p) \,\right].$$

# %%
ex = explain("binary_cross_entropy_with_logits", logits, labels, pos_weight=[3.0])
print(ex.to_text(lang=LANG))
by_hand = (3 * ex.rows[0].neg_log_prob + ex.rows[1].neg_log_prob + 3 * ex.rows[2].neg_log_prob) / 3
print(f"\n(3 * l0 + l1 + 3 * l2) / 3 = {by_hand:.10f}")
assert np.isclose(ex.value, by_hand, rtol=1e-15) and ex.denominator == 3
assert round(ex.value, 7) == 0.7054256

# %% [markdown]
# <!-- en -->
# ## The `-100` clamp
#
# With probabilities, $p = 0$ and $y = 1$ would give $-\log 0 = \infty$.
# PyTorch clamps each log at $-100$ instead, so a hopeless prediction costs
# exactly 100, and so does every $p$ below $e^{-100} \approx 3.7 \times 10^{-44}$.
# <!-- zh -->
# ## `-100` 截断
#
# 用概率计算时，$p = 0$ 且 $y = 1$ 会得到 $-\log 0 = \infty$。PyTorch 改为把每个对数截断在 $-100$，于是一个
# 完全没希望的预测恰好花费 100，$p$ 低于 $e^{-100} \approx 3.7 \times 10^{-44}$ 时也都是 100。

# %%
tiny = np.array([0.0, 1e-50, 1e-44, 1e-43, 1e-10])
clamped = xr.binary_cross_entropy(tiny, np.ones_like(tiny), reduction="none")
for p, loss in zip(tiny, clamped):
    print(f"p = {p:7.0e}  ->  " + _("nb.04.loss") + f" {loss:.6f}")
assert list(clamped[:3]) == [100.0, 100.0, 100.0] and clamped[3] < 100

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## 为什么 logits 形式是稳定的
#
# 在 logits 形式中，损失用 softplus $\operatorname{sp}(z) = \log(1 + e^z)$ 来写：
#
# $$\ell = w_{+}\, y\, \operatorname{sp}(-x) + (1 - y)\, \operatorname{sp}(x),$$
#
# softplus 的计算过程中从不构造 $1 - p$。概率形式则必须先把 $p = \sigma(x)$ 舍入成浮点数。对 logit 很大的
# 负样本（$y = 0$），当 $x$ 超过约 36.7（float64；float32 中约为 17）时 $p$ 恰好舍入为 1，
# $\log(1 - p)$ 变成 $\log 0$，只有截断让损失保持有限，而且是错误的值 100。真实的损失会像 $x$ 一样一直增长。

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
print(_("nb.04.sigmoid_x_rounds_to_1"))
print(_("nb.04.at_x_60_logits_form"))
assert 36 < break64 < 38 and 16 < break32 < 18
assert np.allclose(with_logits[x >= 10], x[x >= 10], rtol=1e-5)  # softplus(x) ~ x
assert on_probs64[300] == 100.0

# %% [markdown]
# <!-- en -->
# ## The loss as a function of the logit
#
# For a positive sample the loss is $\operatorname{sp}(-x)$, for a negative one
# $\operatorname{sp}(x)$: mirror images. `pos_weight` scales only the positive
# curve, which is how it tells the model that a missed positive costs more
# than a false alarm.
# <!-- zh -->
# ## 损失作为 logit 的函数
#
# 正样本的损失是 $\operatorname{sp}(-x)$，负样本的是 $\operatorname{sp}(x)$：互为镜像。`pos_weight` 只放大
# 正样本的那条曲线，以此告诉模型：漏掉一个正样本比误报一次代价更大。

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
print(_("nb.04.at_x_0_every_unweighted") + f"{curves['y = 1'][120]:.7f}")
