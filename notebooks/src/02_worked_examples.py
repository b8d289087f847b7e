# %% [markdown]
# <!-- en -->
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
# This notebook also exists in Chinese: `zh/02_worked_examples.ipynb`, built
# from the same source file, so the two always show the same numbers.
# <!-- zh -->
# # 2. 交叉熵例题：逐一精确重算
#
# 文档 001《关于nn.CrossEntropyLoss交叉熵损失中weight和ignore_index参数》用手算和
# PyTorch 各做了五个小例子。手算时概率只保留 4 位小数，所以结果在第 4、5 位上会
# 偏离精确值，其中一处还有算术错误。本笔记本把每个例子从 softmax 表开始重新搭起来，
# 把按 4 位小数的手算过程原样重放，与精确值并排对照，最后一步交给库函数。
#
# 在终端里运行 `uv run xent-ref examples` 可以看到同样的重算过程。本笔记本与英文版
# `../02_worked_examples.ipynb` 由同一个源文件生成，两者显示的数字永远一致。

# %%
import numpy as np

import xent_ref as xr
from xent_ref import textbook
from xent_ref import explain

LANG = _("nb.lang")


np.set_printoptions(precision=7, suppress=True)

logits = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
labels = np.array([0, 1, 0])

# %% [markdown]
# <!-- en -->
# ## Step 1: the softmax table
#
# Three samples, two classes. Each row of probabilities is the softmax of a
# row of logits (notebook 1); the loss only looks at the probability of each
# sample's true class.
# <!-- zh -->
# ## 第一步：softmax 表
#
# 三个样本，两个类别。每一行概率是对应一行 logits 的 softmax（见笔记本 1）；
# 损失只关心每个样本真实类别上的那个概率。

# %%
probs = xr.softmax(logits, axis=1)
p_true = probs[np.arange(len(labels)), labels]
print(_("nb.02.softmax_table") + "\n", probs)
print(_("nb.02.p_true_class"), p_true)
print(_("nb.02.rounded_to_4_places_as"),
      p_true.round(4))

# %% [markdown]
# <!-- en -->
# ## Example 1: the plain mean (document: 0.6406)
# <!-- zh -->
# ## 例 1：普通平均（文档：0.6406）
# <!-- both -->
#
# $$\text{loss} = \frac{1}{N} \sum_i -\log p_{i, t_i}$$
#
# <!-- en -->
# The document computes `-(ln0.69 + ln0.3543 + ln0.5987) / 3 = 0.6406`.
# <!-- zh -->
# 文档的算式是 `-(ln0.69 + ln0.3543 + ln0.5987) / 3 = 0.6406`。

# %%
def hand(p_rounded, weights):
    """The document's method: weighted mean of -ln of rounded probabilities."""
    return float((weights * -np.log(p_rounded)).sum() / weights.sum())


by_hand = hand(p_true.round(4), np.ones(3))
exact = float(xr.cross_entropy(logits, labels))
print(_("nb.02.document_by_hand"), "0.6406")
print(_("nb.02.hand_method_replayed"), f"{by_hand:.7f}")
print(_("nb.02.exact"), f"{exact:.7f}")
assert round(by_hand, 4) == 0.6406 and round(exact, 7) == 0.6405346

# %% [markdown]
# <!-- en -->
# The document's figure is right for its rounded inputs; the exact value
# rounds to 0.6405. Rounding 0.3543437 down to 0.3543 alone raises that
# sample's $-\log p$ by about $1.2 \times 10^{-4}$.
#
# `explain` shows every number of the same call: the rows, the numerator, the
# denominator, and the library's result (which it checks equals their ratio).
# Printed as text it also shows the gradient, row by row (notebook 5 derives
# it); `to_text(lang="zh")` writes the same in Chinese.
# <!-- zh -->
# 就它取整后的输入而言，文档的结果没有算错；精确值四舍五入是 0.6405。单是把
# 0.3543437 舍成 0.3543，就让这个样本的 $-\log p$ 增加了约 $1.2 \times 10^{-4}$。
#
# `explain` 会列出同一次调用中的每个数：逐行明细、分子、分母，以及库函数的结果
# （它会核对结果确实等于分子除以分母）。以文本打印时，它还逐行给出梯度（推导见
# 笔记本 5）；`to_text(lang="zh")` 用中文写出说明文字。下面直接显示的表格是英文的，
# 表头含义：`target` 是目标类别，`p(target)` 是它的概率，`weight` 是权重，
# `status` 表示保留（kept）还是忽略（ignored），`loss` 是该行的损失；`numerator`
# 是分子，`denominator` 是分母。

# %%
explain(xr.cross_entropy, logits, labels)

# %% [markdown]
# <!-- en -->
# ## Example 2: `ignore_index=1` (document: 0.4421)
#
# A target equal to `ignore_index` leaves the numerator *and* the denominator:
# the mean is over the 2 kept samples, not 3.
# <!-- zh -->
# ## 例 2：`ignore_index=1`（文档：0.4421）
#
# 目标等于 `ignore_index` 的样本既不进分子，*也不进*分母：平均是对保留下来的
# 2 个样本求的，而不是 3 个。

# %%
ex = explain("cross_entropy", logits, labels, ignore_index=1)
print(ex.to_text(lang=LANG))
replayed = hand(p_true[[0, 2]].round(4), np.ones(2))
print(_("nb.02.document_pytorch_0_4421_hand"))
print(_("nb.02.hand_method_replayed_2"), f"{replayed:.7f}  ",
      _("nb.02.exact_2"), f"{ex.value:.7f}")
assert ex.denominator == 2 and round(ex.value, 7) == 0.4420580
assert round(replayed, 4) == 0.4420  # the hand line really gives 0.4420

# %% [markdown]
# <!-- en -->
# PyTorch's 0.4421 is the exact value rounded. The document's own hand line,
# with its rounded probabilities, gives 0.44203, which rounds to 0.4420: the
# "= 0.4421" at its end repeats PyTorch's figure.
#
# ## Example 3: `weight=[1, 2]` (document: PyTorch 0.7398, hand 0.7396)
#
# With class weights $w$ the mean is a weighted mean:
# <!-- zh -->
# PyTorch 的 0.4421 是精确值四舍五入的结果。而文档自己的手算式用的是取整后的
# 概率，算出来是 0.44203，应当写作 0.4420；末尾的"= 0.4421"其实是照抄了 PyTorch
# 的输出。
#
# ## 例 3：`weight=[1, 2]`（文档：PyTorch 0.7398，手算 0.7396）
#
# 有了类别权重 $w$，平均就变成加权平均：
# <!-- both -->
#
# $$\text{loss} = \frac{\sum_i w_{t_i} \cdot (-\log p_{i,t_i})}{\sum_i w_{t_i}}.$$
#
# <!-- en -->
# The denominator is the sum of the targets' weights, $1 + 2 + 1 = 4$.
# <!-- zh -->
# 分母是各样本目标类别权重之和：$1 + 2 + 1 = 4$。

# %%
w = np.array([1.0, 2.0])
ex = explain("cross_entropy", logits, labels, weight=w)
print(ex.to_text(lang=LANG))
doc_terms = np.array([0.3711, 2.0741, 0.5130])  # the document's three terms
our_terms = (w[labels] * -np.log(p_true.round(4))).round(4)
print(_("nb.02.document_s_terms"), doc_terms, f"-> {doc_terms.sum() / 4:.6f}")
print(_("nb.02.same_terms_redone"), our_terms, f"-> {our_terms.sum() / 4:.6f}")
print(_("nb.02.exact_3"), f"{ex.value:.7f}")
assert round(ex.value, 7) == 0.7397730 and ex.denominator == 4
assert abs(doc_terms.sum() / 4 - 0.73955) < 1e-12  # which the document rounds up to 0.7396
assert round(our_terms.sum() / 4, 4) == 0.7398

# %% [markdown]
# <!-- en -->
# The document blames rounding for its 0.7396, but rounding alone gives 0.7398.
# The slip is the middle term: $2 \times (-\ln 0.3543) = 2.0752$, not 2.0741.
#
# ## Example 4: `weight=[2, 1]` (document: "the loss will be lower")
#
# Weighting the class whose samples are already well fitted pulls the weighted
# mean toward their small losses.
# <!-- zh -->
# 文档把 0.7396 归因于取整误差，可单是取整得到的是 0.7398。错在中间那一项：
# $2 \times (-\ln 0.3543) = 2.0752$，而不是 2.0741。
#
# ## 例 4：`weight=[2, 1]`（文档："loss会更低"）
#
# 给已经拟合得很好的那一类加大权重，加权平均就会被拉向它们较小的损失。

# %%
losses = {
    "weight=[2, 1]": float(xr.cross_entropy(logits, labels, weight=[2.0, 1.0])),
    _("nb.02.no_weight"): float(xr.cross_entropy(logits, labels)),
    "weight=[1, 2]": float(xr.cross_entropy(logits, labels, weight=[1.0, 2.0])),
}
for name, value in losses.items():
    print(f"{name:14} {value:.7f}")
low, plain, high = losses.values()
assert low < plain < high

# %% [markdown]
# <!-- en -->
# ## Example 5: 4x3 logits, `weight=[2, 1, 2]`, `ignore_index=2` (document: 1.0401, hand 1.0400175)
#
# Both options at once. The first sample's label is 2, so it is ignored, and
# its class weight 2 appears nowhere. The kept samples have labels 1, 0, 1 with
# weights 1, 2, 1: the denominator is 4.
# <!-- zh -->
# ## 例 5：4x3 的 logits，`weight=[2, 1, 2]`，`ignore_index=2`（文档：1.0401，手算 1.0400175）
#
# 两个参数同时使用。第一个样本的标签是 2，被忽略，它的类别权重 2 在哪里都不出现。
# 保留下来的样本标签是 1、0、1，权重是 1、2、1：分母是 4。

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
print(_("nb.02.document_s_rounded_p"), p4[kept].round(4))
print(_("nb.02.document_by_hand_2"), "1.0400175")
print(_("nb.02.hand_method_replayed_3"), f"{replayed:.7f}")
print(_("nb.02.exact_4"), f"{ex.value:.7f} ",
      _("nb.02.numerator_denominator"))
assert round(ex.value, 7) == 1.0400556 and ex.denominator == 4
assert abs(replayed - 1.0400175) < 1e-6
assert [row.kept for row in ex.rows] == [False, True, True, True]

# %% [markdown]
# <!-- en -->
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
# The table's exact column is checked by the cell below, so it cannot go stale;
# the cell also recomputes each figure with `xent_ref.textbook.cross_entropy`,
# the loss written as the formula reads.
# <!-- zh -->
# 这一次手算的算术没有错；全部差值 $3.8 \times 10^{-5}$ 都来自把概率舍到 4 位小数。
#
# ## 小结
#
# | 例子 | 文档 | 精确值（xent_ref） | 差异原因 |
# |---|---|---|---|
# | 普通平均 | 0.6406 | 0.6405346 | 概率舍到 4 位小数 |
# | `ignore_index=1` | 0.4421 | 0.4420580 | 一致（PyTorch 的四舍五入）；手算式实际得 0.4420 |
# | `weight=[1, 2]` | 0.7398 / 手算 0.7396 | 0.7397730 | 算错一项：2 x 1.0376 = 2.0752，不是 2.0741 |
# | `weight=[2, 1]` | "loss会更低" | 0.5611440 | - |
# | 4x3 | 1.0401 / 手算 1.0400175 | 1.0400556 | 概率舍到 4 位小数 |
#
# 表中精确值一列由下面的代码单元核对，不会过时；该单元还用
# `xent_ref.textbook.cross_entropy`（照公式原样写成的损失函数）把每个值重算一遍。

# %%
table = {
    0.6405346: xr.cross_entropy(logits, labels),
    0.4420580: xr.cross_entropy(logits, labels, ignore_index=1),
    0.7397730: xr.cross_entropy(logits, labels, weight=[1.0, 2.0]),
    0.5611440: xr.cross_entropy(logits, labels, weight=[2.0, 1.0]),
    1.0400556: xr.cross_entropy(logits4, labels4, weight=[2.0, 1.0, 2.0], ignore_index=2),
}
# the textbook version: the formula as it reads, in plain NumPy
by_formula = [
    textbook.cross_entropy(logits, labels),
    textbook.cross_entropy(logits, labels, ignore_index=1),
    textbook.cross_entropy(logits, labels, weight=np.array([1.0, 2.0])),
    textbook.cross_entropy(logits, labels, weight=np.array([2.0, 1.0])),
    textbook.cross_entropy(logits4, labels4, weight=np.array([2.0, 1.0, 2.0]), ignore_index=2),
]
for (shown, value), plain in zip(table.items(), by_formula):
    assert round(float(value), 7) == shown == round(float(plain), 7), (shown, value, plain)
gap = max(abs(float(v) - float(t)) for v, t in zip(table.values(), by_formula))
print(_("nb.02.all_five_exact_figures_confirmed"), f"({len(table)})")
print(_("nb.02.largest_library_textbook"), f"{gap:.1e}")
