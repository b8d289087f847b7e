# %% [markdown]
# <!-- en -->
# # 8. Why cross-entropy?
#
# Notebook 1 built the softmax; the others computed the loss every way PyTorch
# offers. This one asks why *this* loss. Five answers, each with numbers the
# library computes as the notebook runs:
#
# 1. **Likelihood.** Training a classifier by maximum likelihood *is* minimising
#    $-\log p_t$, the probability the model gives the right class.
# 2. **Information.** Cross-entropy is the target's entropy plus the KL divergence
#    from the target to the model; only the KL part depends on the model.
# 3. **A sanity check.** A fresh model that knows nothing has loss $\log C$.
# 4. **Gradients.** Squared error on probabilities stops learning when the model
#    is confidently wrong; cross-entropy pushes hardest exactly there.
# 5. **Relatives.** Distillation matches a teacher's softened distribution with
#    the KL divergence; the focal loss is cross-entropy that stops pushing on
#    examples it already gets right.
#
# Document 004, "交叉熵损失函数" (The cross-entropy loss function), says the loss
# comes from information theory; this notebook shows what that means. It also
# exists in Chinese, `zh/08_why_cross_entropy.ipynb`, built from the same source.
# <!-- zh -->
# # 8. 为什么是交叉熵？
#
# 笔记本 1 搭出了 softmax，其余几本把 PyTorch 提供的每种算法都算了一遍。这一本问的是：为什么偏偏是
# *这个*损失？下面给出五个回答，每个都配有笔记本运行时由库算出的数字：
#
# 1. **似然。** 用最大似然训练分类器，*就是*最小化 $-\log p_t$，即模型给正确类别的概率的负对数。
# 2. **信息。** 交叉熵等于目标分布的熵加上从目标到模型的 KL 散度；只有 KL 这一部分与模型有关。
# 3. **一个自检。** 一个什么都不知道的新模型，损失应为 $\log C$。
# 4. **梯度。** 对概率用平方误差，模型"自信地错"时几乎学不动；交叉熵恰恰在那里推得最用力。
# 5. **亲戚。** 蒸馏用 KL 散度去匹配教师模型"软化"后的分布；focal loss 是对已经做对的样本不再用力的交叉熵。
#
# 文档 004《交叉熵损失函数》说这个损失来自信息论；本笔记本说明这句话的含义。本笔记本与英文版
# `../08_why_cross_entropy.ipynb` 由同一个源文件生成，两者的数字完全一致。

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr

# [zh] Chinese plot labels: Noto Sans SC from the pylopdf-fonts-zh-cn package (the notebooks extra)
import pylopdf_fonts_zh_cn  # [zh]
from matplotlib import font_manager  # [zh]
font_manager.fontManager.addfont(pylopdf_fonts_zh_cn.sans_path())  # [zh]
plt.rcParams["font.sans-serif"] = ["Noto Sans SC", *plt.rcParams["font.sans-serif"]]  # [zh]

np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(8)

# %% [markdown]
# <!-- en -->
# ## 1. Maximum likelihood gives $-\log p_t$
#
# A classifier maps an input to probabilities $p = \operatorname{softmax}(z)$
# over $C$ classes. If the labels $t_1, \dots, t_N$ of a data set are
# independent, the probability the model gives the whole set of labels, its
# *likelihood*, is the product of the probabilities it gives each one:
#
# $$L = \prod_{i=1}^{N} p_{i, t_i}, \qquad
# -\frac{1}{N} \log L = \frac{1}{N} \sum_{i=1}^{N} -\log p_{i, t_i}.$$
#
# Making $L$ as large as possible is making the mean of $-\log p_t$ as small as
# possible, and that mean is `cross_entropy` with `reduction="mean"`. The product
# itself is useless in practice: over a real data set it underflows to 0.
# <!-- zh -->
# ## 1. 最大似然给出 $-\log p_t$
#
# 分类器把一个输入映射为 $C$ 个类别上的概率 $p = \operatorname{softmax}(z)$。若数据集的标签
# $t_1, \dots, t_N$ 相互独立，模型给整组标签的概率——它的*似然*——就是它给每个标签的概率之积：
#
# $$L = \prod_{i=1}^{N} p_{i, t_i}, \qquad
# -\frac{1}{N} \log L = \frac{1}{N} \sum_{i=1}^{N} -\log p_{i, t_i}.$$
#
# 让 $L$ 尽可能大，就是让 $-\log p_t$ 的平均值尽可能小，而这个平均值正是 `reduction="mean"` 的
# `cross_entropy`。乘积本身在实践中没法用：在真实数据集上它会下溢为 0。

# %%
logits = rng.normal(size=(6, 4)) * 2
labels = np.array([0, 3, 1, 1, 2, 0])
p_t = xr.softmax(logits, axis=1)[np.arange(6), labels]
likelihood = np.prod(p_t)
mean_nll = xr.cross_entropy(logits, labels)
print(_("nb.08.p_t_of_each_label"), p_t)
print(_("nb.08.likelihood"), f"{likelihood:.6e}")
print(_("nb.08.minus_log_likelihood"), f"{-np.log(likelihood) / 6:.12f}")
print(_("nb.08.cross_entropy_mean"), f"{float(mean_nll):.12f}")
assert np.isclose(-np.log(likelihood) / 6, mean_nll, rtol=1e-14)

many = rng.normal(size=(2000, 10))
many_labels = rng.integers(0, 10, 2000)
product = np.prod(xr.softmax(many, axis=1)[np.arange(2000), many_labels])
mean_over_many = float(xr.cross_entropy(many, many_labels))
print(_("nb.08.product_underflows"))
assert product == 0.0

# %% [markdown]
# <!-- en -->
# ## 2. Cross-entropy = entropy + KL divergence
#
# For a target distribution $p$ (a soft label) and the model's $q = \operatorname{softmax}(z)$,
#
# $$\underbrace{-\sum_c p_c \log q_c}_{H(p,\,q)\ \text{cross-entropy}}
# = \underbrace{-\sum_c p_c \log p_c}_{H(p)\ \text{entropy}}
# + \underbrace{\sum_c p_c \log \frac{p_c}{q_c}}_{\mathrm{KL}(p\,\|\,q)}.$$
#
# The entropy is the cost of the labels' own uncertainty, which no model can remove;
# the KL divergence is what the model adds, zero exactly when $q = p$. Since $H(p)$
# does not depend on $z$, minimising cross-entropy and minimising KL give the same
# gradient. `xr.kl_div` is PyTorch's `F.kl_div`: its input is the model's
# *log*-probabilities, its target comes first in the math. The entropy is
# cross-entropy of the target against itself: $\operatorname{softmax}(\log p) = p$.
# <!-- zh -->
# ## 2. 交叉熵 = 熵 + KL 散度
#
# 对目标分布 $p$（软标签）和模型的 $q = \operatorname{softmax}(z)$，
#
# $$\underbrace{-\sum_c p_c \log q_c}_{H(p,\,q)\ \text{交叉熵}}
# = \underbrace{-\sum_c p_c \log p_c}_{H(p)\ \text{熵}}
# + \underbrace{\sum_c p_c \log \frac{p_c}{q_c}}_{\mathrm{KL}(p\,\|\,q)}.$$
#
# 熵是标签自身不确定性的代价，任何模型都去不掉；KL 散度是模型额外带来的代价，当且仅当 $q = p$ 时为零。
# 由于 $H(p)$ 与 $z$ 无关，最小化交叉熵和最小化 KL 的梯度相同。`xr.kl_div` 就是 PyTorch 的 `F.kl_div`：
# 它的输入是模型的*对数*概率，数学上目标分布写在前面。熵就是目标分布对它自己的交叉熵：
# $\operatorname{softmax}(\log p) = p$。

# %%
p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
z = np.array([[1.0, 0.5, -1.0], [0.0, 0.3, 2.5]])
log_q = xr.log_softmax(z, axis=1)
cross = xr.cross_entropy(z, p, reduction="none")
entropy = xr.cross_entropy(np.log(p), p, reduction="none")
kl = xr.kl_div(log_q, p, reduction="none").sum(axis=1)
for i in range(2):
    print(_("nb.08.row_decomposition"))
assert np.allclose(cross, entropy + kl, rtol=1e-14)

grad_ce = xr.cross_entropy_grad(z, p, reduction="sum")
grad_kl = xr.log_softmax_grad(z, xr.kl_div_grad(log_q, p, reduction="sum"), axis=1)
print(_("nb.08.gradient_of_cross_entropy"))
print(grad_ce)
print(_("nb.08.gradient_of_kl"))
print(grad_kl)
assert np.allclose(grad_ce, grad_kl, rtol=1e-12, atol=1e-15)

# %% [markdown]
# <!-- en -->
# One trap: `F.kl_div`'s default `reduction="mean"` divides by *every element*,
# $N \cdot C$, not by the batch size. The KL divergence per sample is
# `reduction="batchmean"` (PyTorch warns about this; pytorch/pytorch#6622).
# <!-- zh -->
# 一个陷阱：`F.kl_div` 默认的 `reduction="mean"` 除以*所有元素*的个数 $N \cdot C$，而不是批大小。每个样本
# 的 KL 散度是 `reduction="batchmean"`（PyTorch 对此会给出警告；见 pytorch/pytorch#6622）。

# %%
per_sample = float(xr.kl_div(log_q, p, reduction="batchmean"))
per_element = float(xr.kl_div(log_q, p, reduction="mean"))
print(_("nb.08.batchmean"))
print(_("nb.08.mean_per_element"))
assert np.isclose(per_sample, kl.mean(), rtol=1e-14)
assert np.isclose(per_element * 3, per_sample, rtol=1e-14)

# %% [markdown]
# <!-- en -->
# ## 3. The first loss should be $\log C$
#
# A model that knows nothing spreads its probability evenly, $p_c = 1/C$, and
# its loss is $-\log(1/C) = \log C$ whatever the label. CS231n's advice: check
# this on the first batch, before training. A linear classifier with small
# initial weights has logits near 0, so its first loss must be close to
# $\log 10 = 2.302585$ for 10 classes; a loss far from it means a bug (or an
# initialisation that is already confident). Here a fresh 10-class linear layer
# on 256 random inputs, with weights drawn at three scales.
# <!-- zh -->
# ## 3. 第一个损失应该是 $\log C$
#
# 一个什么都不知道的模型把概率平均分配，$p_c = 1/C$，无论标签是什么，损失都是 $-\log(1/C) = \log C$。
# CS231n 的建议：训练之前先在第一个批次上检查这一点。初始权重很小的线性分类器的 logits 接近 0，所以
# 10 个类别时它的第一个损失必须接近 $\log 10 = 2.302585$；离得很远就说明有 bug（或者初始化已经很"自信"）。
# 下面是一个新建的 10 类线性层，作用在 256 个随机输入上，权重取三种尺度。

# %%
hidden = rng.normal(size=(256, 64))
targets = rng.integers(0, 10, 256)
print(f"log C = log 10 = {np.log(10):.6f}")
first_losses = {}
for scale in (0.001, 0.1, 1.0):
    weight = rng.normal(size=(10, 64)) * scale
    first_losses[scale] = float(xr.linear_cross_entropy(hidden, weight, targets))
    print(_("nb.08.first_loss"))
assert abs(first_losses[0.001] - np.log(10)) < 1e-3
assert first_losses[1.0] > 2 * np.log(10)

# %% [markdown]
# <!-- en -->
# ## 4. Squared error on probabilities: the vanishing gradient
#
# Why not train with squared error, $\sum_c (p_c - y_c)^2$, on the probabilities?
# Take two classes and let the logit margin of the true class be $m$, so
# $p_t = \sigma(m)$. The gradient of cross-entropy with respect to the margin is
# $-(1 - p_t)$: close to $-1$ when the model is confidently wrong. The gradient
# of squared error goes through the softmax's slope
# $\partial p_t / \partial m = p_t (1 - p_t)$, which is close to 0 there:
#
# $$\frac{\partial}{\partial m}\,2(1 - p_t)^2 = -4\,(1 - p_t)\,p_t\,(1 - p_t).$$
#
# A model that is sure of the wrong answer gets almost no signal to change its mind.
# Both gradients below come from the library: cross-entropy's directly, squared
# error's as the softmax's vector-Jacobian product `softmax_grad`.
# <!-- zh -->
# ## 4. 对概率用平方误差：梯度消失
#
# 为什么不对概率用平方误差 $\sum_c (p_c - y_c)^2$ 来训练？取两个类别，设真实类别的 logit 间隔为 $m$，
# 于是 $p_t = \sigma(m)$。交叉熵对间隔的梯度是 $-(1 - p_t)$：模型自信地错时接近 $-1$。平方误差的梯度要经过
# softmax 的斜率 $\partial p_t / \partial m = p_t (1 - p_t)$，而它在那里接近 0：
#
# $$\frac{\partial}{\partial m}\,2(1 - p_t)^2 = -4\,(1 - p_t)\,p_t\,(1 - p_t).$$
#
# 一个确信错误答案的模型几乎得不到改变主意的信号。下面两种梯度都由库计算：交叉熵的直接给出，平方误差的
# 用 softmax 的向量-雅可比积 `softmax_grad` 算出。

# %%
margin = np.linspace(-10, 10, 401)
two_class = np.stack([margin, np.zeros_like(margin)], axis=1)  # class 0 is the true one
one_hot = np.tile([1.0, 0.0], (len(margin), 1))
ce_slope = xr.cross_entropy_grad(two_class, np.zeros(len(margin), int), reduction="none",
                                 grad_output=np.ones(len(margin)))[:, 0]
probs = xr.softmax(two_class, axis=1)
se_slope = xr.softmax_grad(two_class, 2 * (probs - one_hot), axis=1)[:, 0]

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(margin, -ce_slope, label=r"$-\partial \ell_{CE} / \partial m = 1 - p_t$")
ax.plot(margin, -se_slope, "--", label=r"$-\partial \ell_{SE} / \partial m$")
ax.set_xlabel(r"$m$")
ax.set_ylabel(r"$|\partial \ell / \partial m|$")
ax.set_title(_("nb.08.plot.slopes"), fontsize=10)
ax.axvline(0, color="gray", linewidth=0.8)
ax.legend()
plt.show()

at = int(np.argmin(np.abs(margin + 8)))  # m = -8: confidently wrong
m_at, p_at, ce_pull, se_pull = margin[at], probs[at, 0], -ce_slope[at], -se_slope[at]
print(_("nb.08.pulls"))
assert np.allclose(-se_slope, 4 * (1 - probs[:, 0]) ** 2 * probs[:, 0], rtol=1e-12)
assert -se_slope[at] < 0.01 * -ce_slope[at]

# %% [markdown]
# <!-- en -->
# ## 5a. Distillation: KL to a teacher at a temperature
#
# Hinton et al. (2015) train a small *student* to match a large *teacher*. The
# teacher's softmax is nearly one-hot, so they soften both with a temperature
# $T$: targets $p = \operatorname{softmax}(z_{\text{teacher}}/T)$, student
# log-probabilities $\log q = \operatorname{log\_softmax}(z_{\text{student}}/T)$, and
# the loss $T^2\,\mathrm{KL}(p \,\|\, q)$ (`batchmean`). The factor $T^2$ keeps the
# gradient's size independent of $T$: by the chain rule through $z/T$ the gradient
# with respect to the student's logits is $T\,(q - p)/N$.
# At $T = 1$ the "dark knowledge" (how the teacher ranks the wrong classes) is
# invisible; at higher $T$ it is what the student learns from.
# <!-- zh -->
# ## 5a. 蒸馏：在某个温度下对教师模型的 KL
#
# Hinton 等人（2015）训练一个小的*学生*模型去匹配大的*教师*模型。教师的 softmax 几乎是 one-hot，所以
# 用温度 $T$ 把两者都"软化"：目标 $p = \operatorname{softmax}(z_{\text{teacher}}/T)$，学生的对数概率
# $\log q = \operatorname{log\_softmax}(z_{\text{student}}/T)$，损失为 $T^2\,\mathrm{KL}(p \,\|\, q)$
# （`batchmean`）。因子 $T^2$ 使梯度的大小与 $T$ 无关：经 $z/T$ 用链式法则，对学生 logits 的梯度是
# $T\,(q - p)/N$。$T = 1$ 时"暗知识"（教师如何给错误类别排序）几乎看不见；温度更高时，学生学的正是它。

# %%
teacher = np.array([[9.0, 4.0, 1.0, -2.0], [0.5, 7.0, 5.0, -1.0]])
student = np.array([[3.0, 0.0, 1.0, 0.5], [0.0, 2.0, 2.5, 0.0]])
n = len(teacher)
for T in (1.0, 2.0, 4.0):
    soft = xr.softmax(teacher / T, axis=1)
    log_student = xr.log_softmax(student / T, axis=1)
    distill_loss = float(T**2 * xr.kl_div(log_student, soft, reduction="batchmean"))
    upstream = T**2 * xr.kl_div_grad(log_student, soft, reduction="batchmean")
    grad = xr.log_softmax_grad(student / T, upstream, axis=1) / T  # chain rule through z / T
    print(_("nb.08.soft_targets"))
    print(_("nb.08.distillation_loss"))
    assert np.allclose(grad, T * (xr.softmax(student / T, axis=1) - soft) / n, rtol=1e-12,
                       atol=1e-15)

# %% [markdown]
# <!-- en -->
# ## 5b. Focal loss: cross-entropy that stops pushing on easy examples
#
# In object detection almost every candidate box is easy background. Their
# individually tiny losses add up and drown the few hard examples. Lin et al.
# (2017) multiply the loss by $(1 - p_t)^\gamma$:
#
# $$\ell = -(1 - p_t)^\gamma \log p_t.$$
#
# At $\gamma = 0$ this is cross-entropy. At $\gamma = 2$ an example the model
# already gets right with $p_t = 0.9$ weighs $(0.1)^2 = 1\%$ of its cross-entropy,
# while a hard one at $p_t = 0.1$ keeps $81\%$. The curves below are
# `xr.sigmoid_focal_loss` (torchvision's, with `alpha=-1`: no class weighting) at
# the logit whose sigmoid is $p_t$.
# <!-- zh -->
# ## 5b. focal loss：对简单样本不再用力的交叉熵
#
# 在目标检测中，几乎每个候选框都是容易判断的背景。它们各自很小的损失加起来，会淹没少数难样本。
# Lin 等人（2017）把损失乘以 $(1 - p_t)^\gamma$：
#
# $$\ell = -(1 - p_t)^\gamma \log p_t.$$
#
# $\gamma = 0$ 时就是交叉熵。$\gamma = 2$ 时，模型已经以 $p_t = 0.9$ 答对的样本只占它交叉熵的
# $(0.1)^2 = 1\%$，而 $p_t = 0.1$ 的难样本保留 $81\%$。下面的曲线是 `xr.sigmoid_focal_loss`（torchvision 的
# 版本，`alpha=-1`：不做类别加权），自变量取 sigmoid 等于 $p_t$ 的那个 logit。

# %%
p_grid = np.linspace(0.01, 0.99, 197)
logit = np.log(p_grid) - np.log1p(-p_grid)  # sigmoid(logit) = p_t
ones = np.ones_like(p_grid)
fig, ax = plt.subplots(figsize=(7, 3.8))
curves = {}
for gamma in (0.0, 0.5, 1.0, 2.0, 5.0):
    curves[gamma] = xr.sigmoid_focal_loss(logit, ones, alpha=-1.0, gamma=gamma)
    ax.plot(p_grid, curves[gamma], label=rf"$\gamma = {gamma:g}$")
ax.set_xlabel(r"$p_t$")
ax.set_ylabel(r"$-(1 - p_t)^\gamma \log p_t$")
ax.set_ylim(0, 5)
ax.set_title(_("nb.08.plot.focal"), fontsize=10)
ax.legend()
plt.show()

assert np.allclose(curves[0.0], -np.log(p_grid), rtol=1e-12)
easy, hard = int(np.argmin(np.abs(p_grid - 0.9))), int(np.argmin(np.abs(p_grid - 0.1)))
for name, i in ((_("nb.08.easy"), easy), (_("nb.08.hard"), hard)):
    share = curves[2.0][i] / curves[0.0][i]
    print(_("nb.08.focal_share"))
assert np.isclose(curves[2.0][easy] / curves[0.0][easy], 0.01, rtol=1e-9)
assert np.isclose(curves[2.0][hard] / curves[0.0][hard], 0.81, rtol=1e-9)

# %% [markdown]
# <!-- en -->
# The multi-class version, `xr.softmax_focal_loss`, takes cross-entropy's targets,
# weights and `ignore_index`; at `gamma=0` it is `cross_entropy` exactly. On a
# batch with one easy and one hard sample, the focal loss moves the share of the
# total from the easy one to the hard one:
# <!-- zh -->
# 多类别版本 `xr.softmax_focal_loss` 接受交叉熵的目标、权重和 `ignore_index`；`gamma=0` 时它与
# `cross_entropy` 完全相同。在一个含一个简单样本和一个难样本的批次上，focal loss 把总损失中的份额从
# 简单样本转移到难样本：

# %%
batch = np.array([[4.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
labels = np.array([0, 0])  # the first is easy, the second hard
for gamma in (0.0, 2.0):
    per_sample = xr.softmax_focal_loss(batch, labels, gamma=gamma, reduction="none")
    hard_share = per_sample[1] / per_sample.sum()
    print(_("nb.08.focal_batch"))
assert np.array_equal(xr.softmax_focal_loss(batch, labels, gamma=0.0),
                      xr.cross_entropy(batch, labels))

# %% [markdown]
# <!-- en -->
# ## Summary
#
# * Cross-entropy is the negative log-likelihood of the labels: minimising it is
#   maximum likelihood.
# * It is the target's entropy plus the KL divergence, so with fixed targets it
#   and KL have the same gradient, $\operatorname{softmax}(z) - p$.
# * An untrained model should start at $\log C$.
# * Its gradient does not vanish when the model is confidently wrong, unlike
#   squared error on probabilities.
# * Distillation (KL at a temperature) and the focal loss are cross-entropy with
#   a different target or a different weight per example.
# <!-- zh -->
# ## 小结
#
# * 交叉熵是标签的负对数似然：最小化它就是最大似然。
# * 它等于目标分布的熵加上 KL 散度，所以目标固定时它与 KL 的梯度相同，都是 $\operatorname{softmax}(z) - p$。
# * 一个未训练的模型应从 $\log C$ 开始。
# * 模型自信地错时它的梯度不会消失，而对概率用平方误差则会。
# * 蒸馏（某个温度下的 KL）和 focal loss 都是换了目标或换了每个样本权重的交叉熵。
