# %% [markdown]
# <!-- en -->
# # 7. The loss of a language model: softcap, z-loss, chunks and shards
#
# A language model's loss is the same cross-entropy as in notebooks 1 to 5,
# with three differences of scale: the number of classes is the vocabulary
# (32 000 to 256 000 tokens), the logits come from a matrix product with the
# last hidden states, and the vocabulary may be split across devices. This
# notebook covers the options LLM training adds (softcap and z-loss), how
# `linear_cross_entropy` computes the loss without ever holding the `N x V`
# logits, and how a vocabulary split into shards still gives the exact loss,
# together with the bug that sharding invites. It ends with two conventions
# where other projects differ from PyTorch. This notebook also exists in
# Chinese, `zh/07_llm_losses.ipynb`, built from the same source.
# <!-- zh -->
# # 7. 语言模型的损失：softcap、z 损失、分块与分片
#
# 语言模型的损失就是笔记本 1 到 5 里的交叉熵，只是在规模上有三点不同：类别数就是词表大小
# （32 000 到 256 000 个词元）；logits 来自最后一层隐藏状态与一个矩阵的乘积；词表还可能拆到多个设备上。
# 本笔记本讲 LLM 训练额外加上的两个选项（softcap 和 z 损失），`linear_cross_entropy` 如何在从不持有
# `N x V` 的 logits 的情况下算出损失，以及词表拆成分片后为什么仍能得到精确的损失——还有分片最容易引入的
# 那个错误。最后介绍两处其他项目与 PyTorch 不同的约定。本笔记本与英文版 `../07_llm_losses.ipynb`
# 由同一个源文件生成，两者的数字完全一致。

# %%
import tracemalloc

import matplotlib.pyplot as plt
# [zh] Chinese plot labels: Noto Sans SC from the pylopdf-fonts-zh-cn package (the notebooks extra)
import pylopdf_fonts_zh_cn  # [zh]
from matplotlib import font_manager  # [zh]
font_manager.fontManager.addfont(pylopdf_fonts_zh_cn.sans_path())  # [zh]
plt.rcParams["font.sans-serif"] = ["Noto Sans SC", *plt.rcParams["font.sans-serif"]]  # [zh]
import numpy as np

import xent_ref as xr
from xent_ref.teach.i18n import ljust  # pads by display width: a CJK character takes 2

np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(2024)


def lse(z):
    """log-sum-exp of each row of z (N, V), with the max shift of notebook 1."""
    m = z.max(axis=1)
    return m + np.log(np.exp(z - m[:, None]).sum(axis=1))

# %% [markdown]
# <!-- en -->
# ## Softcap: $c \tanh(z / c)$
#
# Gemma 2 passes its final logits through $z \mapsto c \tanh(z / c)$ with
# $c = 30$ before the loss. Near 0 the curve is the identity (its slope is
# 1), so ordinary logits are left almost alone; far out it flattens at
# $\pm c$, so no logit can run away. The price is in the gradient: by the
# chain rule every logit's gradient is multiplied by the slope
# $1 - \tanh^2(z / c)$, which is small exactly where the logit is large.
# <!-- zh -->
# ## 软截顶 softcap：$c \tanh(z / c)$
#
# Gemma 2 在计算损失之前，把最终的 logits 送进 $z \mapsto c \tanh(z / c)$，取 $c = 30$。这条曲线在 0 附近
# 就是恒等映射（斜率为 1），所以普通大小的 logits 几乎不受影响；离 0 越远它越平，最终贴近 $\pm c$，任何
# logit 都不会失控地变大。代价体现在梯度上：由链式法则，每个 logit 的梯度都要乘上斜率
# $1 - \tanh^2(z / c)$，而 logit 越大，这个斜率恰恰越小。

# %%
cap = 30.0
z = np.linspace(-120, 120, 481)
capped = cap * np.tanh(z / cap)
slope = 1 - np.tanh(z / cap) ** 2

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(z, z, "k:", label=_("nb.07.plot.no_cap"))
left.plot(z, capped, label=f"c tanh(z / c), c = {cap:g}")
for bound in (cap, -cap):
    left.axhline(bound, color="gray", linewidth=0.8)
left.set_ylim(-60, 60)
left.set_xlabel("logit z")
left.set_ylabel(_("nb.07.plot.logit_seen_by_the_loss"))
left.legend(fontsize=8)
left.set_title(_("nb.07.plot.softcap_bounds_the_logits_to_c"))
right.plot(z, slope)
right.set_xlabel("logit z")
right.set_ylabel("d/dz c tanh(z / c)")
right.set_title(_("nb.07.plot.its_slope_1_tanh_z_c_scales_th"))
plt.show()

for value in (0.0, 15.0, 30.0, 60.0, 90.0):
    print(_("nb.07.z_capped_slope"))
assert np.abs(capped).max() < cap and slope.max() == 1.0

# %% [markdown]
# <!-- en -->
# Two tokens over a vocabulary of 5: the first is fairly sure and right, the
# second confident and wrong (its target is class 3, the model bets on
# class 0 with a logit of 60). The library applies the cap when given
# `softcap=c`; it equals the plain loss of the capped logits.
# <!-- zh -->
# 词表大小为 5，两个词元：第一个相当有把握而且预测对了；第二个信心十足却错了（目标是类别 3，模型却以
# 60 的 logit 押在类别 0 上）。给库函数传入 `softcap=c` 就会加上截顶，结果等于对截顶后的 logits 计算
# 普通的损失。

# %%
logits = np.array([[12.0, 4.0, 0.0, -5.0, 2.0],
                   [60.0, 15.0, -3.0, 4.0, 0.0]])
labels = np.array([0, 3])

plain = xr.cross_entropy(logits, labels, reduction="none")
softcapped = xr.cross_entropy(logits, labels, reduction="none", softcap=cap)
print(_("nb.07.per_token_no_cap"), plain)
print(_("nb.07.per_token_cap"), softcapped)
assert np.allclose(softcapped, xr.cross_entropy(cap * np.tanh(logits / cap), labels,
                                                reduction="none"), rtol=1e-14)

# %% [markdown]
# <!-- en -->
# The wrong token's loss falls from about 56 to about 25: with the cap, no
# loss can exceed $2c + \log V$. Its gradient is softmax minus one-hot *of the
# capped logits*, times the slope at each raw logit:
#
# $$\frac{\partial \ell}{\partial z} = \big(\operatorname{softmax}(c \tanh(z/c)) - \text{onehot}(t)\big) \odot \big(1 - \tanh^2(z/c)\big).$$
# <!-- zh -->
# 预测错的那个词元，损失从约 56 降到约 25：有了截顶，任何损失都不会超过 $2c + \log V$。它的梯度是
# *截顶后 logits 的* softmax 减去 one-hot，再逐个乘以原始 logit 处的斜率：
#
# $$\frac{\partial \ell}{\partial z} = \big(\operatorname{softmax}(c \tanh(z/c)) - \text{onehot}(t)\big) \odot \big(1 - \tanh^2(z/c)\big).$$

# %%
def softcap_grad_by_hand(logits, labels, cap):
    probs = xr.softmax(cap * np.tanh(logits / cap), axis=1)
    one_hot = np.eye(logits.shape[1])[labels]
    return (probs - one_hot) * (1 - np.tanh(logits / cap) ** 2) / len(labels)


by_hand = softcap_grad_by_hand(logits, labels, cap)
library = xr.cross_entropy_grad(logits, labels, softcap=cap)
print(_("nb.07.gradient_no_cap"), xr.cross_entropy_grad(logits, labels))
print(_("nb.07.gradient_cap"), library)
print(_("nb.07.by_hand_vs_library"))
assert np.allclose(by_hand, library, rtol=0, atol=1e-15)
assert abs(library[1].sum()) > 0.1  # the slopes differ, so the row no longer sums to 0

# %% [markdown]
# <!-- en -->
# Without the cap the wrong token's logit of 60 gets the full push, almost
# exactly $1/N = 0.5$; with it, the push is damped by the slope at 60,
# $1 - \tanh^2(2) \approx 0.07$. A softcapped gradient row no longer sums to
# zero, since each entry has its own slope.
#
# `logit_scale=s` multiplies the logits first (flash-attention's option), then
# the cap is applied, then the loss:
# <!-- zh -->
# 不截顶时，预测错的词元那个 60 的 logit 受到的是完整的推力，几乎正好是 $1/N = 0.5$；截顶后，这个推力
# 被 60 处的斜率 $1 - \tanh^2(2) \approx 0.07$ 压小了。截顶后梯度的一行之和不再为零，因为每个元素的斜率
# 各不相同。
#
# `logit_scale=s`（flash-attention 的选项）先把 logits 乘以 $s$，再截顶，最后计算损失：

# %%
scale = 1.5
combined = xr.cross_entropy(logits, labels, logit_scale=scale, softcap=cap)
composed = xr.cross_entropy(cap * np.tanh(scale * logits / cap), labels)
print(_("nb.07.scale_and_cap"))
assert np.isclose(combined, composed, rtol=1e-14)

# %% [markdown]
# <!-- en -->
# ## z-loss: keeping log-sum-exp near 0
#
# Softmax ignores a constant added to every logit of a row, so nothing in the
# cross-entropy stops the logits from drifting together to large values,
# where low-precision formats keep few digits. PaLM adds $10^{-4} \cdot
# \operatorname{lse}(z)^2$ per token, with
# $\operatorname{lse}(z) = \log \sum_j e^{z_j}$, and reports that it makes
# training more stable. The loss of a token becomes
#
# $$\ell = \operatorname{lse}(z) - z_t + \lambda \operatorname{lse}(z)^2,
# \qquad \frac{\partial \ell}{\partial z} = p - \text{onehot}(t) + 2\lambda\,\operatorname{lse}(z)\,p,$$
#
# since $\partial \operatorname{lse} / \partial z = p$. The extra term sums to
# $2\lambda \operatorname{lse}(z)$ over the row: it moves every logit down
# when lse is positive and up when it is negative, towards $\operatorname{lse} = 0$.
# The plot shifts one row of logits by a constant, which moves lse by the
# same constant: the cross-entropy stays flat, the z-loss is a parabola with
# its minimum at lse = 0, and the row sum of the gradient (the library's) is
# the straight line $2 \lambda \operatorname{lse}$.
# <!-- zh -->
# ## z 损失：让 log-sum-exp 保持在 0 附近
#
# 给一行的每个 logit 都加上同一个常数，softmax 不变，所以交叉熵本身并不阻止 logits 一起漂向很大的值，
# 而在低精度格式里，大数能保留的有效数字很少。PaLM 对每个词元加上 $10^{-4} \cdot
# \operatorname{lse}(z)^2$，其中 $\operatorname{lse}(z) = \log \sum_j e^{z_j}$，并报告这能让训练更稳定。
# 于是一个词元的损失变成
#
# $$\ell = \operatorname{lse}(z) - z_t + \lambda \operatorname{lse}(z)^2,
# \qquad \frac{\partial \ell}{\partial z} = p - \text{onehot}(t) + 2\lambda\,\operatorname{lse}(z)\,p,$$
#
# 因为 $\partial \operatorname{lse} / \partial z = p$。多出来的这一项在一行内的和是 $2\lambda \operatorname{lse}(z)$：
# lse 为正时它把每个 logit 往下拉，为负时往上推，方向总是朝着 $\operatorname{lse} = 0$。下图把一行 logits
# 整体平移一个常数，lse 也随之平移同样的量：交叉熵保持水平，z 损失是一条在 lse = 0 处取最小值的抛物线，
# 而梯度的行和（库函数算出的）是直线 $2 \lambda \operatorname{lse}$。

# %%
row = logits[:1] / 10  # one token, logits (1, 5)
target = labels[:1]
shifts = np.linspace(-25, 25, 101)
row_lse = lse(row)[0] + shifts

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for coef in (0.0, 1e-3, 1e-2):
    losses = [float(xr.cross_entropy(row + s, target, z_loss=coef)) for s in shifts]
    pulls = [xr.cross_entropy_grad(row + s, target, z_loss=coef).sum() for s in shifts]
    left.plot(row_lse, losses, label=f"z_loss = {coef:g}")
    right.plot(row_lse, pulls, label=f"z_loss = {coef:g}")
left.set_xlabel(_("nb.07.plot.lse_z_of_the_shifted_row"))
left.set_ylabel(_("nb.07.plot.loss"))
left.legend(fontsize=8)
left.set_title(_("nb.07.plot.cross_entropy_is_flat_in_the_s"))
right.axhline(0, color="gray", linewidth=0.8)
right.set_xlabel(_("nb.07.plot.lse_z_of_the_shifted_row"))
right.set_ylabel(_("nb.07.plot.sum_of_d_loss_d_z_over_the_row"))
right.legend(fontsize=8)
right.set_title(_("nb.07.plot.the_pull_2_z_loss_lse_points_t"))
plt.show()

pull = xr.cross_entropy_grad(row + 20.0, target, z_loss=1e-2).sum()
print(_("nb.07.row_sum_pull"))
assert np.isclose(pull, 2 * 1e-2 * lse(row + 20.0)[0], rtol=1e-12)

# %% [markdown]
# <!-- en -->
# The two-token example with PaLM's $\lambda = 10^{-4}$: the loss grows by
# $\lambda$ times the mean of $\operatorname{lse}^2$, and the gradient by
# $2\lambda \operatorname{lse}\, p / N$.
# <!-- zh -->
# 回到两个词元的例子，取 PaLM 的 $\lambda = 10^{-4}$：损失增加 $\lambda$ 乘以 $\operatorname{lse}^2$ 的
# 平均值，梯度增加 $2\lambda \operatorname{lse}\, p / N$。

# %%
z_coef = 1e-4
token_lse = lse(logits)
probs = xr.softmax(logits, axis=1)
loss_plain, grad_plain = xr.cross_entropy_with_grad(logits, labels)
loss_z, grad_z = xr.cross_entropy_with_grad(logits, labels, z_loss=z_coef)
print(_("nb.07.lse_per_token"), token_lse)
print(_("nb.07.loss_without_with"))
print(_("nb.07.loss_difference"))
print(_("nb.07.gradient_difference"), grad_z - grad_plain)
print(_("nb.07.row_sums_z"), grad_z.sum(axis=1), " 2 * 1e-4 * lse / N:", 2 * z_coef * token_lse / 2)
assert np.isclose(loss_z - loss_plain, z_coef * np.mean(token_lse ** 2), rtol=1e-10)
assert np.allclose(grad_z - grad_plain, 2 * z_coef * token_lse[:, None] * probs / 2, rtol=0, atol=1e-15)

# %% [markdown]
# <!-- en -->
# The z-term is not multiplied by the class weights, and `mean` divides it
# by the number of kept tokens, while the cross-entropy part divides by the
# sum of the kept tokens' weights (Liger Kernel and flash-attention agree on
# this). With a weight and an ignored token:
# <!-- zh -->
# z 项不乘类别权重；取 `mean` 时它除以保留的词元数，而交叉熵部分除以保留词元的权重之和（Liger Kernel
# 和 flash-attention 在这一点上一致）。下面是带权重、并有一个被忽略的词元的例子：

# %%
three = rng.normal(0, 3, size=(3, 5))
three_labels = np.array([2, -100, 4])
weight = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
kept = three_labels != -100
extra = (xr.cross_entropy(three, three_labels, weight=weight, z_loss=0.1)
         - xr.cross_entropy(three, three_labels, weight=weight))
print(_("nb.07.added_by_z"))
print(_("nb.07.mean_over_kept"))
assert np.isclose(extra, 0.1 * np.mean(lse(three)[kept] ** 2), rtol=1e-12)

# %% [markdown]
# <!-- en -->
# ## Linear cross-entropy: the `N x V` logits are never formed
#
# The logits of a language model are $Z = h W^\top$ (plus a bias), with $h$
# the `(N, H)` last hidden states and $W$ the `(V, H)` output embedding. At
# the scale of a real batch $Z$ takes gigabytes (printed below for
# $N = 8192$, $V = 128\,256$), and its gradient as much again.
# `linear_cross_entropy(h, W, target)` gives the same loss and gradients
# without forming $Z$. There are two ways to cut $Z$ into pieces:
#
# * **By rows**, as the library does (`chunk_size` tokens at a time): a
#   chunk of tokens gets its `(chunk, V)` logits, its losses and its share of
#   the gradients, and the next chunk reuses the memory.
# * **By columns**, as Cut Cross-Entropy does: walk through the vocabulary in
#   chunks and keep, per token, only a running maximum $m$, a running sum $s$
#   of $e^{z - m}$ and the target's logit. When a chunk raises the maximum
#   from $m$ to $m'$, the old sum is rescaled by $e^{m - m'}$; at the end
#   $\operatorname{lse} = m + \log s$ (the online log-sum-exp).
#
# The second needs the new idea, and the vocabulary shards below use it
# again, so we write it out by hand and check it against the library.
#
# Step by step, on 3 tokens, $H = 4$, $V = 10$ in chunks of 4 (the last chunk
# is shorter):
# <!-- zh -->
# ## 线性交叉熵：从不构造 `N x V` 的 logits
#
# 语言模型的 logits 是 $Z = h W^\top$（可能再加偏置），其中 $h$ 是 `(N, H)` 的最后一层隐藏状态，$W$ 是
# `(V, H)` 的输出嵌入。在真实批量的规模下，$Z$ 要占好几 GB（下面打印了 $N = 8192$、$V = 128\,256$
# 时的大小），它的梯度还要再占同样多。`linear_cross_entropy(h, W, target)` 不构造 $Z$ 就能给出同样的
# 损失和梯度。把 $Z$ 切成小块有两种切法：
#
# * **按行切**，库函数就是这样做的（每次 `chunk_size` 个词元）：一块词元得到自己的 `(chunk, V)` logits、
#   损失和对梯度的那一份贡献，下一块再复用同一片内存。
# * **按列切**，Cut Cross-Entropy 就是这样做的：分块遍历词表，每个词元只保留一个当前最大值 $m$、
#   一个 $e^{z - m}$ 的当前和 $s$，以及目标的 logit。某一块把最大值从 $m$ 抬高到 $m'$ 时，旧的和要乘上
#   $e^{m - m'}$ 重新缩放；最后 $\operatorname{lse} = m + \log s$（在线 log-sum-exp）。
#
# 第二种切法需要一个新想法，后面的词表分片还会再用到它，所以我们亲手写出来，并与库函数核对。
#
# 下面逐步演示：3 个词元，$H = 4$，$V = 10$，每块 4 个类别（最后一块短一些）：

# %%
n_tokens, hidden, vocab, chunk = 3, 4, 10, 4
step_rng = np.random.default_rng(8)  # a draw in which later chunks raise the maximum
h = step_rng.standard_normal((n_tokens, hidden))
W = step_rng.standard_normal((vocab, hidden))
targets = np.array([1, 9, 6])

run_max = np.full(n_tokens, -np.inf)
run_sum = np.zeros(n_tokens)
target_logit = np.zeros(n_tokens)
for start in range(0, vocab, chunk):
    stop = min(start + chunk, vocab)
    block = h @ W[start:stop].T  # (N, stop - start): the only logits in memory
    new_max = np.maximum(run_max, block.max(axis=1))
    run_sum = run_sum * np.exp(run_max - new_max) + np.exp(block - new_max[:, None]).sum(axis=1)
    run_max = new_max
    here = (targets >= start) & (targets < stop)
    target_logit[here] = block[here, targets[here] - start]
    print(_("nb.07.online_step"))

chunked_lse = run_max + np.log(run_sum)
chunked_loss = np.mean(chunked_lse - target_logit)
print(_("nb.07.chunked_by_hand"))
print(_("nb.07.ce_of_logits"))
print(_("nb.07.linear_ce"))
print(_("nb.07.one_row_per_chunk"))
assert np.allclose(chunked_lse, lse(h @ W.T), rtol=1e-14)
assert np.isclose(chunked_loss, xr.linear_cross_entropy(h, W, targets), rtol=1e-14)

# %% [markdown]
# <!-- en -->
# The backward pass needs the logits' gradient $G = (P - \text{onehot}) / N$,
# which is again `N x V`. Once lse is known it can be made chunk by chunk
# too: recompute the chunk's logits, $P = e^{Z - \operatorname{lse}}$,
# subtract the one-hot, and add the chunk's share to the two products
#
# $$\frac{\partial L}{\partial h} = G W, \qquad
# \frac{\partial L}{\partial W} = G^\top h, \qquad
# \frac{\partial L}{\partial b} = \textstyle\sum_i G_i,$$
#
# both of which follow from $Z = h W^\top + b$ one entry at a time. The cost
# is a second matrix product to recompute the logits.
# <!-- zh -->
# 反向传播需要 logits 的梯度 $G = (P - \text{onehot}) / N$，它同样是 `N x V` 的。不过一旦知道了 lse，
# 它也能逐块算出：重新算出这一块的 logits，求 $P = e^{Z - \operatorname{lse}}$，减去 one-hot，再把这一块
# 的贡献累加到两个乘积里：
#
# $$\frac{\partial L}{\partial h} = G W, \qquad
# \frac{\partial L}{\partial W} = G^\top h, \qquad
# \frac{\partial L}{\partial b} = \textstyle\sum_i G_i,$$
#
# 这几个式子都可以从 $Z = h W^\top + b$ 逐个元素推出来。代价是多做一次矩阵乘法来重算 logits。

# %%
grad_h = np.zeros_like(h)
grad_W = np.zeros_like(W)
for start in range(0, vocab, chunk):
    stop = min(start + chunk, vocab)
    block_grad = np.exp(h @ W[start:stop].T - chunked_lse[:, None])
    here = (targets >= start) & (targets < stop)
    block_grad[here, targets[here] - start] -= 1.0
    block_grad /= n_tokens
    grad_h += block_grad @ W[start:stop]
    grad_W[start:stop] = block_grad.T @ h

lib_h, lib_W, lib_b = xr.linear_cross_entropy_grad(h, W, targets)
print(_("nb.07.dh_by_hand"))
print(_("nb.07.dw_by_hand"))
print(_("nb.07.no_bias"), lib_b)
assert np.allclose(grad_h, lib_h, rtol=0, atol=1e-15)
assert np.allclose(grad_W, lib_W, rtol=0, atol=1e-15)
assert lib_b is None

# %% [markdown]
# <!-- en -->
# ### Peak memory, measured
#
# `tracemalloc` records every array NumPy allocates. At $N = 512$,
# $H = 64$, $V = 32\,000$ in float32 we compare the peak while computing
# the loss and all gradients two ways: forming the logits and calling
# `cross_entropy_with_grad` on them (then $G W$ and $G^\top h$), and one call
# of `linear_cross_entropy_with_grad`. Both peaks include the outputs, whose
# largest part is $\partial L / \partial W$, as big as $W$. What the fused call
# needs beyond them is a chunk's logits and their gradient (the library
# picks the number of rows per chunk, or `chunk_size` sets it), however
# large $N$ grows; the logits route needs the logits and their gradient,
# both `N x V`.
# <!-- zh -->
# ### 实测内存峰值
#
# `tracemalloc` 会记录 NumPy 分配的每一个数组。取 $N = 512$、$H = 64$、$V = 32\,000$、float32，我们用
# 两种方法计算损失和全部梯度，并比较内存峰值：一种是先构造 logits，对它调用 `cross_entropy_with_grad`
# （再算 $G W$ 和 $G^\top h$）；另一种是调用一次 `linear_cross_entropy_with_grad`。两个峰值都包括输出，
# 输出中最大的部分是 $\partial L / \partial W$，和 $W$ 一样大。融合调用在输出之外只需要一块的 logits 及其
# 梯度（每块多少行由库函数决定，也可以用 `chunk_size` 指定），不论 $N$ 多大都是如此；而经由 logits 的
# 做法需要 logits 和它的梯度，两者都是 `N x V`。

# %%
N, H, V = 512, 64, 32_000
hidden_states = rng.standard_normal((N, H), dtype=np.float32)
embedding = rng.standard_normal((V, H), dtype=np.float32) * np.float32(0.05)
tokens = rng.integers(0, V, N)


def through_the_logits():
    logits = hidden_states @ embedding.T
    loss, grad_logits = xr.cross_entropy_with_grad(logits, tokens)
    return loss, grad_logits @ embedding, grad_logits.T @ hidden_states


def chunked():
    loss, (grad_input, grad_weight, _) = xr.linear_cross_entropy_with_grad(
        hidden_states, embedding, tokens)
    return loss, grad_input, grad_weight


def peak_mib(work):
    tracemalloc.start()
    result = work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak / 2**20


(loss_a, dh_a, dW_a), peak_a = peak_mib(through_the_logits)
(loss_b, dh_b, dW_b), peak_b = peak_mib(chunked)
mib = 2**20
logits_mib = N * V * 4 / mib
outputs_mib = (dh_b.nbytes + dW_b.nbytes) / mib
print(_("nb.07.big_logits"))
print(_("nb.07.one_array"))
print(_("nb.07.the_gradients"))
for name, peak in ((_("nb.07.plot.through_the_logits"), peak_a), ("linear_cross_entropy", peak_b)):
    extra = peak - outputs_mib
    print(_("nb.07.peak"))
print(_("nb.07.losses_agree"))
assert peak_b - outputs_mib < logits_mib / 2 and peak_a - outputs_mib > logits_mib
assert np.isclose(loss_a, loss_b, rtol=1e-5) and np.allclose(dW_a, dW_b, rtol=0, atol=1e-6)

fig, ax = plt.subplots(figsize=(7, 3))
ax.barh([_("nb.07.plot.through_the_logits"), "linear_cross_entropy"], [peak_a, peak_b])
ax.axvline(outputs_mib, color="black", linestyle=":", label=_("nb.07.plot.the_gradients_themselves"))
ax.axvline(outputs_mib + logits_mib, color="red", linestyle=":", label=_("nb.07.plot.gradients_one_n_x_v_array"))
ax.set_xlabel(_("nb.07.plot.peak_traced_memory_mib"))
ax.legend(fontsize=8)
ax.set_title(_("nb.07.plot.loss_and_gradients_at_n_n_h_h"))
plt.show()

# %% [markdown]
# <!-- en -->
# ## The vocabulary split across devices
#
# With tensor parallelism (Megatron's vocab-parallel cross-entropy) each of
# $k$ devices holds $V / k$ rows of $W$ and so a `(N, V/k)` slice of the
# logits. No device sees a whole row, yet the exact loss needs only three
# numbers per token from each shard: its local maximum $m_r$, its local sum
# $s_r = \sum e^{z - m_r}$ over its own classes, and the target's logit if
# the target falls in its range (0 otherwise). An all-reduce combines them:
#
# $$M = \max_r m_r, \qquad S = \sum_r s_r\, e^{m_r - M}, \qquad
# \operatorname{lse} = M + \log S, \qquad \ell = \operatorname{lse} - \sum_r (\text{target logit})_r.$$
#
# (Megatron does it in two rounds, an all-reduce of the maxima first, then
# of the sums taken with the global maximum; the result is the same.) We
# simulate $k = 4$ shards of a vocabulary of 1000 in NumPy:
# <!-- zh -->
# ## 拆到多个设备上的词表
#
# 用张量并行时（Megatron 的词表并行交叉熵），$k$ 个设备各持有 $W$ 的 $V / k$ 行，因而各持有 logits 的一个
# `(N, V/k)` 切片。没有哪个设备看得到完整的一行，但精确的损失只需要每个分片为每个词元提供三个数：
# 局部最大值 $m_r$、在自己那些类别上的局部和 $s_r = \sum e^{z - m_r}$，以及目标的 logit（目标落在自己
# 的范围内时；否则为 0）。一次 all-reduce 就能把它们合起来：
#
# $$M = \max_r m_r, \qquad S = \sum_r s_r\, e^{m_r - M}, \qquad
# \operatorname{lse} = M + \log S, \qquad \ell = \operatorname{lse} - \sum_r (\text{target logit})_r.$$
#
# （Megatron 分两轮做：先对最大值做 all-reduce，再对用全局最大值算出的和做 all-reduce；结果相同。）
# 我们用 NumPy 模拟把大小为 1000 的词表分成 $k = 4$ 片：

# %%
n, vocab_size, k = 8, 1000, 4
full_logits = rng.normal(0, 3, size=(n, vocab_size))
labels_v = rng.integers(0, vocab_size, n)


def shards(logits, k):
    """The k slices (start, (N, V/k) block) that the k devices hold."""
    width = logits.shape[1] // k
    return [(r * width, logits[:, r * width:(r + 1) * width]) for r in range(k)]


def shard_stats(start, block, labels):
    """What one device computes from its own block of logits."""
    local_max = block.max(axis=1)
    local_sum = np.exp(block - local_max[:, None]).sum(axis=1)
    owned = (labels >= start) & (labels < start + block.shape[1])
    column = np.where(owned, labels - start, 0)
    local_target = np.where(owned, block[np.arange(len(labels)), column], 0.0)
    return local_max, local_sum, local_target


def all_reduce(stats):
    """Combine the shards' (max, sum, target logit) into every token's lse and target logit."""
    maxima, sums, target_parts = (np.stack(part) for part in zip(*stats))
    global_max = maxima.max(axis=0)
    global_sum = (sums * np.exp(maxima - global_max)).sum(axis=0)
    return global_max + np.log(global_sum), target_parts.sum(axis=0)


stats = [shard_stats(start, block, labels_v) for start, block in shards(full_logits, k)]
for r, ((start, block), (local_max, local_sum, _)) in enumerate(zip(shards(full_logits, k), stats)):
    owned = (labels_v >= start) & (labels_v < start + block.shape[1])
    print(_("nb.07.shard"))
sharded_lse, sharded_target = all_reduce(stats)
sharded_losses = sharded_lse - sharded_target
unsharded = xr.cross_entropy(full_logits, labels_v, reduction="none")
print(_("nb.07.sharded_mean"))
print(_("nb.07.unsharded_mean"))
print(_("nb.07.per_token_difference"))
assert np.allclose(sharded_losses, unsharded, rtol=1e-14, atol=0)

# %% [markdown]
# <!-- en -->
# The gradient needs no further communication: once every device knows lse,
# it forms $e^{z - \operatorname{lse}}$ for its own classes and subtracts 1
# at the target if it owns it. Put side by side, the shards' blocks are the
# library's gradient.
# <!-- zh -->
# 梯度不需要再通信：每个设备一旦知道了 lse，就为自己的类别算出 $e^{z - \operatorname{lse}}$，如果目标归它
# 所有，再在目标处减去 1。把各分片的块并排拼起来，就是库函数的梯度。

# %%
grad_blocks = []
for start, block in shards(full_logits, k):
    g = np.exp(block - sharded_lse[:, None])
    owned = (labels_v >= start) & (labels_v < start + block.shape[1])
    g[owned, labels_v[owned] - start] -= 1.0
    grad_blocks.append(g / n)
sharded_grad = np.concatenate(grad_blocks, axis=1)
library_grad = xr.cross_entropy_grad(full_logits, labels_v)
print(_("nb.07.sharded_gradient"))
assert np.allclose(sharded_grad, library_grad, rtol=0, atol=1e-16)

# %% [markdown]
# <!-- en -->
# ### The classic bug: smoothing with the shard's own $C$
#
# Label smoothing (notebook 3) turns a token's loss into
# $(1 - \varepsilon)(-\log p_t) + \frac{\varepsilon}{C} \sum_c -\log p_c$,
# with $C$ the *whole* vocabulary. Sharded, each device sums
# $-\log p_c = \operatorname{lse} - z_c$ over its own classes and the sums
# are all-reduced. The bug is to let each device average over what it sees,
# dividing by its own $C = V / k$: after the all-reduce the smoothing term
# is $k$ times too large, and the loss is wrong by
# $(k - 1)\,\frac{\varepsilon}{V} \sum_c -\log p_c$ per token, with no error
# raised and no change at $k = 1$, where single-device tests run.
# <!-- zh -->
# ### 经典错误：用分片自己的 $C$ 做平滑
#
# 标签平滑（笔记本 3）把一个词元的损失变成
# $(1 - \varepsilon)(-\log p_t) + \frac{\varepsilon}{C} \sum_c -\log p_c$，其中 $C$ 是*整个*词表的大小。
# 分片时，每个设备在自己的类别上对 $-\log p_c = \operatorname{lse} - z_c$ 求和，再对这些和做 all-reduce。
# 错误在于让每个设备按自己看到的类别数求平均，即除以它自己的 $C = V / k$：all-reduce 之后平滑项大了
# $k$ 倍，每个词元的损失错了 $(k - 1)\,\frac{\varepsilon}{V} \sum_c -\log p_c$。不会报任何错，而且在
# $k = 1$ 时毫无变化——单设备的测试恰恰就在 $k = 1$ 下运行。

# %%
eps = 0.1


def sharded_smoothed_loss(logits, labels, k, eps, per_shard_classes=False):
    stats = [shard_stats(start, block, labels) for start, block in shards(logits, k)]
    token_lse, target_logit = all_reduce(stats)
    parts = []
    for _, block in shards(logits, k):
        local = (token_lse[:, None] - block).sum(axis=1)  # sum of -log p over this shard
        classes = block.shape[1] if per_shard_classes else logits.shape[1]
        parts.append(eps / classes * local)
    smoothing = np.sum(parts, axis=0)  # the all-reduce
    return np.mean((1 - eps) * (token_lse - target_logit) + smoothing)


reference = float(xr.cross_entropy(full_logits, labels_v, label_smoothing=eps))
shard_counts = [1, 2, 4, 5, 8, 10, 20]
right_way = [sharded_smoothed_loss(full_logits, labels_v, c, eps) for c in shard_counts]
bug = [sharded_smoothed_loss(full_logits, labels_v, c, eps, per_shard_classes=True)
       for c in shard_counts]
print(f"xr.cross_entropy(label_smoothing=0.1): {reference:.10f}")
for c, good, bad in zip(shard_counts, right_way, bug):
    print(_("nb.07.shard_bug"))
assert np.allclose(right_way, reference, rtol=1e-14)
assert bug[0] == right_way[0] and bug[2] - reference > 0.1

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(shard_counts, np.array(bug) - reference, "o-", label=_("nb.07.plot.smoothing_divided_by_v_k"))
ax.plot(shard_counts, np.array(right_way) - reference, "s--", label=_("nb.07.plot.smoothing_divided_by_v"))
ax.set_xticks(shard_counts)
ax.set_xlabel(_("nb.07.plot.number_of_shards_k"))
ax.set_ylabel(_("nb.07.plot.loss_unsharded_loss"))
ax.legend(fontsize=8)
ax.set_title(_("nb.07.plot.label_smoothing_eps_on_vocab_s"))
plt.show()

# %% [markdown]
# <!-- en -->
# ## Two conventions that differ from PyTorch
#
# **Megatron's smoothing.** PyTorch gives the target $1 - \varepsilon +
# \varepsilon / C$ and every other class $\varepsilon / C$. Megatron gives
# the target exactly $1 - \varepsilon$ and spreads $\varepsilon$ over the
# other $C - 1$ classes; that is PyTorch's formula with
# $\varepsilon' = \varepsilon\, C / (C - 1)$. The gap shrinks like $1 / C$:
# it matters at $C = 4$ and hardly at a vocabulary of 1000.
# <!-- zh -->
# ## 与 PyTorch 不同的两处约定
#
# **Megatron 的平滑。** PyTorch 给目标 $1 - \varepsilon + \varepsilon / C$，给其他每个类别 $\varepsilon / C$。
# Megatron 给目标恰好 $1 - \varepsilon$，把 $\varepsilon$ 平分给其余 $C - 1$ 个类别；这相当于 PyTorch 的
# 公式取 $\varepsilon' = \varepsilon\, C / (C - 1)$。两者的差距按 $1 / C$ 缩小：$C = 4$ 时有影响，词表大小
# 为 1000 时就几乎没有了。

# %%
def megatron_smoothed(logits, labels, eps):
    c = logits.shape[1]
    one_hot = np.eye(c)[labels]
    smoothed_target = (1 - eps) * one_hot + eps / (c - 1) * (1 - one_hot)
    return np.mean(-(smoothed_target * xr.log_softmax(logits, axis=1)).sum(axis=1))


small = rng.normal(0, 2, size=(6, 4))
small_labels = rng.integers(0, 4, 6)
for name, x, t in (("C = 4   ", small, small_labels), ("C = 1000", full_logits, labels_v)):
    c = x.shape[1]
    megatron = megatron_smoothed(x, t, eps)
    pytorch = float(xr.cross_entropy(x, t, label_smoothing=eps))
    rescaled = float(xr.cross_entropy(x, t, label_smoothing=eps * c / (c - 1)))
    print(_("nb.07.megatron"))
    assert np.isclose(megatron, rescaled, rtol=1e-13)

# %% [markdown]
# <!-- en -->
# **torchtune when every token is ignored.** With `reduction="mean"`,
# PyTorch divides by the number of kept tokens, so a batch in which every
# target is `ignore_index` gives $0 / 0$ = nan (and the library follows it).
# torchtune's loss returns 0 instead, as if the denominator were at least 1.
# The gradient is zero either way; only the reported loss differs, which
# matters when losses are averaged across steps or devices.
# <!-- zh -->
# **所有词元都被忽略时的 torchtune。** 取 `reduction="mean"` 时，PyTorch 除以保留的词元数，所以一个
# 每个目标都是 `ignore_index` 的批次得到 $0 / 0$ = nan（库函数也照此处理）。torchtune 的损失则返回 0，
# 好像分母至少是 1。两种情况下梯度都是零，只有报告的损失不同；当损失要跨步骤或跨设备求平均时，这一点
# 就要紧了。

# %%
all_ignored = np.full(4, -100)
x4 = rng.normal(size=(4, 5))
pytorch_mean = float(xr.cross_entropy(x4, all_ignored))
kept_count = int(np.sum(all_ignored != -100))
torchtune_style = float(xr.cross_entropy(x4, all_ignored, reduction="sum")) / max(kept_count, 1)
print(_("nb.07.torch_mean"))
print(_("nb.07.torchtune"))
print(_("nb.07.grad_zero"))
assert np.isnan(pytorch_mean) and torchtune_style == 0.0
