# %% [markdown]
# <!-- en -->
# # 9. Backprop by hand through every step of the loss
#
# Notebook 5 derived the gradient of the cross-entropy in one stroke:
# $\partial \ell / \partial x = (p - \text{onehot}(t)) / N$ for a mean over $N$ rows.
# Here we take the long way, as Karpathy's makemore part 4 ("Becoming a Backprop
# Ninja") does: write the forward pass **unfused**, one NumPy line per operation
# (max shift, exponential, sum, logarithm, gather, mean), keep every intermediate,
# and walk back through them one at a time, each step a local derivative times the
# gradient arriving from above. Every intermediate's gradient is then compared with
# a reference by `cmp(name, ours, reference)`, which prints whether the two are
# bit-for-bit equal, whether they are close (`np.allclose`) and their largest
# difference. Two references: the library's own gradient functions where one
# computes that quantity (`xr.nll_loss_grad`, `xr.cross_entropy_grad`), and for
# every intermediate a central finite difference of the rest of the forward pass,
# in float64.
#
# The punch line is the max shift. It is there only so that `exp` cannot overflow;
# the loss does not depend on it, so its gradient must be exactly zero, and the
# walk back shows that it is (to rounding). This notebook also exists in Chinese,
# `zh/09_backprop_by_hand.ipynb`, built from the same source.
# <!-- zh -->
# # 9. 手工反向传播：逐步走过损失的每一步
#
# 第 5 个笔记本一步推出了交叉熵的梯度：对 $N$ 行取平均时，
# $\partial \ell / \partial x = (p - \text{onehot}(t)) / N$。这里我们走远路，做法与 Karpathy
# 的 makemore 第 4 讲（"Becoming a Backprop Ninja"）相同：把前向计算**拆开**写，每个运算一行
# NumPy（减去最大值、取指数、求和、取对数、按类别索引取值、求平均），保留每一个中间量，再一个
# 一个往回走：每一步都是局部导数乘以从上游传来的梯度。每个中间量的梯度都用
# `cmp(name, ours, reference)` 与参考值比较，打印两者是否逐位相等、是否近似相等
# （`np.allclose`）以及最大差。参考值有两种：库里能算出这个量的梯度函数
# （`xr.nll_loss_grad`、`xr.cross_entropy_grad`），以及对每个中间量都做的中心差分——对前向
# 计算的剩余部分求数值导数，用 float64。
#
# 关键在于减去的最大值。它只是为了让 `exp` 不溢出；损失并不依赖它，所以它的梯度必须正好是零，
# 往回走的计算也表明确实如此（只差舍入误差）。本笔记本与英文版 `../09_backprop_by_hand.ipynb`
# 由同一个源文件生成，两者的数字完全一致。

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr

# [zh] Chinese plot labels: Noto Sans SC from the pylopdf-fonts-zh-cn package (the notebooks extra)
import pylopdf_fonts_zh_cn  # [zh]
from matplotlib import font_manager  # [zh]
font_manager.fontManager.addfont(pylopdf_fonts_zh_cn.sans_path())  # [zh]
plt.rcParams["font.sans-serif"] = ["Noto Sans SC", *plt.rcParams["font.sans-serif"]]  # [zh]

np.set_printoptions(precision=5, suppress=True)


def cmp(name, ours, reference):
    """Print whether ``ours`` equals ``reference`` exactly, approximately, and by how
    much; stop the notebook if they are not even approximately equal."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape, (name, ours.shape, reference.shape)
    exact = bool(np.array_equal(ours, reference))
    approx = bool(np.allclose(ours, reference, rtol=1e-6, atol=1e-9))
    maxdiff = float(np.abs(ours - reference).max())
    print(_("nb.09.cmp"))
    assert approx, name


def central_differences(f, x, h=1e-5):
    """The numerical gradient of the scalar function f at the array x: one step of
    +-h along each unit direction (a row of the identity), one element at a time."""
    directions = h * np.eye(x.size).reshape(x.size, *x.shape)
    slopes = [(f(x + step) - f(x - step)) / (2 * h) for step in directions]
    return np.array(slopes).reshape(x.shape)

# %% [markdown]
# <!-- en -->
# ## The forward pass, one operation per line
#
# Eight rows of ten logits (the shape of a small batch of the digits of notebook
# 10) and one class index per row. With $m_i = \max_c x_{ic}$,
#
# $$z = x - m, \quad e = \exp(z), \quad S_i = \sum_c e_{ic}, \quad
#   \log p = z - \log S, \quad \ell = -\frac{1}{N} \sum_i \log p_{i, t_i}.$$
#
# `forward` computes each intermediate by name. Given `at=NAME` and `value=...` it
# uses `value` for that intermediate instead of computing it, and recomputes
# everything after it: that is the function "the rest of the forward pass" whose
# finite differences give the reference gradient of `NAME`, with every quantity
# that does not depend on `NAME` held fixed, exactly what backpropagation means by
# the gradient at one node.
# <!-- zh -->
# ## 前向计算：一个运算一行
#
# 8 行、每行 10 个 logit（第 10 个笔记本里手写数字小批量的形状），每行一个类别索引。记
# $m_i = \max_c x_{ic}$，
#
# $$z = x - m, \quad e = \exp(z), \quad S_i = \sum_c e_{ic}, \quad
#   \log p = z - \log S, \quad \ell = -\frac{1}{N} \sum_i \log p_{i, t_i}.$$
#
# `forward` 按名字算出每个中间量。传入 `at=NAME` 和 `value=...` 时，它用 `value` 代替这个
# 中间量，并重新计算它之后的一切：这就是"前向计算的剩余部分"。对它做有限差分，得到 `NAME`
# 的参考梯度；不依赖 `NAME` 的量都保持不变，这正是反向传播中"某个节点上的梯度"的含义。

# %%
rng = np.random.default_rng(0)
N, C = 8, 10
logits = rng.normal(scale=2.0, size=(N, C))
target = rng.integers(0, C, size=N)
rows = np.arange(N)


def forward(logits, target, at=None, value=None):
    """The loss and every intermediate; ``value`` replaces the intermediate ``at``."""
    v = {}

    def node(name, compute):
        v[name] = value if name == at else compute()
        return v[name]

    logit_maxes = node("logit_maxes", lambda: logits.max(axis=1, keepdims=True))
    norm_logits = node("norm_logits", lambda: logits - logit_maxes)
    counts = node("counts", lambda: np.exp(norm_logits))
    counts_sum = node("counts_sum", lambda: counts.sum(axis=1, keepdims=True))
    log_counts_sum = node("log_counts_sum", lambda: np.log(counts_sum))
    log_probs = node("log_probs", lambda: norm_logits - log_counts_sum)
    picked = node("picked", lambda: log_probs[np.arange(len(target)), target])
    loss = node("loss", lambda: -picked.mean())
    return loss, v


loss, v = forward(logits, target)
print(_("nb.09.loss_unfused"), f"{loss:.12f}")
print(_("nb.09.loss_library"), f"{xr.cross_entropy(logits, target):.12f}")
cmp("loss", loss, xr.cross_entropy(logits, target))

# %% [markdown]
# <!-- en -->
# ## Backward, one step at a time
#
# Each line below is one local rule, read off the forward line it undoes:
#
# * `loss = -picked.mean()`: each of the $N$ picked values gets $-1/N$.
# * `picked = log_probs[rows, target]`: a gather. Its backward is a scatter: the
#   picked entries receive `dpicked`, every other entry of `log_probs` gets 0.
# * `log_probs = norm_logits - log_counts_sum`: a subtraction with broadcasting.
#   `norm_logits` receives the gradient as it is; `log_counts_sum` (one number per
#   row, broadcast over the $C$ columns) receives minus the **sum over the row**.
#   Broadcasting forward is summing backward.
# * `log_counts_sum = log(counts_sum)`: times $1 / S$.
# * `counts_sum = counts.sum(1)`: a sum copies its gradient to every summand.
# * `counts = exp(norm_logits)`: times $e^z$, which is `counts` itself. `norm_logits`
#   feeds two branches (directly into `log_probs`, and through `counts`), so its
#   gradient is the **sum** of the two.
# * `norm_logits = logits - logit_maxes`: `logits` receives the gradient as it is,
#   `logit_maxes` minus its row sum. The max is taken at one column per row, so
#   `logit_maxes`' gradient flows back to that column only.
# <!-- zh -->
# ## 反向：一次一步
#
# 下面每一行都是一条局部规则，对应它要"撤销"的那一行前向计算：
#
# * `loss = -picked.mean()`：$N$ 个被取出的值每个得到 $-1/N$。
# * `picked = log_probs[rows, target]`：按索引取值。它的反向是按索引放回：被取出的位置得到
#   `dpicked`，`log_probs` 的其余位置得到 0。
# * `log_probs = norm_logits - log_counts_sum`：带广播的减法。`norm_logits` 原样收到梯度；
#   `log_counts_sum`（每行一个数，广播到 $C$ 列）收到**整行之和**的相反数。前向的广播，就是
#   反向的求和。
# * `log_counts_sum = log(counts_sum)`：乘以 $1 / S$。
# * `counts_sum = counts.sum(1)`：求和把梯度原样复制给每一个加数。
# * `counts = exp(norm_logits)`：乘以 $e^z$，也就是 `counts` 本身。`norm_logits` 流向两条
#   支路（直接进入 `log_probs`，以及经过 `counts`），所以它的梯度是两条支路之**和**。
# * `norm_logits = logits - logit_maxes`：`logits` 原样收到梯度，`logit_maxes` 收到整行之和
#   的相反数。每行的最大值取自其中一列，所以 `logit_maxes` 的梯度只流回那一列。

# %%
dloss = 1.0
dpicked = -np.full(N, dloss / N)
dlog_probs = np.zeros_like(v["log_probs"])
dlog_probs[rows, target] = dpicked
dnorm_logits = dlog_probs.copy()  # the direct branch into log_probs
dlog_counts_sum = -dlog_probs.sum(axis=1, keepdims=True)
dcounts_sum = dlog_counts_sum / v["counts_sum"]
dcounts = np.ones_like(v["counts"]) * dcounts_sum
dnorm_logits += v["counts"] * dcounts  # the branch through exp: the two add up
dlogit_maxes = -dnorm_logits.sum(axis=1, keepdims=True)
dlogits = dnorm_logits.copy()
dlogits[rows, v["norm_logits"].argmax(axis=1)] += dlogit_maxes[:, 0]

ours = {"picked": dpicked, "log_probs": dlog_probs, "log_counts_sum": dlog_counts_sum,
        "counts_sum": dcounts_sum, "counts": dcounts, "norm_logits": dnorm_logits,
        "logit_maxes": dlogit_maxes}
print(_("nb.09.against_finite_differences"))
for name, grad in ours.items():
    numeric = central_differences(lambda z: forward(logits, target, at=name, value=z)[0], v[name])
    cmp("d" + name, grad, numeric)
cmp("dlogits", dlogits, central_differences(lambda z: forward(z, target)[0], logits))

# %% [markdown]
# <!-- en -->
# Where the library computes the same quantity, the hand-written gradient must
# match it too: $\partial \ell / \partial \log p$ is the gradient of `nll_loss` at
# the log-probabilities, and $\partial \ell / \partial z$ and $\partial \ell / \partial x$
# are both the gradient of `cross_entropy` (at $z$ and at $x$: the shift does not
# change the probabilities).
# <!-- zh -->
# 凡是库里能算出同一个量的地方，手写的梯度也必须与之相符：$\partial \ell / \partial \log p$
# 是 `nll_loss` 在对数概率处的梯度；$\partial \ell / \partial z$ 和
# $\partial \ell / \partial x$ 都是 `cross_entropy` 的梯度（分别在 $z$ 和 $x$ 处：平移不改变
# 概率）。

# %%
print(_("nb.09.against_the_library"))
cmp("dlog_probs", dlog_probs, xr.nll_loss_grad(v["log_probs"], target))
cmp("dnorm_logits", dnorm_logits, xr.cross_entropy_grad(v["norm_logits"], target))
cmp("dlogits", dlogits, xr.cross_entropy_grad(logits, target))

# %% [markdown]
# <!-- en -->
# ## The max shift gets zero gradient
#
# `dlogit_maxes` is minus the row sum of `dnorm_logits`, and every row of
# `dnorm_logits` is $(p_i - \text{onehot}(t_i)) / N$, whose entries sum to
# $(1 - 1) / N = 0$. What is left is rounding, about $10^{-17}$: subtracting the max
# changes nothing the loss can see. That is why a fused kernel never propagates
# anything through it (and why PyTorch's autograd, which does, gets the same
# answer).
# <!-- zh -->
# ## 减去的最大值，梯度为零
#
# `dlogit_maxes` 是 `dnorm_logits` 每行之和的相反数，而 `dnorm_logits` 的每一行都是
# $(p_i - \text{onehot}(t_i)) / N$，各元素之和为 $(1 - 1) / N = 0$。剩下的只是舍入误差，约
# $10^{-17}$：减去最大值不会改变损失能"看到"的任何东西。所以融合内核从不经过它传播梯度
# （PyTorch 的自动求导会经过它，结果也一样）。

# %%
print(_("nb.09.dlogit_maxes"), dlogit_maxes[:, 0])
print(_("nb.09.largest_dlogit_maxes"), f"{np.abs(dlogit_maxes).max():.1e}")
assert np.abs(dlogit_maxes).max() < 1e-15

# %% [markdown]
# <!-- en -->
# ## The whole walk in one line, and what `dlogits` looks like
#
# Collapsing the chain gives back notebook 5's formula, $(p - \text{onehot}(t)) / N$,
# computed here from the forward's own intermediates. As an image (rows are
# samples, columns classes), `dlogits` is small and positive everywhere (each class
# pushed down by its probability) except at the target of each row, marked with a
# dot, where it is negative: $(p_t - 1) / N$, pulling the right class up. Every row
# sums to zero: the pull on the target is exactly the total push on the others.
# <!-- zh -->
# ## 整条链合成一行，以及 `dlogits` 的样子
#
# 把整条链合起来，就回到第 5 个笔记本的公式 $(p - \text{onehot}(t)) / N$，这里用前向计算自己
# 的中间量算出。画成图（行是样本，列是类别），`dlogits` 处处是小的正数（每个类别按自己的概率被
# 往下压），只有每行的目标处（用圆点标出）是负数：$(p_t - 1) / N$，把正确的类别往上拉。每行之和
# 为零：对目标的拉力恰好等于对其余类别推力的总和。

# %%
probs = v["counts"] / v["counts_sum"]
fused = (probs - np.eye(C)[target]) / N
print(_("nb.09.fused_vs_step_by_step"))
cmp("dlogits", fused, dlogits)
print(_("nb.09.largest_row_sum"), f"{np.abs(dlogits.sum(axis=1)).max():.1e}")

fig, ax = plt.subplots(figsize=(6, 4))
limit = np.abs(dlogits).max()
image = ax.imshow(dlogits, cmap="RdBu_r", vmin=-limit, vmax=limit)
ax.scatter(target, rows, s=12, color="black")
ax.set_xlabel(_("nb.09.plot_class"))
ax.set_ylabel(_("nb.09.plot_sample"))
ax.set_title("dlogits = (softmax(logits) - onehot(target)) / N", fontsize=10)
fig.colorbar(image, ax=ax, shrink=0.8)
plt.show()

# %% [markdown]
# <!-- en -->
# ## Where to go next
#
# Notebook 10 uses exactly this gradient, written by hand, to train a classifier
# on real handwritten digits; notebook 11 ports the forward and backward pass to C
# and lets the golden corpus judge it.
# <!-- zh -->
# ## 接下来
#
# 第 10 个笔记本用的正是这个手写的梯度，在真实的手写数字上训练一个分类器；第 11 个笔记本把前向和
# 反向计算移植到 C，交给参考用例集（golden corpus）来评判。
