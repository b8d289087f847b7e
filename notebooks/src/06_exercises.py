# %% [markdown]
# <!-- en -->
# # 6. Exercises: write the losses yourself
# <!-- solutions -->
# # 6. Exercises: write the losses yourself (solutions)
#
# *This is the solutions variant of `../06_exercises.ipynb`, built from the same
# source with one right answer filled in for each exercise; every check cell
# below passes. Try the exercises before reading on.*
# <!-- en solutions -->
#
# Reading a derivation is not the same as being able to write it. In this
# notebook you implement, in plain NumPy, the functions the earlier notebooks
# took apart: softmax, log-softmax, cross-entropy with `weight` and
# `ignore_index`, its gradient, and binary cross-entropy with logits. The style
# is that of Stanford's CS231n assignments and of Karpathy's "Becoming a Backprop
# Ninja": you write the function, then a check cell judges it.
#
# The judge is `xent_ref.testing.check`: it runs your function on the golden
# cases, the same cases the library itself must pass (several shapes, every
# reduction, and hostile inputs such as logits of $10^4$), and prints a report.
# The corpus also holds float16 and bfloat16 cases for kernel writers, judged
# against the float64 answer: no worse than PyTorch in that dtype. NumPy code
# run directly on such arrays rounds every step to 11 or 8 bits and can lose
# more than that (the bfloat16 mean of exercise 5 does), which is a lesson about
# kernels, not about these formulas. So the exercises are judged on float32 and
# float64: `check_answer` passes `dtypes=`, and the report counts the cases it
# leaves out. When an answer fails, the report does more than
# say "wrong": where it recognises a classic mistake (forgetting the max shift,
# dividing a weighted mean by the count, counting ignored targets) it names the
# mistake and its fix.
#
# **How to work.** Fill in the body of each function between the `your code`
# markers, run its cell, then run the check cell below it. Until you do, the
# check cell says "not attempted yet". Each exercise needs a handful of lines;
# loops over samples are allowed but not needed. One right answer for each is
# in `solutions/06_exercises.ipynb`, built from the same source; the test
# `tests/test_exercises.py` runs these same check cells on those answers, and
# on the classic wrong ones, to prove that the checks pass and fail as they
# should. (`xent_ref/textbook.py` writes the formulas out plainly but on
# purpose without the numerical care these checks demand: its `softmax` is the
# unshifted formula of exercise 1's hint.)
# <!-- zh -->
# # 6. 练习：自己动手写损失函数
#
# 看懂推导和自己写得出来是两回事。在本笔记本里，你要用纯 NumPy 实现前面几个笔记本拆解过的函数：
# softmax、log-softmax、带 `weight` 和 `ignore_index` 的交叉熵、它的梯度，以及带 logits 的
# 二元交叉熵。做法与斯坦福 CS231n 的作业、Karpathy 的 "Becoming a Backprop Ninja" 相同：
# 你写函数，随后的检查单元格来评判。
#
# 评判者是 `xent_ref.testing.check`：它在参考用例集上运行你的函数——库本身也必须通过其中每一个用例
# （多种形状、每种 reduction，以及 $10^4$ 这样不友好的 logits）——然后打印一份报告。用例集里还有
# 为写内核的人准备的 float16 和 bfloat16 用例，以 float64 的答案为准、要求误差不比 PyTorch 在该
# 精度下的误差更大。直接在这类数组上运行的 NumPy 代码每一步都会舍入到 11 位或 8 位，误差可能更大
# （练习 5 的 bfloat16 平均值就是如此），这是写内核时才要操心的事，与这些公式本身无关。所以练习只在
# float32 和 float64 上评判：`check_answer` 传入了 `dtypes=`，报告会写明略过了多少用例。答案
# 出错时，报告不只说"错了"：如果它认出一个经典错误（忘了减去最大值、加权平均除以了个数、把被忽略
# 的目标也算进分母），会说出错误的名称和改法。报告与本笔记本同为中文：先写原因和改法，再给一个出错的用例。
#
# **怎么做。** 在每个函数的 `your code` 标记之间填写函数体，运行这个单元格，再运行它下面的检查
# 单元格。在你动手之前，检查单元格会提示尚未作答。每道题只需几行；可以对样本写循环，但没有必要。
# 每道题的一个正确答案在 `../solutions/06_exercises.ipynb`（英文，由同一个源文件生成）；测试
# `tests/test_exercises.py` 用这些答案和若干经典错误答案运行同样的检查单元格，证明检查该通过时
# 通过、该失败时失败。（`xent_ref/textbook.py` 把公式照字面写出，但故意没有这些检查所要求的数值
# 处理：它的 `softmax` 就是练习 1 提示里那个不减最大值的公式。）本笔记本与英文版
# `../06_exercises.ipynb` 由同一个源文件生成。

# %%
import itertools

import numpy as np

from xent_ref import testing


# Small inputs on which each answer is tried once, to see whether it was attempted.
_PROBES = {
    "softmax": ((np.array([[1.0, 2.0]]),), {}),
    "log_softmax": ((np.array([[1.0, 2.0]]),), {}),
    "cross_entropy": ((np.array([[1.0, 2.0]]), np.array([0])), {}),
    "cross_entropy_grad": ((np.array([[1.0, 2.0]]), np.array([0])), {"grad_output": np.array(1.0)}),
    "binary_cross_entropy_with_logits": ((np.array([0.5]), np.array([1.0])), {}),
}


def _attempted(answer, probe):
    """False while ``answer`` is still the blank stub (it returns None)."""
    args, kwargs = _PROBES[probe]
    try:
        return answer(*args, **kwargs) is not None
    except NotImplementedError:
        return False
    except Exception:  # a real attempt that fails: the check will show the case
        return True


_ATTEMPTS = itertools.count(1)  # one seed per attempt: fresh inputs every time


def check_answer(name, fn=None, *, grad=None, full=False, seed=None, **select):
    """Run the golden cases of ``name`` (optionally only those matching ``select``,
    see ``testing.cases``) on your function and print the report: the cause, its fix
    and one failing case (``full=True``: everything). Each attempt draws fresh inputs
    (the attempt's number is the ``seed``, printed in the report; pass it to see the
    same cases again), and the library computes the expected values then."""
    answer, probe = (fn, name) if fn is not None else (grad, name + "_grad")
    if not _attempted(answer, probe):
        print(_("nb.06.not_attempted_yet_write_the"))
        return None
    cases = testing.cases(name, **select) if select else None
    seed = next(_ATTEMPTS) if seed is None else seed
    report = testing.check(fn, name, grad=grad, cases=cases, dtypes=("float32", "float64"),
                           full=full, seed=seed, lang=_("nb.06.report_language"))
    print(report)
    return report

# %% [markdown]
# <!-- en solutions -->
# ## What a report looks like
#
# Before the exercises, a function that is wrong on purpose: it calls the
# library's softmax but always along the last axis, whatever `axis` says. The
# report leads with the cause, the mistake by name, and its fix; then one failing
# case and where it differs, then the counts. `check_answer(..., full=True)`
# prints everything: the counts per function, every group of failing cases, and
# the first failing case in full. Each attempt is judged on freshly drawn inputs
# (its `seed` is in the report), the expected values computed by the library then.
# <!-- zh -->
# ## 报告长什么样
#
# 在做练习之前，先看一个故意写错的函数：它调用库里的 softmax，但不管 `axis` 是多少都沿最后一个轴
# 计算。报告先说原因：错误的名称和改法；然后给出一个失败的用例以及哪里不同，最后是通过/失败数。
# `check_answer(..., full=True)` 打印全部内容：每个函数的通过/失败数、每一组失败的用例，以及完整
# 的第一个失败用例。每次作答都在新抽取的输入上评判（报告中写有这次的 `seed`），期望值由库当场
# 算出。

# %%
import xent_ref as xr


def softmax_on_last_axis(x, axis=-1):
    return xr.softmax(x, axis=-1)


example = check_answer("softmax", softmax_on_last_axis)
assert not example.ok and "class-axis-last" in [d.id for d in example.diagnoses]
print()
print(example.text(full=True))  # the same report in full, as check_answer(..., full=True) prints it

# %% [markdown]
# <!-- en solutions -->
# ## Exercise 1: softmax
#
# $$\operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$$
#
# along `axis`, for an array of any shape. The result has the dtype of `x`
# (float32 in, float32 out).
#
# *Hint.* $e^{x}$ overflows above $x \approx 709.8$ in float64 and $88.7$ in float32,
# and $\infty / \infty$ is `nan`. Subtracting the row's maximum changes nothing
# mathematically (notebook 1) and keeps every exponent $\le 0$. Use
# `keepdims=True` so the reductions broadcast back.
# <!-- zh -->
# ## 练习 1：softmax
#
# $$\operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}$$
#
# 沿 `axis` 计算，输入可以是任意形状的数组。结果的 dtype 与 `x` 相同（输入 float32，输出也是
# float32）。
#
# *提示。* 在 float64 中 $e^{x}$ 在 $x \approx 709.8$ 以上溢出，在 float32 中是 $88.7$，而
# $\infty / \infty$ 是 `nan`。减去该行的最大值在数学上不改变结果（笔记本 1），并且让每个指数都
# $\le 0$。用 `keepdims=True`，使求和、求最大值的结果能广播回去。

# %%
def softmax(x, axis=-1):
    """Softmax of the array x along axis."""
    probs = None  # [en zh]
    # ---- your code here (about 3 lines) ----
    # [en zh]
    shifted = x - x.max(axis=axis, keepdims=True)  # [solutions]
    exps = np.exp(shifted)  # [solutions]
    probs = exps / exps.sum(axis=axis, keepdims=True)  # [solutions]
    # ---- end of your code ----
    return probs

# %%
report = check_answer("softmax", softmax)
assert report.ok  # [solutions]

# %% [markdown]
# <!-- en solutions -->
# ## Exercise 2: log-softmax
#
# $$\log \operatorname{softmax}(x)_i = x_i - \log \sum_j e^{x_j}.$$
#
# *Hint.* Do not take `np.log(softmax(x))`: a probability that underflows to 0
# becomes $-\infty$, although its log is an ordinary number such as $-800$.
# Shift by the maximum $m$ and use $\log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}$.
# <!-- zh -->
# ## 练习 2：log-softmax
#
# $$\log \operatorname{softmax}(x)_i = x_i - \log \sum_j e^{x_j}.$$
#
# *提示。* 不要写 `np.log(softmax(x))`：下溢成 0 的概率会变成 $-\infty$，而它的对数其实是
# $-800$ 这样的普通数。减去最大值 $m$，并利用 $\log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}$。

# %%
def log_softmax(x, axis=-1):
    """Log-softmax of the array x along axis."""
    log_probs = None  # [en zh]
    # ---- your code here (about 3 lines) ----
    # [en zh]
    shifted = x - x.max(axis=axis, keepdims=True)  # [solutions]
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))  # [solutions]
    # ---- end of your code ----
    return log_probs

# %%
report = check_answer("log_softmax", log_softmax)
assert report.ok  # [solutions]

# %% [markdown]
# <!-- en solutions -->
# ## Exercise 3: cross-entropy with `weight` and `ignore_index`
#
# For `(N, C)` logits and integer targets $t$ of shape `(N,)`, sample $i$'s loss
# is $\ell_i = -w_{t_i} \log p_{i, t_i}$ (with $w = 1$ when `weight` is None),
# and $\ell_i = 0$ when $t_i$ equals `ignore_index`. The reductions:
#
# * `"none"`: the vector $\ell$, shape `(N,)`;
# * `"sum"`: $\sum_i \ell_i$;
# * `"mean"`: $\sum_i \ell_i \big/ \sum_{i \text{ kept}} w_{t_i}$, the **sum of
#   the kept targets' weights**, not the number of samples (notebook 2, example 3).
#
# *Hint.* An ignored target can be any integer (PyTorch's default is $-100$), so
# it is not a valid index: replace it by 0 before indexing, then zero its loss.
# `log_probs[np.arange(N), t]` picks one entry per row. Return a NumPy scalar or
# 0-d array of the logits' dtype for `"mean"` and `"sum"`.
# <!-- zh -->
# ## 练习 3：带 `weight` 和 `ignore_index` 的交叉熵
#
# 对 `(N, C)` 的 logits 和形状为 `(N,)` 的整数目标 $t$，样本 $i$ 的损失是
# $\ell_i = -w_{t_i} \log p_{i, t_i}$（`weight` 为 None 时 $w = 1$）；当 $t_i$ 等于 `ignore_index`
# 时 $\ell_i = 0$。各种 reduction：
#
# * `"none"`：向量 $\ell$，形状 `(N,)`；
# * `"sum"`：$\sum_i \ell_i$；
# * `"mean"`：$\sum_i \ell_i \big/ \sum_{i \text{ 保留}} w_{t_i}$，即**保留下来的目标的权重之和**，
#   而不是样本个数（笔记本 2，例 3）。
#
# *提示。* 被忽略的目标可以是任何整数（PyTorch 默认是 $-100$），它不是合法的类别索引：先把它换成 0
# 再去索引，然后把它的损失置零。`log_probs[np.arange(N), t]` 从每行取出一个元素。`"mean"` 和
# `"sum"` 返回一个 NumPy 标量或 0 维数组，dtype 与 logits 相同。

# %%
def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """Cross-entropy of (N, C) logits against (N,) class indices."""
    loss = None  # [en zh]
    # ---- your code here (about 10 lines) ----
    # [en zh]
    n, c = logits.shape  # [solutions]
    w = np.ones(c, logits.dtype) if weight is None else np.asarray(weight, logits.dtype)  # [solutions]
    kept = target != ignore_index  # [solutions]
    safe = np.where(kept, target, 0)  # a valid index for the ignored rows  # [solutions]
    w_t = np.where(kept, w[safe], 0).astype(logits.dtype)  # [solutions]
    losses = -w_t * log_softmax(logits, axis=1)[np.arange(n), safe]  # [solutions]
    if reduction == "none":  # [solutions]
        loss = losses  # [solutions]
    elif reduction == "sum":  # [solutions]
        loss = losses.sum()  # [solutions]
    else:  # [solutions]
        loss = losses.sum() / w_t.sum()  # [solutions]
    # ---- end of your code ----
    return loss

# %%
report = check_answer("cross_entropy", cross_entropy, shape="NxC", target="index", smoothing=0.0)
assert report.ok  # [solutions]

# %% [markdown]
# <!-- en solutions -->
# ## Exercise 4: the gradient of cross-entropy
#
# Notebook 5 derived it: for a kept sample,
# $\partial \ell_i / \partial x_i = w_{t_i}\,(p_i - \text{onehot}(t_i))$; an ignored
# sample's row is 0. Then the reduction: `"sum"` leaves the rows as they are,
# `"mean"` divides every row by the same denominator as the loss.
#
# `grad_output` is the gradient arriving from above, $\partial(\text{final}) /
# \partial(\text{loss})$: a 0-d array for `"mean"` and `"sum"` (multiply every
# row by it), a vector of shape `(N,)` for `"none"` (multiply row $i$ by its
# entry $i$).
# <!-- zh -->
# ## 练习 4：交叉熵的梯度
#
# 笔记本 5 推导过：对保留的样本，$\partial \ell_i / \partial x_i = w_{t_i}\,(p_i - \text{onehot}(t_i))$；
# 被忽略的样本那一行为 0。然后是 reduction：`"sum"` 保持各行不变，`"mean"` 把每一行除以与损失
# 相同的分母。
#
# `grad_output` 是从上游传来的梯度 $\partial(\text{final}) / \partial(\text{loss})$：对 `"mean"`
# 和 `"sum"` 它是 0 维数组（每一行都乘以它），对 `"none"` 它是形状为 `(N,)` 的向量（第 $i$ 行乘以
# 它的第 $i$ 个元素）。

# %%
def cross_entropy_grad(logits, target, weight=None, ignore_index=-100, reduction="mean",
                       grad_output=1.0):
    """d loss / d logits, shape (N, C), for the loss of exercise 3."""
    grad = None  # [en zh]
    # ---- your code here (about 12 lines) ----
    # [en zh]
    n, c = logits.shape  # [solutions]
    w = np.ones(c, logits.dtype) if weight is None else np.asarray(weight, logits.dtype)  # [solutions]
    kept = target != ignore_index  # [solutions]
    safe = np.where(kept, target, 0)  # [solutions]
    w_t = np.where(kept, w[safe], 0).astype(logits.dtype)  # [solutions]
    one_hot = np.eye(c, dtype=logits.dtype)[safe]  # [solutions]
    grad = w_t[:, None] * (softmax(logits, axis=1) - one_hot)  # [solutions]
    grad_output = np.asarray(grad_output, logits.dtype)  # [solutions]
    if reduction == "none":  # [solutions]
        grad = grad * grad_output[:, None]  # [solutions]
    elif reduction == "sum":  # [solutions]
        grad = grad * grad_output  # [solutions]
    else:  # [solutions]
        grad = grad * (grad_output / w_t.sum())  # [solutions]
    # ---- end of your code ----
    return grad

# %%
report = check_answer("cross_entropy", grad=cross_entropy_grad, shape="NxC", target="index",
                      smoothing=0.0)
assert report.ok  # [solutions]

# %% [markdown]
# <!-- en solutions -->
# ## Exercise 5: binary cross-entropy with logits
#
# For logits $x$ and targets $y \in [0, 1]$ of the same shape,
#
# $$\ell = -w\,\bigl[p_w\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\bigr],$$
#
# with an optional `weight` $w$ and `pos_weight` $p_w$, both broadcast against
# the input from the right (as NumPy broadcasts), then reduced by `"none"`,
# `"mean"` (over all elements) or `"sum"`.
#
# *Hint.* $\sigma(x)$ rounds to exactly 1 for $x > 37$ in float64, and then
# $\log(1 - \sigma(x)) = -\infty$. Write both logs with
# $\operatorname{softplus}(z) = \log(1 + e^{z})$: $-\log \sigma(x) =
# \operatorname{softplus}(-x)$ and $-\log(1 - \sigma(x)) = \operatorname{softplus}(x)$.
# `np.logaddexp(0, z)` computes softplus without overflow (notebook 4).
# <!-- zh -->
# ## 练习 5：带 logits 的二元交叉熵
#
# 对形状相同的 logits $x$ 和目标 $y \in [0, 1]$，
#
# $$\ell = -w\,\bigl[p_w\, y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\bigr],$$
#
# 其中 `weight` $w$ 和 `pos_weight` $p_w$ 可选，二者都从右侧对齐与输入广播（与 NumPy 的广播规则
# 相同），然后按 `"none"`、`"mean"`（对所有元素求平均）或 `"sum"` 归约。
#
# *提示。* 在 float64 中，$x > 37$ 时 $\sigma(x)$ 恰好舍入为 1，此时 $\log(1 - \sigma(x)) = -\infty$。
# 两个对数都用 $\operatorname{softplus}(z) = \log(1 + e^{z})$ 来写：$-\log \sigma(x) =
# \operatorname{softplus}(-x)$，$-\log(1 - \sigma(x)) = \operatorname{softplus}(x)$。
# `np.logaddexp(0, z)` 计算 softplus 且不会溢出（笔记本 4）。

# %%
def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """Binary cross-entropy of logits x against targets y (any shape)."""
    loss = None  # [en zh]
    # ---- your code here (about 6 lines) ----
    # [en zh]
    pw = 1 if pos_weight is None else pos_weight  # [solutions]
    losses = pw * y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)  # [solutions]
    if weight is not None:  # [solutions]
        losses = losses * weight  # [solutions]
    losses = losses.astype(x.dtype, copy=False)  # [solutions]
    loss = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]  # [solutions]
    # ---- end of your code ----
    return loss

# %%
report = check_answer("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits)
assert report.ok  # [solutions]

# %% [markdown]
# <!-- en solutions -->
# ## When everything passes
#
# Compare your answers with `xent_ref/textbook.py`, the formulas written as
# they read, and then with the production functions in `xent_ref/softmax.py`,
# `xent_ref/cross_entropy.py` and `xent_ref/binary.py`: they compute the same
# numbers in blocks, without forming the one-hot matrix, and keep full
# accuracy where the plain formulas lose it (the textbook's docstrings say
# where). To check an implementation of your own outside this
# notebook, call `testing.check(your_function, "cross_entropy")` or run
# `xent-ref verify`.
# <!-- zh -->
# ## 全部通过之后
#
# 把你的答案和 `xent_ref/textbook.py`（照公式字面写出的版本）比一比，再和 `xent_ref/softmax.py`、
# `xent_ref/cross_entropy.py`、`xent_ref/binary.py` 里的正式实现比一比：它们分块计算出同样的数，
# 不构造 one-hot 矩阵，并在朴素公式丢失精度的地方保持完整精度（textbook 的文档字符串写明了在哪里）。
# 要在本笔记本之外检查你自己的实现，调用 `testing.check(your_function, "cross_entropy")` 或运行
# `xent-ref verify`。
