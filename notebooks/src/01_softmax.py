# %% [markdown]
# <!-- en -->
# # 1. Softmax and log-softmax, from first principles
#
# Every cross-entropy loss in this library starts the same way: turn a row of
# raw scores (logits) into probabilities. This notebook builds that step by
# hand, shows where the naive formula breaks, and ends at the library calls
# `xr.softmax` and `xr.log_softmax`.
#
# Sources: document 000, "pytorch交叉熵损失详细计算步骤" (Detailed steps of the
# PyTorch cross-entropy loss), writes the loss as
# `loss(x, class) = -log(exp(x[class]) / sum(exp(x)))`; document 002,
# "Softmax损失函数计算详解" (The softmax loss, computed in detail), defines the
# loss as `-sum_k y_k log p_k` over softmax probabilities. This notebook also
# exists in Chinese, `zh/01_softmax.ipynb`, built from the same source.
# <!-- zh -->
# # 1. 从零开始的 softmax 与 log-softmax
#
# 本库里的每一个交叉熵损失都从同一步开始：把一行原始分数（logits）变成概率。本笔记本亲手搭出这一步，
# 指出朴素公式在哪里会出问题，最后落到库函数 `xr.softmax` 和 `xr.log_softmax` 上。
#
# 来源：文档 000《pytorch交叉熵损失详细计算步骤》把损失写成
# `loss(x, class) = -log(exp(x[class]) / sum(exp(x)))`；文档 002《Softmax损失函数计算详解》把损失定义为
# softmax 概率上的 `-sum_k y_k log p_k`。本笔记本与英文版 `../01_softmax.ipynb` 由同一个源文件生成，
# 两者的数字完全一致。

# %%
import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr
from xent_ref import textbook

np.set_printoptions(precision=7, suppress=True)


# %% [markdown]
# <!-- en -->
# ## The definition
#
# For a row of logits $z_1, \dots, z_C$,
#
# $$\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}.$$
#
# Every output is positive and the row sums to 1, so it can be read as a
# probability distribution over the $C$ classes. We write it in three lines of
# NumPy, straight from the formula, and try it on the first row of the worked
# example in document 001, "关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数".
# The library keeps the same three lines as `xent_ref.textbook.softmax`: its
# textbook module writes each function as the formula reads, and its tests hold
# those versions equal to the production ones on ordinary inputs.
# <!-- zh -->
# ## 定义
#
# 对一行 logits $z_1, \dots, z_C$，
#
# $$\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}.$$
#
# 每个输出都为正，一行之和为 1，所以可以看作 $C$ 个类别上的概率分布。我们照着公式用三行 NumPy 写出来，
# 拿文档 001《关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数》例题的第一行来试。库里在
# `xent_ref.textbook.softmax` 保留了同样的三行：textbook 模块按公式的字面写出每个函数，测试保证这些版本
# 在普通输入上与正式实现相等。

# %%
def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum()


row = np.array([0.9, 0.1])
print(_("nb.01.naive"), naive_softmax(row))
print(_("nb.01.textbook"), textbook.softmax(row))
print(_("nb.01.library"), xr.softmax(row))
assert np.allclose(naive_softmax(row), xr.softmax(row), rtol=1e-15)
assert np.array_equal(textbook.softmax(row), naive_softmax(row))
assert abs(xr.softmax(row).sum() - 1) < 1e-15

# %% [markdown]
# <!-- en -->
# ## Why the library subtracts the maximum
#
# `exp` overflows for arguments above about 709.8 in float64 (88.7 in float32).
# Logits that large are unusual but legal, and the formula then divides
# infinity by infinity (the textbook version too: it shows the formula, and
# its docstring sends you to the production version for this):
# <!-- zh -->
# ## 为什么库要减去最大值
#
# 在 float64 中，`exp` 的自变量超过约 709.8 就会溢出（float32 中是 88.7）。这么大的 logits 不常见，
# 但完全合法，这时公式就成了无穷大除以无穷大（textbook 版本也一样：它只是展示公式，它的文档字符串
# 会告诉你这种情况去看正式实现）：

# %%
big = np.array([1000.0, 999.0, 998.0])
with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
    print(_("nb.01.naive"), naive_softmax(big))
    print(_("nb.01.textbook"), textbook.softmax(big))
print(_("nb.01.library"), xr.softmax(big))
with np.errstate(over="ignore", invalid="ignore"):
    assert np.isnan(naive_softmax(big)).all() and np.isnan(textbook.softmax(big)).all()
assert np.allclose(xr.softmax(big), xr.softmax(big - 1000.0), rtol=1e-15)

# %% [markdown]
# <!-- en -->
# The fix costs nothing: softmax does not change when the same constant is
# added to every logit, because $e^{z_i - m} / \sum_j e^{z_j - m}$ cancels
# $e^{-m}$ above and below. Choosing $m = \max_j z_j$ makes the largest
# exponent exactly $e^0 = 1$, so nothing overflows and the sum is at least 1.
# <!-- zh -->
# 这个修正不花任何代价：给每个 logit 加上同一个常数，softmax 不变，因为
# $e^{z_i - m} / \sum_j e^{z_j - m}$ 的分子分母里的 $e^{-m}$ 互相抵消。取 $m = \max_j z_j$，最大的那个
# 指数恰好是 $e^0 = 1$，于是不会溢出，而且分母至少为 1。

# %%
def shifted_softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


print(shifted_softmax(big))
assert np.allclose(shifted_softmax(big), xr.softmax(big), rtol=1e-15)
for shift in (-50.0, 3.0, 700.0):
    assert np.allclose(xr.softmax(row + shift), xr.softmax(row), rtol=1e-14)

# %% [markdown]
# <!-- en -->
# ## Log-softmax and log-sum-exp
#
# The loss needs $\log p$, not $p$. Taking the log of a softmax that has
# underflowed to 0 gives $-\infty$, although the true value is an ordinary
# number. Work in logs instead:
#
# $$\log \operatorname{softmax}(z)_i = z_i - \operatorname{lse}(z), \qquad
# \operatorname{lse}(z) = m + \log \sum_j e^{z_j - m}.$$
#
# `lse` (log-sum-exp) is the same max shift again, and the result never
# forms the tiny probability at all.
# <!-- zh -->
# ## log-softmax 与 log-sum-exp
#
# 损失需要的是 $\log p$ 而不是 $p$。对已经下溢成 0 的 softmax 取对数会得到 $-\infty$，而真实值只是一个
# 普通的数。改为在对数域里计算：
#
# $$\log \operatorname{softmax}(z)_i = z_i - \operatorname{lse}(z), \qquad
# \operatorname{lse}(z) = m + \log \sum_j e^{z_j - m}.$$
#
# `lse`（log-sum-exp）用的还是同样的减最大值技巧，而且整个过程根本不会算出那个极小的概率。

# %%
far = np.array([0.0, -1000.0])
with np.errstate(divide="ignore"):
    print("log(softmax):", np.log(shifted_softmax(far)))
print("log_softmax :", xr.log_softmax(far))


def lse(z):
    m = z.max()
    return m + np.log(np.exp(z - m).sum())


print("z - lse(z)  :", far - lse(far))
assert xr.log_softmax(far)[1] == -1000.0
assert np.allclose(far - lse(far), xr.log_softmax(far), rtol=1e-15, atol=0)

# %% [markdown]
# <!-- en -->
# The plot follows the second class of the logits $(0, -d)$ as the gap $d$
# grows. The exact answer is a straight line, $-\log(1 + e^{d}) \approx -d$.
# `log(softmax)` follows it until $e^{-d}$ underflows (near $d = 745$ in
# float64), then falls to $-\infty$; `log_softmax` stays on the line.
# <!-- zh -->
# 下图跟踪 logits $(0, -d)$ 中第二个类别随差距 $d$ 增大的情况。精确答案是一条直线
# $-\log(1 + e^{d}) \approx -d$。`log(softmax)` 一直贴着它，直到 $e^{-d}$ 下溢（float64 中在 $d = 745$
# 附近），然后掉到 $-\infty$；`log_softmax` 始终在直线上。

# %%
gaps = np.linspace(0, 800, 401)
logits = np.stack([np.zeros_like(gaps), -gaps], axis=1)
with np.errstate(divide="ignore"):
    naive_log = np.log(xr.softmax(logits, axis=1))[:, 1]
stable_log = xr.log_softmax(logits, axis=1)[:, 1]

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(gaps, stable_log, label="log_softmax (log-sum-exp)", linewidth=3, alpha=0.5)
finite = np.isfinite(naive_log)
ax.plot(gaps[finite], naive_log[finite], "k--", label="log(softmax): finite part")
first_inf = gaps[~finite][0]
ax.axvline(first_inf, color="red", linestyle=":", label=f"log(softmax) = -inf from d = {first_inf:g}")
ax.set_xlabel("gap d between the logits (0, -d)")
ax.set_ylabel("log p of the second class")
ax.legend()
ax.set_title("Underflow: log of softmax versus log-softmax")
plt.show()
print(_("nb.01.log_softmax_first_gives_inf"))
assert 740 < first_inf < 750 and np.isfinite(stable_log).all()

# %% [markdown]
# <!-- en -->
# ## Temperature
#
# Dividing the logits by a temperature $T$ before the softmax changes how
# sharp the distribution is without changing the order of the classes:
# $T \to 0$ puts all the mass on the largest logit, $T \to \infty$ spreads it
# evenly. The entropy $-\sum p \log p$ measures the spread (at most $\log C$).
# <!-- zh -->
# ## 温度
#
# 在 softmax 之前把 logits 除以温度 $T$，会改变分布的尖锐程度，但不改变类别的先后顺序：$T \to 0$ 时
# 全部概率集中到最大的 logit 上，$T \to \infty$ 时均匀摊开。熵 $-\sum p \log p$ 衡量摊开的程度
# （最大为 $\log C$）。

# %%
scores = np.array([2.0, 1.0, 0.5, -0.5, -1.0])
temperatures = np.geomspace(0.1, 10, 60)
table = np.array([xr.softmax(scores / t) for t in temperatures])
entropy = -(table * np.log(table)).sum(axis=1)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for c in range(len(scores)):
    left.plot(temperatures, table[:, c], label=f"class {c} (logit {scores[c]:+g})")
left.set_xscale("log")
left.set_xlabel("temperature T")
left.set_ylabel("softmax(z / T)")
left.legend(fontsize=8)
right.plot(temperatures, entropy)
right.axhline(np.log(len(scores)), color="gray", linestyle=":", label="log C (uniform)")
right.set_xscale("log")
right.set_xlabel("temperature T")
right.set_ylabel("entropy (nats)")
right.legend()
fig.suptitle("Temperature sharpens (T < 1) or flattens (T > 1) the softmax")
plt.show()

for t in (0.1, 1.0, 10.0):
    print(f"T = {t:>4}: {xr.softmax(scores / t)}")
assert np.all(np.diff(entropy) > 0)  # hotter is always flatter
assert table[0].max() > 0.99 and entropy[-1] > 0.99 * np.log(len(scores))

# %% [markdown]
# <!-- en -->
# ## From softmax to the loss
#
# Document 000's formula, $-\log(e^{x_t} / \sum_j e^{x_j})$, is exactly
# $-\text{log\_softmax}(x)_t$. So the per-sample cross-entropy is "pick the
# log-probability of the true class and negate it", which is what
# `xr.cross_entropy(..., reduction="none")` returns.
# <!-- zh -->
# ## 从 softmax 到损失
#
# 文档 000 的公式 $-\log(e^{x_t} / \sum_j e^{x_j})$ 恰好就是 $-\text{log\_softmax}(x)_t$。所以每个样本的
# 交叉熵就是"取出真实类别的对数概率，再取负"，这正是 `xr.cross_entropy(..., reduction="none")` 的返回值。

# %%
logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels = np.array([0, 1, 0])
picked = -xr.log_softmax(logits, axis=1)[np.arange(3), labels]
per_sample = xr.cross_entropy(logits, labels, reduction="none")
print(_("nb.01.log_softmax_picked"), picked)
print(_("nb.01.cross_entropy_none"), per_sample)
print(_("nb.01.mean") + f" = {per_sample.mean():.7f}")
assert np.allclose(picked, per_sample, rtol=1e-15)
assert round(float(xr.cross_entropy(logits, labels)), 7) == 0.6405346
