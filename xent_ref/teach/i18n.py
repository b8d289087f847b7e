"""Every sentence that ``explain`` and ``xent-ref examples`` print, in English and Chinese.

One entry per message id holds both languages, so a sentence cannot change in one
language and be forgotten in the other (``tests/test_examples.py`` checks that every
entry has both, with the same ``{placeholders}``). Numbers are never written here:
they are filled in by the caller from the library's results, identically for both
languages. Formulas (``grad = scale * (A p - q)``) stay as they are in both.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # ----- explain ---------------------------------------------------------------------------
    "probs.title": {
        "en": "probabilities p = {source} along the class axis:",
        "zh": "概率 p = {source}（沿类别轴）：",
    },
    "summary.numerator": {"en": "numerator", "zh": "分子"},
    "summary.denominator": {"en": "denominator", "zh": "分母"},
    "summary.result": {"en": "result", "zh": "结果"},
    "summary.library": {"en": "library", "zh": "库函数"},
    "summary.sum_of_loss": {"en": "sum of loss", "zh": "各行 loss 之和"},
    "summary.ratio": {"en": "numerator / denominator", "zh": "分子 / 分母"},
    "rule.sum": {"en": "reduction='sum' does not divide", "zh": "reduction='sum' 不做除法"},
    "rule.elements": {"en": "number of elements", "zh": "元素个数"},
    "rule.samples": {"en": "number of samples (probability targets)",
                     "zh": "样本数（概率目标）"},
    "rule.weights": {"en": "sum of weight[target] over kept rows",
                     "zh": "保留行的 weight[target] 之和"},
    "summary.none": {"en": "reduction='none': the per-sample losses above are the result.",
                     "zh": "reduction='none'：上表中各样本的 loss 就是结果。"},
    "note.bce_clamp": {"en": "loss = weight * -log p(y); each log is clamped at -100",
                       "zh": "loss = weight * -log p(y)；每个 log 都在 -100 处截断"},
    "grad.title": {"en": "gradient d loss / d input; scale = {scale}",
                   "zh": "梯度 d loss / d input；scale = {scale}"},
    "grad.scale_mean": {"en": "grad_output / denominator = {g} / {d}",
                        "zh": "grad_output / 分母 = {g} / {d}"},
    "grad.bce_chain": {"en": "(the chain rule through log p and log(1 - p) divides by p (1 - p))",
                       "zh": "（对 log p 和 log(1 - p) 用链式法则，要除以 p (1 - p)）"},
    "grad.logits_plain": {
        "en": "(with no pos_weight, A p - q is weight * (p - y): sigmoid minus target)",
        "zh": "（没有 pos_weight 时，A p - q 就是 weight * (p - y)：sigmoid 减去目标）",
    },
    "grad.nll_q": {"en": "grad = scale * (0 p - q) = -scale * q, q = weight[target] at the target,",
                   "zh": "grad = scale * (0 p - q) = -scale * q，q 在目标类处为 weight[target]，"},
    "grad.nll_rest": {
        "en": "0 elsewhere and on ignored rows (the input is log p already: no softmax)",
        "zh": "其余位置和被忽略的行为 0（输入本身已是 log p，不再经过 softmax）",
    },
    "grad.ce_rows": {"en": "an ignored row has q = 0 and A = 0; every row sums to A - A = 0",
                     "zh": "被忽略的行 q = 0、A = 0；每一行之和都是 A - A = 0"},
    "grad.cut_classes": {
        "en": "(classes {first}..{last} left out to fit {width} columns: ex.gradient has them all)",
        "zh": "（省略了类别 {first}..{last}，以便排进 {width} 列；ex.gradient 中有全部）",
    },
    "rows.more": {"en": "... {n} more rows (to_text(max_rows=None) shows all)",
                  "zh": "……还有 {n} 行（to_text(max_rows=None) 显示全部）"},
    # ----- examples: frame -------------------------------------------------------------------
    "doc.line": {"en": "document {doc}: {title}", "zh": "文档 {doc}：{title}"},
    "list.doc": {"en": " (document {doc})", "zh": "（文档 {doc}）"},
    "title.plain": {"en": "3x2 logits, labels [0, 1, 0], the plain mean",
                    "zh": "3x2 的 logits，标签 [0, 1, 0]，普通平均"},
    "title.ignore-index": {"en": "the same, with ignore_index=1",
                           "zh": "同上，ignore_index=1"},
    "title.weight-1-2": {"en": "the same, with weight=[1, 2]", "zh": "同上，weight=[1, 2]"},
    "title.weight-2-1": {"en": "the same, with weight=[2, 1]: a smaller loss",
                         "zh": "同上，weight=[2, 1]：损失变小"},
    "title.four-by-three": {"en": "4x3 logits, weight=[2, 1, 2], ignore_index=2",
                            "zh": "4x3 的 logits，weight=[2, 1, 2]，ignore_index=2"},
    "title.label-smoothing": {"en": "label smoothing, eps = 0.1 over 10 classes",
                              "zh": "标签平滑，eps = 0.1，共 10 个类别"},
    "title.binary": {"en": "BCE and BCE with logits, pos_weight=3",
                     "zh": "BCE 与 BCE with logits，pos_weight=3"},
    # ----- examples: figure labels -----------------------------------------------------------
    "fig.printout": {"en": "document {doc}, PyTorch printout: {printed}",
                     "zh": "文档 {doc}，PyTorch 输出：{printed}"},
    "fig.by_hand": {"en": "document {doc}, by hand: {sum}", "zh": "文档 {doc}，手算：{sum}"},
    "fig.replay": {"en": "the same hand method replayed (p rounded to 4 places)",
                   "zh": "按同样的手算方法重算（p 先四舍五入到 4 位）"},
    "fig.float32": {"en": "xent_ref in float32 (PyTorch's default dtype)",
                    "zh": "xent_ref 的 float32 结果（PyTorch 的默认类型）"},
    "fig.exact": {"en": "exact (float64)", "zh": "精确值（float64）"},
    "fig.lower": {"en": "document 001: 'the loss will be lower' (no figure)",
                  "zh": "文档 001：“损失会更低”（未给数值）"},
    "fig.weighted": {"en": "weight={w}, exact", "zh": "weight={w}，精确值"},
    "fig.no_weight": {"en": "no weight, exact", "zh": "不加权，精确值"},
    "fig.doc_true": {"en": "document 003: smoothed true class", "zh": "文档 003：平滑后的真实类别"},
    "fig.true": {"en": "smoothed true class, (1 - eps) * 1 + eps / K",
                 "zh": "平滑后的真实类别，(1 - eps) * 1 + eps / K"},
    "fig.doc_other": {"en": "document 003: every other class", "zh": "文档 003：其他每个类别"},
    "fig.other": {"en": "every other class, eps / K", "zh": "其他每个类别，eps / K"},
    "fig.by_class": {"en": "document 003's class: (-targets*log_probs).mean(0).sum()",
                     "zh": "文档 003 的类：(-targets*log_probs).mean(0).sum()"},
    "fig.as_probs": {"en": "cross_entropy(smoothed targets as probabilities)",
                     "zh": "cross_entropy(平滑后的目标作为概率目标)"},
    "fig.class_minus": {"en": "difference, class minus library", "zh": "差值，类减库函数"},
    "fig.doc_sigmoid": {"en": "document 004: sigmoid(logits)", "zh": "文档 004：sigmoid(logits)"},
    "fig.sigmoid": {"en": "sigmoid(logits), exact", "zh": "sigmoid(logits)，精确值"},
    "fig.doc_losses": {"en": "document 004: losses printed, values not shown",
                       "zh": "文档 004：打印了损失，但未给出数值"},
    "fig.bce": {"en": "BCELoss(sigmoid(logits)), exact", "zh": "BCELoss(sigmoid(logits))，精确值"},
    "fig.bce_logits": {"en": "BCEWithLogitsLoss(logits), exact",
                       "zh": "BCEWithLogitsLoss(logits)，精确值"},
    "fig.difference": {"en": "difference", "zh": "差值"},
    "fig.pos_weight": {"en": "BCEWithLogitsLoss(pos_weight=3), exact",
                       "zh": "BCEWithLogitsLoss(pos_weight=3)，精确值"},
    "ls.logits": {
        "en": "logits (2 samples x 10 classes, fixed seed; the document draws them at random):",
        "zh": "logits（2 个样本 x 10 个类别，固定随机种子；文档中是随机生成的）：",
    },
    # ----- examples: why the figures differ --------------------------------------------------
    "why.plain": {
        "en": "Why they differ: the document rounded each softmax probability to 4 places "
              "before taking the log. Rounding moves the mean by {shift}, enough to turn the "
              "exact {exact5} into {hand5}, which rounds to 0.6406; the exact value rounds to "
              "{exact4}.",
        "zh": "为什么不同：文档先把每个 softmax 概率四舍五入到 4 位，再取对数。这一舍入让平均值"
              "移动了 {shift}，足以把精确的 {exact5} 变成 {hand5}，后者舍入为 0.6406；精确值"
              "舍入后是 {exact4}。",
    },
    "why.ignore-index": {
        "en": "Why: the row whose label is 1 leaves both the numerator and the denominator "
              "(2 kept rows, not 3). PyTorch's 0.4421 is the exact value rounded to the 4 "
              "places it prints. The hand line, with its rounded probabilities, gives {hand5}, "
              "which rounds to {hand4}: the document's '= 0.4421' copies PyTorch's figure "
              "rather than its own arithmetic.",
        "zh": "原因：标签为 1 的那一行同时退出了分子和分母（保留 2 行，而不是 3 行）。PyTorch 的 "
              "0.4421 是精确值按它打印的 4 位小数舍入的结果。文档的手算式用的是舍入后的概率，"
              "得到 {hand5}，舍入为 {hand4}：文档里的“= 0.4421”抄的是 PyTorch 的数字，而不是"
              "它自己算出来的。",
    },
    "why.weight-1-2": {
        "en": "Why they differ: the document blames its 4-place rounding, but rounding alone "
              "gives {hand4}. The hand sum has a slip in its middle term: 2 * -ln0.3543 = "
              "{middle}, not 2.0741. With that term the hand calculation matches PyTorch. The "
              "denominator is the sum of the kept targets' weights, 1 + 2 + 1 = {den}, not the "
              "number of rows.",
        "zh": "为什么不同：文档归因于保留 4 位小数，但仅凭舍入得到的是 {hand4}。手算的求和式中间"
              "一项算错了：2 * -ln0.3543 = {middle}，而不是 2.0741。改正这一项后，手算结果与 "
              "PyTorch 一致。分母是保留目标的权重之和 1 + 2 + 1 = {den}，而不是行数。",
    },
    "why.weight-2-1": {
        "en": "Why: the weighted mean pulls toward the losses of the heavier class. Class 1's "
              "only sample has the worst fit (-log p = {nlp}); weighting class 0 instead makes "
              "the two well-fitted rows count double, so the mean falls. The document reads "
              "this as 'bad for training'; the weights change which samples the gradient "
              "listens to, not only the size of the loss.",
        "zh": "原因：加权平均会偏向权重大的类别的损失。类别 1 唯一的样本拟合得最差（-log p = "
              "{nlp}）；改为给类别 0 加权，两行拟合得好的样本就各算两次，平均值随之下降。文档把"
              "这理解为“对训练不利”；其实权重改变的是梯度更听哪些样本的，而不只是损失的大小。",
    },
    "why.four-by-three": {
        "en": "Why they differ: the hand calculation uses probabilities rounded to 4 places "
              "(0.4018, 0.2683, 0.3603) and logs rounded to 6; the replay above rounds the "
              "probabilities the same way and lands on the document's figure to within its "
              "last digit. The exact value needs the unrounded probabilities. The row whose "
              "label is 2 is ignored, so its weight 2 is in neither the numerator nor the "
              "denominator: 2 + 1 + 1 = {den}.",
        "zh": "为什么不同：手算用的是舍入到 4 位的概率（0.4018、0.2683、0.3603）和舍入到 6 位的"
              "对数；上面的重算按同样方式舍入概率，与文档的数字只差最后一位。精确值需要未经舍入"
              "的概率。标签为 2 的那一行被忽略，它的权重 2 既不进分子也不进分母：2 + 1 + 1 = "
              "{den}。",
    },
    "why.label-smoothing": {
        "en": "Why they are equal: for one sample, sum_c y_c * -log p_c with the smoothed y is "
              "(1 - eps) * -log p_true + (eps / K) * sum_c -log p_c, which is the library's "
              "loss row by row; .mean(0).sum() averages the rows. They part ways with class "
              "weights: PyTorch then divides by the sum of the targets' weights.",
        "zh": "为什么相等：对单个样本，用平滑后的 y 计算 sum_c y_c * -log p_c，得到 (1 - eps) * "
              "-log p_true + (eps / K) * sum_c -log p_c，逐行看正是库函数的损失；"
              ".mean(0).sum() 则是对各行求平均。加上类别权重后两者就不同了：PyTorch 那时除以的"
              "是各目标权重之和。",
    },
    "why.binary": {
        "en": "Why: both forms give the same number here. Only the logits form stays exact for "
              "large |x|: it never computes 1 - p, while the probability form rounds p to 1 and "
              "clamps the log at -100. pos_weight=3 triples the positive rows' -log p (samples "
              "0 and 2) and leaves the negative row alone; the mean still divides by 3 "
              "elements.",
        "zh": "原因：这里两种写法给出同一个数。但只有 logits 形式在 |x| 很大时仍然精确：它从不计算 "
              "1 - p，而概率形式会把 p 舍入成 1，再把 log 截断在 -100。pos_weight=3 使正样本行"
              "（样本 0 和 2）的 -log p 变为三倍，负样本行不变；平均时仍除以 3 个元素。",
    },
    # ----- examples: the gradient, by hand ---------------------------------------------------
    "grad.plain": {
        "en": "The gradient. With no weight and no smoothing, q is the one-hot target and A = "
              "1, so each row is (p - one_hot) / 3. Row 0 (target 0): ({p00} - 1) / 3 = {g00} "
              "and {p01} / 3 = {g01}. The target's entry is negative (raising its logit lowers "
              "the loss), the others are positive, and each row sums to p_0 + p_1 - 1 = 0: "
              "adding one number to every logit of a row changes no probability, so it cannot "
              "change the loss. The worst-fitted row, {worst}, gets the largest gradient.",
        "zh": "梯度。没有权重也没有平滑时，q 就是目标的 one-hot 向量，A = 1，所以每一行都是 "
              "(p - one_hot) / 3。第 0 行（目标 0）：({p00} - 1) / 3 = {g00}，{p01} / 3 = "
              "{g01}。目标类一项为负（调高它的 logit 会降低损失），其余为正；每行之和为 p_0 + "
              "p_1 - 1 = 0：给一行的所有 logit 加上同一个数，概率不变，损失也就不变。拟合最差"
              "的第 {worst} 行梯度最大。",
    },
    "grad.ignore-index": {
        "en": "The gradient. Row 1 is ignored: its loss is in neither the numerator nor the "
              "denominator, so the result does not depend on its logits at all; q = 0 and A = "
              "0, and its row is exactly ({g10}, {g11}). The kept rows are divided by 2, the "
              "number of kept rows: row 0 is (p - one_hot) / 2 = ({g00}, {g01}), {ratio} times "
              "its value in the plain mean over 3.",
        "zh": "梯度。第 1 行被忽略：它的损失既不在分子里也不在分母里，结果与它的 logits 完全无关；"
              "q = 0、A = 0，这一行的梯度恰好是 ({g10}, {g11})。保留的行除以 2，即保留的行数："
              "第 0 行是 (p - one_hot) / 2 = ({g00}, {g01})，是除以 3 的普通平均中的 {ratio} 倍。",
    },
    "grad.weight-1-2": {
        "en": "The gradient. Row 1's class has weight 2, so its q is 2 at the target and A = "
              "2: the row is 2 (p - one_hot) / 4 = ({g10}, {g11}), {ratio} times the "
              "unweighted row over the same denominator ({h10}, {h11}). Rows 0 and 2 (weight "
              "1) are (p - one_hot) / 4. Every row still sums to 0, weights or not: A is the "
              "total of q, so A p - q sums to A - A.",
        "zh": "梯度。第 1 行的类别权重为 2，所以它的 q 在目标处为 2，A = 2：这一行是 2 (p - "
              "one_hot) / 4 = ({g10}, {g11})，是不加权的行的 {ratio} 倍（同一分母下不加权的行为 "
              "({h10}, {h11})）。第 0 行和第 2 行（权重 1）是 (p - one_hot) / 4。不论有无权重，"
              "每行之和仍为 0：A 是 q 的总和，所以 A p - q 的和是 A - A。",
    },
    "grad.weight-2-1": {
        "en": "The gradient. Now class 0 weighs 2: rows 0 and 2 have A = 2 and are 2 (p - "
              "one_hot) / {den}; row 1 has A = 1 and is (p - one_hot) / {den} = ({g10}, "
              "{g11}). In the unweighted mean (over 3) its target entry was {plain11}; here it "
              "is {g11}: the class-1 sample pulls less, the class-0 samples more.",
        "zh": "梯度。现在类别 0 的权重为 2：第 0 行和第 2 行的 A = 2，为 2 (p - one_hot) / {den}；"
              "第 1 行的 A = 1，为 (p - one_hot) / {den} = ({g10}, {g11})。在不加权的平均（除以 "
              "3）中，它目标处的一项是 {plain11}，这里是 {g11}：类别 1 的样本拉力变小，类别 0 "
              "的样本拉力变大。",
    },
    "grad.four-by-three": {
        "en": "The gradient. Row 0 (label 2) is ignored: its row is 0, and the weight 2 of "
              "class 2 appears nowhere, neither in the denominator nor in any row. Row 2 "
              "(class 0, weight 2) is 2 (p - one_hot) / 4: its target entry is 2 * ({p20} - 1) "
              "/ 4 = {g20}. Rows 1 and 3 (class 1, weight 1) are (p - one_hot) / 4, e.g. row "
              "1's target entry ({p11} - 1) / 4 = {g11}.",
        "zh": "梯度。第 0 行（标签 2）被忽略：这一行为 0，类别 2 的权重 2 哪里都不出现，既不在分母"
              "里也不在任何一行里。第 2 行（类别 0，权重 2）是 2 (p - one_hot) / 4：目标处为 2 * "
              "({p20} - 1) / 4 = {g20}。第 1 行和第 3 行（类别 1，权重 1）是 (p - one_hot) / 4，"
              "例如第 1 行目标处为 ({p11} - 1) / 4 = {g11}。",
    },
    "grad.label-smoothing": {
        "en": "The gradient. Smoothing spreads the target: q = 0.9 one_hot + 0.01, so 0.91 at "
              "the target and 0.01 elsewhere, A = 1, and each row is (p - q) / 2. Sample 0 at "
              "its target class 2: ({p02} - 0.91) / 2 = {g02}; at class 0: ({p00} - 0.01) / 2 "
              "= {g00}. The gradient vanishes when p = q, not when p is one-hot: the smoothed "
              "loss stops pushing the true class at 0.91. Each row sums to 1 - 1 = 0.",
        "zh": "梯度。平滑把目标摊开：q = 0.9 one_hot + 0.01，即目标处 0.91、其余 0.01，A = 1，"
              "每行是 (p - q) / 2。样本 0 在目标类 2 处：({p02} - 0.91) / 2 = {g02}；在类别 0 "
              "处：({p00} - 0.01) / 2 = {g00}。梯度在 p = q 时为零，而不是在 p 为 one-hot 时："
              "平滑后的损失把真实类别推到 0.91 就不再推了。每行之和为 1 - 1 = 0。",
    },
    "grad.binary": {
        "en": "The gradient. BCE with logits: d loss / dx = sigmoid(x) - y per element, over 3 "
              "elements. With pos_weight = 3 a positive element has A = q = 3: (3 sigmoid(x) - "
              "3) / 3 = sigmoid(x) - 1, here {g0} and {g2}; the negative one is sigmoid(x) / 3 "
              "= {g1}. BCE on probabilities differentiates with respect to p: (p - y) / (p (1 - "
              "p)) / 3 = {b0}, {b1}, {b2}. Times dp/dx = p (1 - p) that is (p - y) / 3 = {c0}, "
              "{c1}, {c2}, the logits gradient without pos_weight: the same loss, seen through "
              "the sigmoid.",
        "zh": "梯度。BCE with logits：每个元素的 d loss / dx = sigmoid(x) - y，共 3 个元素。"
              "pos_weight = 3 时，正样本元素的 A = q = 3：(3 sigmoid(x) - 3) / 3 = sigmoid(x) - "
              "1，这里是 {g0} 和 {g2}；负样本元素是 sigmoid(x) / 3 = {g1}。概率形式的 BCE 对 p "
              "求导：(p - y) / (p (1 - p)) / 3 = {b0}、{b1}、{b2}。再乘以 dp/dx = p (1 - p)，"
              "得到 (p - y) / 3 = {c0}、{c1}、{c2}，正是不带 pos_weight 的 logits 梯度：同一个"
              "损失，只是隔着 sigmoid 来看。",
    },
}


def message(key: str, lang: str = "en", **values) -> str:
    """The message ``key`` in ``lang``, with ``values`` filled in."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {LANGS}, got {lang!r}")
    return MESSAGES[key][lang].format(**values)


def width(text: str) -> int:
    """Display columns of ``text``: a CJK character or full-width punctuation takes 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


# ASCII runs (words, numbers, formulas) are never split; a CJK character can end a line.
_TOKENS = re.compile(r"[\x21-\x7e]+| +|.")
_CLOSING = "，。；：、）”！？"  # never at the start of a line: they may use the last 2 columns


def wrap(text: str, columns: int, indent: str = "") -> list[str]:
    """Wrap ``text`` to ``columns`` display columns (``textwrap`` for text without CJK)."""
    if width(text) == len(text):
        return textwrap.wrap(text, columns, initial_indent=indent, subsequent_indent=indent)
    lines, line = [], indent
    for token in _TOKENS.findall(text):
        room = columns if token in _CLOSING else columns - 2
        if width(line) + width(token) > room and line.strip():
            lines.append(line.rstrip())
            line = indent
            if token.isspace():
                continue
        line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines
