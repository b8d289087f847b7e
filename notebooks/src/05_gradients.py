# %% [markdown]
# <!-- en -->
# # 5. Gradients by hand, checked three ways, and put to use
#
# Training needs $\partial \text{loss} / \partial \text{logits}$. For the
# cross-entropy family the answer is short: **probabilities minus targets**,
# scaled by the weights and divided by the same denominator as the loss. This
# notebook derives it, starting from the softmax's Jacobian, writes it in a few
# lines of NumPy, and checks it against (1) the library's `*_grad` functions,
# (2) central finite differences of the library's losses, and (3) values
# computed by PyTorch's autograd, stored in `data/torch_values.json` by
# `scripts/make_notebook_torch_values.py`. Then the gradient is put to use: one
# step of gradient descent on a tiny classifier, then a whole training run that
# shows, in numbers, why applying softmax twice slows training. The last part goes one
# derivative further: the Hessian, a Newton step, and Hessian-vector products.
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
# library's plain NumPy version of the same formula. This notebook also exists in
# Chinese, `zh/05_gradients.ipynb`, built from the same source.
# <!-- zh -->
# # 5. 手推梯度：三种方法核对，再拿来用
#
# 训练需要 $\partial \text{loss} / \partial \text{logits}$。对交叉熵这一族损失，答案很短：
# **概率减去目标**，再乘上权重，并除以与损失相同的分母。本笔记本从 softmax 的雅可比矩阵出发
# 推导这个结论，用几行 NumPy 写出来，然后用三种方法核对：(1) 库里的 `*_grad` 函数；
# (2) 对库里损失函数做中心差分；(3) PyTorch 自动求导算出的值（由
# `scripts/make_notebook_torch_values.py` 存在 `data/torch_values.json` 里）。接着
# 把梯度真正用起来：先在一个很小的分类器上做一步梯度下降，再完整训练两遍，用数字说明
# 为什么 softmax 套两次会拖慢训练。最后一部分再多求一次导：Hessian 矩阵、牛顿法的一步，
# 以及 Hessian-向量积。
#
# 例子取自文档 001《关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数》和文档 004
# 《交叉熵损失函数》；标签平滑取自文档 003《PyTorch实现CrossEntropyLoss示例》；两次 softmax
# 取自文档 000《pytorch交叉熵损失详细计算步骤》的代码（见笔记本 3）。
#
# 每次对比都打印三样东西，做法与 Karpathy 的 "Becoming a Backprop Ninja" 相同：两个数组是否
# 逐位相等、是否近似相等（`np.allclose`）、以及最大绝对误差。凡是这里手写的梯度，也会和
# `xent_ref.textbook`（库里同一公式的朴素 NumPy 版本）比一比。本笔记本与英文版
# `../05_gradients.ipynb` 由同一个源文件生成，两者的数字完全一致。

# %%
import json

import matplotlib.pyplot as plt
# [zh] Chinese plot labels: Noto Sans SC from the pylopdf-fonts-zh-cn package (the notebooks extra)
import pylopdf_fonts_zh_cn  # [zh]
from matplotlib import font_manager  # [zh]
font_manager.fontManager.addfont(pylopdf_fonts_zh_cn.sans_path())  # [zh]
plt.rcParams["font.sans-serif"] = ["Noto Sans SC", *plt.rcParams["font.sans-serif"]]  # [zh]
import numpy as np

import xent_ref as xr
from xent_ref import textbook
from xent_ref.teach.i18n import ljust  # pads by display width: a CJK character takes 2

np.set_printoptions(precision=6, suppress=True)

DATA = "data/torch_values.json"  # [en]
DATA = "../data/torch_values.json"  # [zh]


with open(DATA, encoding="utf-8") as f:
    stored = json.load(f)
torch_cases = {case["name"]: case for case in stored["cases"]}
print("PyTorch", stored["torch_version"], _("nb.05.values_for"), sorted(torch_cases))


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
    print(_("nb.05.exact_approx_max_diff"))
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
# <!-- en -->
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
# <!-- zh -->
# ## softmax 的雅可比矩阵
#
# 对一行 $p = \operatorname{softmax}(x)$，其中 $p_i = e^{x_i} / S$，$S = \sum_k e^{x_k}$，
# 由商的求导法则得到
#
# $$\frac{\partial p_i}{\partial x_j} = \frac{[i = j]\, e^{x_i}}{S} - \frac{e^{x_i} e^{x_j}}{S^2}
#   = p_i\,([i = j] - p_j), \qquad J = \operatorname{diag}(p) - p\,p^\top.$$
#
# $J$ 是对称矩阵，每一行、每一列之和都是 $p_i - p_i \sum_j p_j = 0$：给所有 logit 加上同一个
# 常数，概率不变。对角线上的 $p_i (1 - p_i)$ 为正（提高 $x_i$ 会提高 $p_i$），其余元素
# $-p_i p_j$ 都为负（提高 $x_j$ 会从其他每个类别那里拿走概率）。

# %%
x = np.array([2.0, 1.0, 0.1, -1.0])
p = xr.softmax(x)
J = np.diag(p) - np.outer(p, p)
J_numeric = np.stack([central_differences(lambda z: xr.softmax(z)[i], x) for i in range(len(x))])
print("p =", p)
print("J =\n", J)
compare(_("nb.05.j_vs_finite_differences"), J, J_numeric)
print(_("nb.05.largest_row_sum") + f"{np.abs(J.sum(axis=1)).max():.1e}, "
      + _("nb.05.largest_j_j_t") + f"{np.abs(J - J.T).max():.1e}")
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
# <!-- en -->
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
# <!-- zh -->
# ## 向量-雅可比积：从不构造 $J$
#
# 反向传播并不需要 $J$ 本身，只需要 $g^\top J$，其中 $g = \partial L / \partial p$ 是从上游
# 传来的梯度。展开得
#
# $$(g^\top J)_j = \sum_i g_i\, p_i([i = j] - p_j) = p_j g_j - p_j \sum_i g_i p_i
#   = p_j\,\bigl(g_j - \langle g, p\rangle\bigr).$$
#
# 一次点积加一次逐元素乘法：每行 $O(C)$ 的计算量和内存，而不是 $J$ 的 $O(C^2)$。对于
# $C = 50\,000$ 个类别的语言模型，$J$ 每行就有 25 亿个数。`xr.softmax_grad(x, g)` 计算的
# 正是这个向量-雅可比积。

# %%
g = np.array([0.5, -1.0, 2.0, 0.0])
vjp = p * (g - g @ p)
compare(_("nb.05.p_g_g_p_vs"), vjp, g @ J)
compare(_("nb.05.p_g_g_p_vs_2"), vjp, xr.softmax_grad(x, g))
compare(_("nb.05.p_g_g_p_vs_3"), vjp, central_differences(lambda z: g @ xr.softmax(z), x))
assert np.abs(vjp - xr.softmax_grad(x, g)).max() < 1e-15

# %% [markdown]
# <!-- en -->
# Chained with the loss, the VJP gives the result derived below. For
# $\ell = -\log p_t$, the gradient arriving at $p$ is $g = -\text{onehot}(t) / p_t$, so
# $\langle g, p\rangle = -1$ and $p \odot (g + 1) = p - \text{onehot}(t)$: the
# $1/p_t$ cancels against the $p_t$ of the Jacobian.
# <!-- zh -->
# 把向量-雅可比积与损失串起来，就得到下面要推导的结果。对 $\ell = -\log p_t$，传到 $p$ 的梯度是
# $g = -\text{onehot}(t) / p_t$，于是 $\langle g, p\rangle = -1$，
# $p \odot (g + 1) = p - \text{onehot}(t)$：$1/p_t$ 与雅可比矩阵里的 $p_t$ 正好抵消。

# %%
t = 0
g_loss = -np.eye(4)[t] / p[t]
compare(_("nb.05.vjp_of_log_p_t"), p * (g_loss - g_loss @ p), p - np.eye(4)[t])
compare(_("nb.05.p_onehot_vs_cross_entropy"), p - np.eye(4)[t],
        xr.cross_entropy_grad(x, np.array(t)))

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## 推导 softmax 交叉熵的梯度
#
# 对一个样本，logits 为 $x$，类别为 $t$，
# $\ell = -\log p_t = -x_t + \log \sum_j e^{x_j}$。求导得
# $\partial \ell / \partial x_c = -[c = t] + e^{x_c} / \sum_j e^{x_j}$，因此
#
# $$\frac{\partial \ell}{\partial x} = p - \text{onehot}(t).$$
#
# 各个选项只是对行做缩放：
#
# * **weight**：样本 $i$ 的损失乘以 $w_{t_i}$，它那一行梯度也一样。
# * **mean**：每一行都除以 $D = \sum_{\text{保留的 } i} w_{t_i}$。
# * **ignore_index**：被忽略的样本不进入损失，它那一行为 0。
# * **标签平滑** $\varepsilon$：损失加上 $\frac{\varepsilon}{C} \cdot \text{smooth}_i$，
#   其中 $\text{smooth}_i = -\sum_c w_c \log p_c$，它的梯度是 $W p - w$，$W = \sum_c w_c$；
#   $\text{onehot}$ 那部分乘以 $1 - \varepsilon$。
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
# <!-- en -->
# ## The 4x3 example: `weight=[2, 1, 2]`, `ignore_index=2`
# <!-- zh -->
# ## 4x3 的例子：`weight=[2, 1, 2]`，`ignore_index=2`

# %%
logits = np.array([[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]])
labels = np.array([2, 1, 0, 1])
options = {"weight": np.array([2.0, 1.0, 2.0]), "ignore_index": 2}

by_hand = hand_grad(logits, labels, **options)
library = xr.cross_entropy_grad(logits, labels, **options)
numeric = central_differences(lambda z: float(xr.cross_entropy(z, labels, **options)), logits)
torch_grad = array(torch_cases["4x3 weight ignore_index"], "grad")
print(_("nb.05.by_hand") + "\n", by_hand)
compare(_("nb.05.by_hand_vs_library"), by_hand, library)
compare(_("nb.05.by_hand_vs_textbook"), by_hand, textbook.cross_entropy_grad(logits, labels, **options))
compare(_("nb.05.by_hand_vs_finite_differences"), by_hand, numeric)
compare(_("nb.05.by_hand_vs_pytorch"), by_hand, torch_grad)
assert np.allclose(by_hand, library, rtol=0, atol=1e-15)
assert np.allclose(by_hand, torch_grad, rtol=0, atol=1e-15)
assert np.allclose(by_hand, numeric, rtol=0, atol=1e-9)
assert not by_hand[0].any()  # the ignored sample gets no gradient

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## `nll_loss` 的梯度，以及沿链式法则回到 logits
#
# `nll_loss` 的输入是对数概率 $a = \log p$，每行只读取目标那一项：
# $L = \frac{1}{D}\sum_{\text{保留的 } i} -w_{t_i} a_{i, t_i}$。所以它的梯度在每个保留的行上
# 只有一个数：第 $t_i$ 列为 $-w_{t_i} / D$，其余位置（包括被忽略的行）都是 0：
#
# $$\frac{\partial L}{\partial a_{i,c}} = -\frac{w_{t_i}}{D}\,[c = t_i]\,[t_i \ne \text{ignore\_index}].$$
#
# `cross_entropy` 就是对 `log_softmax` 的结果做 `nll_loss`，所以它的梯度是把上面这个梯度
# 经过 log-softmax 反传回去。$a = x - \log\sum_k e^{x_k}$ 的向量-雅可比积是
# $g \mapsto g - p \sum_c g_c$（论证与上面的 softmax 相同）。代入 $\sum_c g_{i,c} = -w_{t_i}/D$，
# 得到 $w_{t_i}(p_i - \text{onehot}(t_i))/D$：逐行正是交叉熵的梯度。

# %%
log_probs = xr.log_softmax(logits, axis=1)
weight = np.array(options["weight"])
kept = labels != options["ignore_index"]
D = weight[labels[kept]].sum()
nll_hand = np.zeros_like(log_probs)
nll_hand[np.flatnonzero(kept), labels[kept]] = -weight[labels[kept]] / D
nll_case = torch_cases["nll_loss 4x3 weight ignore_index"]
print(_("nb.05.d_nll_d_log_probs") + "\n", nll_hand)
compare(_("nb.05.by_hand_vs_library"), nll_hand, xr.nll_loss_grad(log_probs, labels, **options))
compare(_("nb.05.by_hand_vs_textbook"), nll_hand, textbook.nll_loss_grad(log_probs, labels, **options))
compare(_("nb.05.by_hand_vs_finite_differences"), nll_hand, central_differences(
    lambda a: float(xr.nll_loss(a, labels, **options)), log_probs))
compare(_("nb.05.by_hand_vs_pytorch"), nll_hand, array(nll_case, "grad"))
chained = nll_hand - xr.softmax(logits, axis=1) * nll_hand.sum(axis=1, keepdims=True)
compare(_("nb.05.chained_through_log_softmax_vs"), chained, by_hand)
compare(_("nb.05.vs_log_softmax_grad"), chained, xr.log_softmax_grad(logits, nll_hand, axis=1))
assert np.array_equal(nll_hand, xr.nll_loss_grad(log_probs, labels, **options))
assert np.allclose(chained, by_hand, rtol=0, atol=1e-15)

# %% [markdown]
# <!-- en -->
# ## Every gradient row sums to zero
#
# $\sum_c (p_c - \text{onehot}_c) = 1 - 1 = 0$, and the smoothing part sums to
# $W \cdot 1 - W = 0$ too. Adding the same constant to every logit of a row
# does not change the softmax, so it cannot change the loss: the gradient has
# no component along $(1, 1, \dots, 1)$. Each row pushes the true class's
# logit up and the others down by the same total amount.
# <!-- zh -->
# ## 每一行梯度之和都为零
#
# $\sum_c (p_c - \text{onehot}_c) = 1 - 1 = 0$，平滑部分的和 $W \cdot 1 - W$ 也是 0。给一行的
# 所有 logit 加上同一个常数不改变 softmax，也就不可能改变损失：梯度在
# $(1, 1, \dots, 1)$ 方向上没有分量。每一行把真实类别的 logit 往上推，把其余的往下推，
# 两边的总量相同。

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.25
for c in range(3):
    ax.bar(np.arange(4) + (c - 1) * width, by_hand[:, c], width, label=f"d L / d x[:, {c}]")
ax.plot(np.arange(4), by_hand.sum(axis=1), "k*", markersize=12, label=_("nb.05.plot.row_sum"))
ax.axhline(0, color="gray", linewidth=0.8)
ax.set_xticks(np.arange(4), [f"sample {i}\nlabel {t}" + (" (ignored)" if t == 2 else "")
                             for i, t in enumerate(labels)])
ax.set_ylabel(_("nb.05.plot.gradient"))
ax.legend(fontsize=8)
ax.set_title(_("nb.05.plot.gradient_rows_of_the_4x3_examp"))
plt.show()

print(_("nb.05.largest_row_sum") + f"{np.abs(by_hand.sum(axis=1)).max():.1e}")
assert np.abs(by_hand.sum(axis=1)).max() < 1e-16

# %% [markdown]
# <!-- en -->
# ## Label smoothing and weights together
#
# The 3x2 example of document 001 with `weight=[1, 2]` and document 003's
# smoothing $\varepsilon = 0.1$: still probabilities minus (smoothed, weighted)
# targets, and the rows still sum to zero.
# <!-- zh -->
# ## 标签平滑与权重同时使用
#
# 文档 001 的 3x2 例子，加上 `weight=[1, 2]` 和文档 003 的平滑系数 $\varepsilon = 0.1$：
# 梯度仍然是概率减去（平滑、加权后的）目标，每行之和仍为零。

# %%
logits3 = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels3 = np.array([0, 1, 0])
options3 = {"weight": np.array([1.0, 2.0]), "label_smoothing": 0.1}
smooth_hand = hand_grad(logits3, labels3, **options3)
smooth_torch = array(torch_cases["3x2 weight label_smoothing"], "grad")
smooth_numeric = central_differences(
    lambda z: float(xr.cross_entropy(z, labels3, **options3)), logits3)
print(smooth_hand)
compare(_("nb.05.by_hand_vs_library"), smooth_hand, xr.cross_entropy_grad(logits3, labels3, **options3))
compare(_("nb.05.by_hand_vs_textbook"), smooth_hand,
        textbook.cross_entropy_grad(logits3, labels3, **options3))
compare(_("nb.05.by_hand_vs_finite_differences"), smooth_hand, smooth_numeric)
compare(_("nb.05.by_hand_vs_pytorch"), smooth_hand, smooth_torch)
assert np.allclose(smooth_hand, xr.cross_entropy_grad(logits3, labels3, **options3), atol=1e-15)
assert np.allclose(smooth_hand, smooth_torch, rtol=0, atol=1e-15)
assert np.allclose(smooth_hand, smooth_numeric, rtol=0, atol=1e-9)
assert np.abs(smooth_hand.sum(axis=1)).max() < 1e-16

# %% [markdown]
# <!-- en -->
# ## Segmentation: `(N, C, H, W)` with `ignore_index=255`
#
# The same formula per pixel, with the class axis at position 1. PyTorch's
# gradient for a `(2, 3, 4, 4)` input (stored with its inputs) matches the
# library's, and the ignored pixels get exactly zero.
# <!-- zh -->
# ## 语义分割：`(N, C, H, W)`，`ignore_index=255`
#
# 同一个公式逐像素使用，类别轴在第 1 维。PyTorch 对一个 `(2, 3, 4, 4)` 输入算出的梯度
# （连同输入一起保存）与库的结果一致，被忽略的像素梯度恰好为零。

# %%
seg = torch_cases["segmentation ignore 255"]
seg_logits, seg_labels = array(seg, "input"), array(seg, "target")
seg_library = xr.cross_entropy_grad(seg_logits, seg_labels, ignore_index=255)
seg_torch = array(seg, "grad")
ignored = seg_labels == 255
seg_loss = float(xr.cross_entropy(seg_logits, seg_labels, ignore_index=255))
print(_("nb.05.loss_library_pytorch"))
print(_("nb.05.ignored_pixels"))
compare(_("nb.05.library_vs_pytorch"), seg_library, seg_torch)
assert np.allclose(seg_library, seg_torch, rtol=0, atol=1e-15)
assert not np.moveaxis(seg_library, 1, -1)[ignored].any()
assert np.abs(seg_library.sum(axis=1)).max() < 1e-16

# %% [markdown]
# <!-- en -->
# ## Binary cross-entropy with logits: sigmoid minus target
#
# With $p = \sigma(x)$, $\ell = -w_{+} y \log p - (1-y)\log(1-p)$ and
# $\sigma'(x) = p(1-p)$:
#
# $$\frac{\partial \ell}{\partial x} = w_{+}\, y\,(p - 1) + (1 - y)\, p,$$
#
# which for $w_{+} = 1$ is just $p - y$. The mean divides by the number of
# elements. Document 004's example with `pos_weight=3`:
# <!-- zh -->
# ## 带 logits 的二元交叉熵：sigmoid 减去目标
#
# 令 $p = \sigma(x)$，$\ell = -w_{+} y \log p - (1-y)\log(1-p)$，且 $\sigma'(x) = p(1-p)$，得
#
# $$\frac{\partial \ell}{\partial x} = w_{+}\, y\,(p - 1) + (1 - y)\, p,$$
#
# 当 $w_{+} = 1$ 时就是 $p - y$。mean 除以元素个数。下面是文档 004 中 `pos_weight=3` 的例子：

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
print(_("nb.05.by_hand"), bin_hand)
compare(_("nb.05.by_hand_vs_library"), bin_hand, bin_library)
compare(_("nb.05.by_hand_vs_textbook"), bin_hand,
        textbook.binary_cross_entropy_with_logits_grad(x, y, pos_weight=np.array([pos_weight])))
compare(_("nb.05.by_hand_vs_finite_differences"), bin_hand, bin_numeric)
compare(_("nb.05.by_hand_vs_pytorch"), bin_hand, bin_torch)
assert np.allclose(bin_hand, bin_library, rtol=1e-14, atol=0)
assert np.allclose(bin_hand, bin_torch, rtol=1e-14, atol=0)
assert np.allclose(bin_hand, bin_numeric, rtol=0, atol=1e-9)
assert np.allclose((p - y) / 3, xr.binary_cross_entropy_with_logits_grad(x, y), rtol=1e-14, atol=0)

# %% [markdown]
# <!-- en -->
# ## Binary cross-entropy on probabilities
#
# Differentiating with respect to $p$ instead of $x$ gives
# $\partial \ell / \partial p = (p - y) / (p (1 - p))$: the chain rule's
# $\sigma'(x) = p(1-p)$ is missing, so the gradient blows up as $p$ nears 0 or
# 1. (The library, like PyTorch, keeps the denominator at least $10^{-12}$.)
# <!-- zh -->
# ## 基于概率的二元交叉熵
#
# 如果对 $p$ 而不是对 $x$ 求导，得到 $\partial \ell / \partial p = (p - y) / (p (1 - p))$：
# 少了链式法则中的 $\sigma'(x) = p(1-p)$，所以当 $p$ 接近 0 或 1 时梯度会爆炸。（库和 PyTorch
# 一样，把分母限制在不小于 $10^{-12}$。）

# %%
bce_case = torch_cases["binary on probabilities"]
probs = array(bce_case, "input")
prob_hand = (probs - y) / (probs * (1 - probs)) / len(y)
prob_library = xr.binary_cross_entropy_grad(probs, y)
print(_("nb.05.by_hand"), prob_hand)
compare(_("nb.05.by_hand_vs_library"), prob_hand, prob_library)
compare(_("nb.05.by_hand_vs_textbook"), prob_hand, textbook.binary_cross_entropy_grad(probs, y))
compare(_("nb.05.by_hand_vs_pytorch"), prob_hand, array(bce_case, "grad"))
assert np.allclose(prob_hand, prob_library, rtol=1e-14, atol=0)
assert np.allclose(prob_hand, array(bce_case, "grad"), rtol=1e-14, atol=0)
# chain rule: d/dx = d/dp * p(1-p) is the "sigmoid minus target" above
assert np.allclose(prob_hand * probs * (1 - probs), (probs - y) / 3, rtol=1e-14)

# %% [markdown]
# <!-- en -->
# The last plot compares the two: with respect to the logit the gradient is
# bounded by $w_{+}$ (for $y = 1$) and 1 (for $y = 0$), so a confident mistake
# gets a firm but finite push; with respect to the probability it grows
# without bound.
# <!-- zh -->
# 最后一幅图把两者放在一起：对 logit 的梯度有界，$y = 1$ 时不超过 $w_{+}$，$y = 0$ 时不超过 1，
# 所以一个很自信的错误会得到有力但有限的推动；对概率的梯度则没有上界。

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
left.set_title(_("nb.05.plot.w_r_t_the_logit_sigmoid_x_y"))
ps = 1 / (1 + np.exp(-xs))
right.plot(ps, n * xr.binary_cross_entropy_grad(ps, ones), label="y = 1")
right.plot(ps, n * xr.binary_cross_entropy_grad(ps, zeros), label="y = 0")
right.set_yscale("symlog", linthresh=1)
right.set_xlabel(_("nb.05.plot.probability_p"))
right.set_ylabel("d loss / d p")
right.legend(fontsize=8)
right.set_title(_("nb.05.plot.w_r_t_the_probability_p_y_p_1"))
plt.show()

logit_grads = n * xr.binary_cross_entropy_with_logits_grad(xs, ones, pos_weight=[3.0])
print(_("nb.05.largest_d_dx_with_pos")
      + f"{np.abs(logit_grads).max():.6f}")
assert np.abs(logit_grads).max() <= 3.0

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# ## 把梯度用起来：一步梯度下降
#
# 一个很小的分类器：平面上六个点，三个类别，线性模型 $\text{logits} = X W^\top$，$X$ 的每一行
# 是一个点再补上常数 1（这样 $W$ 的最后一列就是偏置）。由于
# $\text{logits}_{i,c} = \sum_k W_{c,k} X_{i,k}$，链式法则给出
#
# $$\frac{\partial L}{\partial W} = \Bigl(\frac{\partial L}{\partial\, \text{logits}}\Bigr)^{\!\top} X,$$
#
# 即损失对 logits 的梯度乘以输入。从 $W = 0$ 出发（各类别等可能，损失为 $\log 3$），
# 以 $\eta = 0.5$ 走一步 $W \leftarrow W - \eta\, \partial L / \partial W$：

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
compare(_("nb.05.dl_dw_vs_finite_differences"), dW, central_differences(loss_of, W0))
print(_("nb.05.loss_before_the_step_log"))
print(_("nb.05.loss_after_the_step"))
forecast = loss_of(W0) - lr * (dW ** 2).sum()
print(_("nb.05.first_order_forecast_loss_lr"))
assert forecast < loss_of(W1) < 0.6 * loss_of(W0)
assert np.abs(dW - central_differences(loss_of, W0)).max() < 1e-9

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# 一步就去掉了四成以上的损失（单元格里有检查）。只凭梯度做出的预测，也就是切线，过于乐观：
# 0.5 的步长并不小，而损失曲线离开切线后是向上弯的。
#
# ## softmax 套两次会拖慢训练：用数字说话
#
# 笔记本 3 说明了文档 000 的代码（把 `softmax(logits)` 交给 `CrossEntropyLoss`）的损失有一个
# 降不下去的下限。它是否也训练得更慢？从 $W = 0$ 出发，用同样的学习率把同一个分类器训练两遍：
# 一遍用 `cross_entropy(logits)`，一遍用 `cross_entropy(softmax(logits))`。第二遍的梯度要经过
# 上面的 softmax 向量-雅可比积：先在概率处求 `cross_entropy_grad`，再用 `softmax_grad` 传回
# logits。两遍都用同一个尺度来评判：各自 logits 的普通交叉熵。

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
print(_("nb.05.steps_until_the_cross_entropy"), thresholds)
steps = {}
for name, (losses, grad_norms, W) in runs.items():
    steps[name] = np.array([int(np.argmax(losses < t)) for t in thresholds])
    print(f"  {name:31} {str(steps[name].tolist()):20} "
          + _("nb.05.loss_after_steps"))
slowdown = steps["cross_entropy(softmax(logits))"] / steps["cross_entropy(logits)"]
print(_("nb.05.slowdown"), slowdown.round(2))
(right_losses, right_norms, W_right), (twice_losses, twice_norms, W_twice) = runs.values()
first = (right_norms[0], twice_norms[0], twice_norms[0] / right_norms[0])
print(_("nb.05.first_gradient_norm_vs_ratio"))
# the losses fall monotonically, so the gradient norm at a given loss level interpolates
at_level = {name: np.interp(thresholds, losses[::-1], norms[::-1])
            for name, (losses, norms, W_final) in runs.items()}
norm_ratio = at_level["cross_entropy(softmax(logits))"] / at_level["cross_entropy(logits)"]
print(_("nb.05.gradient_norm_at_those_loss"), norm_ratio.round(2))
floor3 = np.log1p(2 / np.e)
own = float(xr.cross_entropy(xr.softmax(X @ W_twice.T, axis=1), classes))
print(_("nb.05.the_double_softmax_run_s"))
assert all(np.diff(right_losses) < 0) and all(np.diff(twice_losses) < 0)
assert all((twice_losses >= right_losses)[1:]) and all((1.5 < slowdown) & (slowdown < 2.5))
assert np.isclose(twice_norms[0] / right_norms[0], 1 / 3, rtol=1e-12)
assert all((0.5 < norm_ratio) & (norm_ratio < 0.65))

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (losses, grad_norms, W_final) in runs.items():
    left.plot(losses, label=name)
    right.plot(losses, grad_norms, label=name)
left.set_yscale("log")
left.set_xlabel(_("nb.05.plot.step"))
left.set_ylabel("cross_entropy(logits)")
left.set_title(_("nb.05.plot.same_model_same_learning_rate"))
left.legend(fontsize=8)
right.set_xscale("log")
right.set_yscale("log")
right.invert_xaxis()
right.set_xlabel(_("nb.05.plot.cross_entropy_logits_training"))
right.set_ylabel("|dL/dW|")
right.set_title(_("nb.05.plot.gradient_norm_at_the_same_loss"))
plt.show()

# %% [markdown]
# <!-- en -->
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
# <!-- zh -->
# 两次 softmax 那一遍的第一个梯度恰好是正确做法的三分之一。在 $W = 0$ 处概率是均匀的，
# $p = 1/3$，所以对 $p$ 再做 softmax 也是均匀的，传到概率处的梯度就等于正确做法的
# $p - \text{onehot}$；softmax 的向量-雅可比积再把这个各分量之和为零的向量乘以 $p_j = 1/3$。
# 有 $C$ 个类别时这个因子是 $1/C$。之后在每个损失水平上，两次 softmax 的梯度都比正确做法的小
# （右图；打印出的比值在 0.5 到 0.65 之间）。它得到的每个梯度都穿过了雅可比矩阵
# $\operatorname{diag}(p) - pp^\top$，其元素绝对值最大只有 $1/4$，而且随着预测越来越自信而趋于零。
# 步子更小，训练更慢：在这里到达每个损失水平需要 1.5 到 2.5 倍的步数（单元格检查了这个范围）。
# 请把原始 logits 交给 `cross_entropy`。

# %% [markdown]
# <!-- en -->
# ## Second order: the Hessian is a covariance
#
# Differentiate the gradient once more. For one row, $\nabla_x \ell = p - \text{onehot}(t)$, and
# the one-hot does not depend on $x$, so the Hessian is the softmax's Jacobian from the top of
# this notebook:
#
# $$H = \frac{\partial^2 \ell}{\partial x\, \partial x^\top} = \frac{\partial p}{\partial x}
#   = \operatorname{diag}(p) - p\,p^\top.$$
#
# Read it as statistics. Draw a class $K$ from the softmax, $P(K = k) = p_k$, and let
# $e = \text{onehot}(K)$. Then $\mathbb{E}[e] = p$ and $\mathbb{E}[e e^\top] = \operatorname{diag}(p)$
# (only one entry of $e$ is 1), so $\operatorname{Cov}(e) = \operatorname{diag}(p) - p p^\top = H$:
# **the Hessian is the covariance of the one-hot under the softmax.** Three facts follow.
#
# * For every direction $u$, $u^\top H u = \operatorname{Var}(u_K) \ge 0$: $H$ is positive
#   semidefinite, its eigenvalues are $\ge 0$, and the loss is **convex in the logits**. (Not
#   in the weights of a deep network: convexity is lost in the layers below the logits.)
# * $H \mathbf{1} = p - p\,(p^\top \mathbf{1}) = 0$: every row sums to 0, and the all-ones
#   vector is an eigenvector with eigenvalue 0. It is the shift direction again: adding a constant
#   to every logit changes nothing, to first order or to second.
# * $H$ does not depend on the target beyond the row's scale (the weight of its class, or the
#   total mass $A = \sum_c q_c$ of a probability target, 1 here). The curvature measures the
#   model's uncertainty, not its error.
#
# `xr.cross_entropy_hessian` gives the dense per-row matrix (for teaching: it holds $C$ numbers
# per logit); for a batch with the mean, each row's matrix is divided by the denominator.
# <!-- zh -->
# ## 二阶导数：Hessian 是一个协方差矩阵
#
# 再对梯度求一次导。对一行来说 $\nabla_x \ell = p - \text{onehot}(t)$，而 one-hot 与 $x$ 无关，
# 所以 Hessian 正是本笔记本开头那个 softmax 的雅可比矩阵：
#
# $$H = \frac{\partial^2 \ell}{\partial x\, \partial x^\top} = \frac{\partial p}{\partial x}
#   = \operatorname{diag}(p) - p\,p^\top.$$
#
# 换成统计的眼光来看：按 softmax 抽一个类别 $K$，$P(K = k) = p_k$，令 $e = \text{onehot}(K)$。
# 那么 $\mathbb{E}[e] = p$，$\mathbb{E}[e e^\top] = \operatorname{diag}(p)$（$e$ 只有一个分量是 1），
# 于是 $\operatorname{Cov}(e) = \operatorname{diag}(p) - p p^\top = H$：
# **Hessian 就是 one-hot 向量在 softmax 分布下的协方差矩阵。** 由此立刻得到三个结论。
#
# * 对任意方向 $u$，$u^\top H u = \operatorname{Var}(u_K) \ge 0$：$H$ 半正定，特征值都 $\ge 0$，
#   损失**对 logits 是凸的**。（对深层网络的权重则不然：凸性在 logits 之下的那些层里丢掉了。）
# * $H \mathbf{1} = p - p\,(p^\top \mathbf{1}) = 0$：每行之和为 0，全 1 向量是特征值为 0 的特征向量。
#   这还是那个平移方向：给所有 logit 加同一个常数，一阶、二阶都没有任何变化。
# * 除了这一行的系数（它所属类别的权重，或概率目标的总质量 $A = \sum_c q_c$，这里是 1）之外，
#   $H$ 与目标无关。曲率反映的是模型的不确定程度，而不是它错了多少。
#
# `xr.cross_entropy_hessian` 给出每一行的稠密矩阵（仅供教学：每个 logit 要占 $C$ 个数）；
# 对一个批次取 mean 时，每一行的矩阵还要除以分母。

# %%
row = np.array([2.0, 1.0, 0.1, -1.0])  # the x of the Jacobian above
p_row = xr.softmax(row)
H = xr.cross_entropy_hessian(row, 0)
onehots = np.eye(len(row))
covariance = sum(p_row[k] * np.outer(onehots[k] - p_row, onehots[k] - p_row)
                 for k in range(len(row)))  # E[(e - p)(e - p)^T] with P(e = onehot(k)) = p_k
print("H =\n", H)
compare(_("nb.05.h.hessian_vs_covariance"), H, covariance)
compare(_("nb.05.h.hessian_vs_jacobian"), H, J)
eigenvalues = np.linalg.eigvalsh(H)
print(_("nb.05.h.eigenvalues"), eigenvalues)
print(_("nb.05.h.smallest_eigenvalue") + f"{eigenvalues.min():.1e}"
      + _("nb.05.h.rank") + f"{np.linalg.matrix_rank(H)}")
print(_("nb.05.h.largest_row_sum") + f"{np.abs(H @ np.ones(len(row))).max():.1e}")
u = np.array([1.0, -2.0, 0.5, 3.0])
print(_("nb.05.h.quadratic_form"))
other_targets = (xr.cross_entropy_hessian(row, 3),
                 xr.cross_entropy_hessian(row, np.array([0.1, 0.2, 0.3, 0.4])))
print(_("nb.05.h.same_for_other_targets"), [bool(np.allclose(H, other, rtol=0, atol=1e-16))
                                            for other in other_targets])
assert np.allclose(H, H.T, rtol=0, atol=0) and eigenvalues.min() > -1e-15
assert np.abs(H.sum(axis=1)).max() < 1e-16 and np.linalg.matrix_rank(H) == len(row) - 1
assert np.isclose(u @ H @ u, p_row @ u**2 - (p_row @ u) ** 2, rtol=1e-14)
assert all(np.allclose(H, other, rtol=0, atol=1e-16) for other in other_targets)

# %% [markdown]
# <!-- en -->
# ## One Newton step beside one gradient step
#
# A small problem with a known answer: one row of four logits $z$ and a *probability* target
# $q = (0.6, 0.25, 0.1, 0.05)$. The loss $\ell(z) = \operatorname{lse}(z) - \langle q, z\rangle$ is
# smallest where $p = q$, that is at $z = \log q$ plus any constant, and its minimum is the
# entropy of $q$. Start from $z = 0$.
#
# A gradient step $z \leftarrow z - \eta\, g$ needs a learning rate. Newton's method takes the
# quadratic model $\ell(z + d) \approx \ell + g^\top d + \frac12 d^\top H d$ and jumps to its
# minimum, $H d = -g$: the curvature chooses the length and the direction. But here $H$ is
# **singular**: $H \mathbf{1} = 0$, so $H^{-1}$ does not exist, and in floating point
# `np.linalg.solve` would divide by a rounding error along $\mathbf{1}$ (or stop at a singular
# matrix). Nothing is lost: the
# loss is flat along $\mathbf{1}$, and $g$ has no component along it (its entries sum to 0), so
# $H d = -g$ has solutions, all equally good, differing only by a shift. Two ways to pick one:
#
# * the **pseudo-inverse**, $d = -H^{+} g$: it inverts $H$ on the directions where it curves and
#   gives 0 on the flat one, so the step is the solution with no shift (its entries sum to 0);
# * **damping**, $d = -(H + \lambda I)^{-1} g$ with a small $\lambda > 0$ (Levenberg-Marquardt):
#   always invertible, and here slightly shorter than the pseudo-inverse step. It is what one
#   uses when the flat directions are not known in advance, or when a step must not be long
#   where the curvature is small.
# <!-- zh -->
# ## 一步牛顿法与一步梯度下降并排比较
#
# 选一个答案已知的小问题：一行四个 logit $z$，目标是一个*概率分布*
# $q = (0.6, 0.25, 0.1, 0.05)$。损失 $\ell(z) = \operatorname{lse}(z) - \langle q, z\rangle$ 在 $p = q$
# 处最小，也就是 $z = \log q$ 再加任意常数，最小值是 $q$ 的熵。从 $z = 0$ 出发。
#
# 梯度下降 $z \leftarrow z - \eta\, g$ 需要一个学习率。牛顿法则用二次模型
# $\ell(z + d) \approx \ell + g^\top d + \frac12 d^\top H d$，直接跳到它的最小值处，即解 $H d = -g$：
# 步长和方向都由曲率决定。但这里的 $H$ 是**奇异的**：$H \mathbf{1} = 0$，$H^{-1}$ 不存在；在浮点运算中
# `np.linalg.solve` 会在 $\mathbf{1}$ 方向上除以一个舍入误差（或者干脆报告矩阵奇异）。其实并没有损失什么：损失沿 $\mathbf{1}$
# 是平的，而 $g$ 在这个方向上没有分量（各分量之和为 0），所以 $H d = -g$ 有解，而且所有解一样好，
# 彼此只差一个平移。有两种办法挑出一个解：
#
# * **伪逆** $d = -H^{+} g$：在有曲率的方向上求逆，在平坦的方向上取 0，所以得到的是不含平移的那个解
#   （各分量之和为 0）；
# * **阻尼** $d = -(H + \lambda I)^{-1} g$，$\lambda > 0$ 取得很小（Levenberg-Marquardt）：总是可逆，
#   在这里比伪逆的步子略短一点。事先不知道哪些方向是平的，或者不希望在曲率很小的地方迈出太大的步子时，
#   就用这个办法。

# %%
q = np.array([0.6, 0.25, 0.1, 0.05])
entropy = float(-(q * np.log(q)).sum())  # the smallest loss: the cross-entropy of q with itself
z0 = np.zeros(4)
g0 = xr.cross_entropy_grad(z0, q)
H0 = xr.cross_entropy_hessian(z0, q)
ones = np.ones(4)
shift_change = abs(float(xr.cross_entropy(z0 + 5 * ones, q)) - float(xr.cross_entropy(z0, q)))
print(_("nb.05.h.rank_of_h0") + f"{np.linalg.matrix_rank(H0)}" + _("nb.05.h.sum_of_g")
      + f"{g0.sum():.1e}" + _("nb.05.h.loss_shifted") + f"{shift_change:.1e}")
steps_from_z0 = {
    _("nb.05.h.gradient_step"): -1.0 * g0,
    _("nb.05.h.newton_pinv"): -np.linalg.pinv(H0) @ g0,
    _("nb.05.h.newton_damped"): -np.linalg.solve(H0 + 1e-3 * np.eye(4), g0),
}
print(_("nb.05.h.before"))
for name, d in steps_from_z0.items():
    after = float(xr.cross_entropy(z0 + d, q))
    model = float(xr.cross_entropy(z0, q)) + g0 @ d + 0.5 * d @ H0 @ d
    shown = d.round(6) + 0.0  # + 0.0: no -0. for a rounding-sized entry
    print(_("nb.05.h.step_row"))
newton = steps_from_z0[_("nb.05.h.newton_pinv")]
damped = steps_from_z0[_("nb.05.h.newton_damped")]
print(_("nb.05.h.damped_vs_pinv") + f"{np.abs(damped - newton).max():.1e}")
compare(_("nb.05.h.h_d_vs_minus_g"), H0 @ newton, -g0)
assert np.linalg.matrix_rank(H0) == 3 and abs(newton.sum()) < 1e-12
assert float(xr.cross_entropy(z0 + newton, q)) < float(xr.cross_entropy(z0 - g0, q))
assert np.linalg.norm(damped) < np.linalg.norm(newton)
newton_model = float(xr.cross_entropy(z0, q)) + g0 @ newton + 0.5 * newton @ H0 @ newton
assert newton_model < entropy  # the quadratic model promises less than the minimum

# %% [markdown]
# <!-- en -->
# One Newton step removes more than 90% of the excess loss (the loss above the entropy), the
# gradient step less than half of it. The quadratic model is only a model: for the Newton step it
# forecasts a loss below the entropy, lower than the loss can ever be. Far from the minimum the
# step is a good guess, not the answer, which is why Newton's method is iterated, and why
# practical codes damp it or search along it. Repeat both: Newton's method converges *quadratically*
# (near the minimum the number of correct digits roughly doubles with each step) and gradient
# descent linearly. The right plot shows the singular direction: along $\mathbf{1}$ the loss
# does not move at all, along the Newton step it is a convex curve with its minimum near $s = 1$.
# <!-- zh -->
# 一步牛顿法去掉了九成以上的多余损失（超出熵的那部分），一步梯度下降去掉的不到一半。二次模型毕竟只是模型：
# 它对牛顿步预测的损失比熵还低，而损失不可能低于熵。离最小值较远时，牛顿步只是一个好的猜测，而不是答案；
# 所以牛顿法要迭代，实际的代码还会给它加阻尼，或者沿着它做线搜索。把两种方法都重复下去：牛顿法是*二次*收敛的（接近最小值时，每走一步，正确的位数大约翻一倍），梯度下降则是线性收敛。
# 右图显示了那个奇异方向：沿 $\mathbf{1}$ 损失纹丝不动，沿牛顿步则是一条凸曲线，最小值在 $s = 1$ 附近。

# %%
def descend(step, steps):
    """max |gradient| at each iterate of z <- z + step(z, gradient), from z = 0."""
    z, norms = np.zeros(4), []
    for _ in range(steps):
        g = xr.cross_entropy_grad(z, q)
        norms.append(float(np.abs(g).max()))
        z = z + step(z, g)
    return np.array(norms), z


gd_norms, z_gd = descend(lambda z, g: -1.0 * g, 1000)
newton_norms, z_newton = descend(
    lambda z, g: -np.linalg.pinv(xr.cross_entropy_hessian(z, q)) @ g, 6)
print(_("nb.05.h.newton_norms"), [f"{n:.1e}" for n in newton_norms])
print(_("nb.05.h.gd_norms"), [f"{n:.1e}" for n in gd_norms[:6]])
catch_up = int(np.argmax(gd_norms < newton_norms[4]))
print(_("nb.05.h.catch_up"))
print(_("nb.05.h.softmax_of_newton"), xr.softmax(z_newton))
excess = [float(xr.cross_entropy(z0 + d, q)) - entropy for d in steps_from_z0.values()]
assert excess[1] < 0.1 * (float(xr.cross_entropy(z0, q)) - entropy) and excess[0] > excess[1]
assert excess[0] > 0.5 * (float(xr.cross_entropy(z0, q)) - entropy)
assert gd_norms.min() < newton_norms[4] and catch_up > 20
assert np.allclose(xr.softmax(z_newton), q, rtol=1e-12, atol=0)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.semilogy(gd_norms[:40], "o-", markersize=3, label=_("nb.05.h.plot.gradient_descent"))
left.semilogy(newton_norms, "s-", label=_("nb.05.h.plot.newton"))
left.set_xlabel(_("nb.05.plot.step"))
left.set_ylabel("max |p - q|")
left.set_title(_("nb.05.h.plot.same_problem"))
left.legend(fontsize=8)
s = np.linspace(-1, 3, 81)
right.plot(s, [float(xr.cross_entropy(z0 + si * ones, q)) for si in s],
           label=_("nb.05.h.plot.along_ones"))
right.plot(s, [float(xr.cross_entropy(z0 + si * newton, q)) for si in s],
           label=_("nb.05.h.plot.along_newton"))
right.axhline(entropy, color="gray", linewidth=0.8, linestyle="--",
              label=_("nb.05.h.plot.entropy"))
right.set_xlabel(_("nb.05.h.plot.distance"))
right.set_ylabel("cross_entropy(z0 + s d, q)")
right.set_title(_("nb.05.h.plot.two_directions"))
right.legend(fontsize=8)
plt.show()

# %% [markdown]
# <!-- en -->
# ## The Hessian-vector product, checked against the library's own gradient
#
# A language model has $C = 50\,000$ classes: the dense $H$ of one row would hold 2.5 billion
# numbers. Second-order methods (Newton-CG, the curvature estimates of some optimisers, influence
# functions) use only products $H v$, which for cross-entropy cost $O(C)$ per row, like the
# gradient:
#
# $$H v = p \odot (v - \langle p, v\rangle),$$
#
# times the row's scale $w_{t}/D$ (more with `softcap` and `z_loss`, whose second derivatives are
# not zero; `xent_ref/hvp.py` derives them). `xr.cross_entropy_hvp(input, target, v, ...)` computes
# it with every option of the loss. The check needs no second derivative at all: $H v$ is the
# derivative of the gradient in the direction $v$, so a central difference of
# `xr.cross_entropy_grad` along $v$,
# $\bigl(\nabla L(x + h v) - \nabla L(x - h v)\bigr) / 2h$, must agree with it to about $h^2$.
# The 4x3 example, one random direction:
# <!-- zh -->
# ## Hessian-向量积：用库自己的梯度来核对
#
# 语言模型有 $C = 50\,000$ 个类别：一行的稠密 $H$ 就有 25 亿个数。二阶方法（Newton-CG、某些优化器里的
# 曲率估计、影响函数）只用到乘积 $H v$，而对交叉熵来说它每行只需 $O(C)$ 的计算量，和梯度一样：
#
# $$H v = p \odot (v - \langle p, v\rangle),$$
#
# 再乘上这一行的系数 $w_{t}/D$（用了 `softcap` 和 `z_loss` 时还有别的项，它们的二阶导数不为零；
# 推导见 `xent_ref/hvp.py`）。`xr.cross_entropy_hvp(input, target, v, ...)` 支持损失的全部选项。
# 核对时根本不需要二阶导数：$H v$ 就是梯度沿方向 $v$ 的导数，所以沿 $v$ 对 `xr.cross_entropy_grad`
# 做中心差分，$\bigl(\nabla L(x + h v) - \nabla L(x - h v)\bigr) / 2h$，必须与它吻合到 $h^2$ 量级。
# 仍用 4x3 的例子，取一个随机方向：

# %%
direction = np.random.default_rng(5).standard_normal(logits.shape)
h = 1e-5
hvp_cases = {
    _("nb.05.h.hvp_plain"): {},
    _("nb.05.h.hvp_weight_ignore"): options,
    _("nb.05.h.hvp_llm_options"): {"label_smoothing": 0.1, "softcap": 1.5, "z_loss": 1e-2},
}
for name, opts in hvp_cases.items():
    exact = xr.cross_entropy_hvp(logits, labels, direction, **opts)
    numeric = (xr.cross_entropy_grad(logits + h * direction, labels, **opts)
               - xr.cross_entropy_grad(logits - h * direction, labels, **opts)) / (2 * h)
    compare(name, exact, numeric)
    assert np.abs(exact - numeric).max() < 1e-9
dense = np.einsum("ncd,nd->nc", xr.cross_entropy_hessian(logits, labels, **options), direction)
compare(_("nb.05.h.hvp_vs_dense"), xr.cross_entropy_hvp(logits, labels, direction, **options),
        dense)
probs4 = xr.softmax(logits, axis=1)
by_formula = probs4 * (direction - (probs4 * direction).sum(axis=1, keepdims=True)) / len(logits)
compare(_("nb.05.h.hvp_vs_formula"), xr.cross_entropy_hvp(logits, labels, direction), by_formula)
without_outer = probs4 * direction / len(logits)  # diag(p) v: the "- p p^T" forgotten
numeric = (xr.cross_entropy_grad(logits + h * direction, labels)
           - xr.cross_entropy_grad(logits - h * direction, labels)) / (2 * h)
print(_("nb.05.h.without_outer") + f"{np.abs(without_outer - numeric).max():.1e}")
assert np.abs(without_outer - numeric).max() > 1e-3
assert np.allclose(by_formula, xr.cross_entropy_hvp(logits, labels, direction), rtol=1e-14, atol=0)

# %% [markdown]
# <!-- en -->
# The finite difference agrees to $10^{-11}$ or better in every case, including the softcap, whose
# second derivative adds a diagonal term that a product with $\operatorname{diag}(p) - pp^\top$
# alone would miss. The version that forgets the outer product, $\operatorname{diag}(p)\, v$, is
# wrong by a visible amount: it is the mistake the corpus names `hvp-missing-outer-product`.
# <!-- zh -->
# 在每种情况下，有限差分都与之吻合到 $10^{-11}$ 或更好，包括 softcap：它的二阶导数在对角线上多出一项，
# 只乘 $\operatorname{diag}(p) - pp^\top$ 会漏掉这一项。忘掉外积项的版本 $\operatorname{diag}(p)\, v$
# 错得一眼就能看出来：这就是语料库里称为 `hvp-missing-outer-product` 的错误。
