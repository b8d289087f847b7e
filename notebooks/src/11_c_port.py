# %% [markdown]
# <!-- en -->
# # 11. Exercise: port the loss to C, judged by the golden corpus
# <!-- zh -->
# # 11. 练习：把损失移植到 C，由参考用例集评判
# <!-- solutions -->
# # 11. Exercise: port the loss to C, judged by the golden corpus (solutions)
#
# *This is the solutions variant of `../11_c_port.ipynb`, built from the same source:
# it compiles one right answer, `c_port/port.c`, into the template, and
# `verify` passes it. Try the exercise before reading on.*
# <!-- en solutions -->
#
# A loss written in NumPy is the easy part; the code that trains a model runs in C,
# C++ or CUDA. CMU's 10-714 ("Deep Learning Systems") has its students port the
# same operators to C and grades them by the numbers their code prints. Here you do
# that for `cross_entropy` with class indices, class weights, `ignore_index` and
# the three reductions, and its gradient with respect to the logits.
#
# The judge is the one every implementation meets, `xent-ref verify --results`
# (`docs/golden-format.md`, sections 4 and 5): your program prints a results file,
# `verify` compares it with the golden corpus and, when something is wrong, says
# which cases fail and, where it recognises the mistake, its name and its fix. The
# expected values never reach your program.
#
# **How to work.** `exercises/c_port/xent.c` is the template: a `main` that reads
# the cases and prints the results file, and two functions, between the
# `your port` markers, that return zeros. Write them there (in your editor), then
# run the cells below: they prepare the inputs, compile `xent.c` with the system's
# `cc`, run it and call `verify`. The same steps work in a shell; they are at the
# top of `xent.c`. The template fails until you are done; the report below is what
# the blank template gets. One right answer is in `solutions/c_port/port.c`, which
# the test `tests/test_course.py` compiles and `verify` passes.
# <!-- zh -->
#
# 用 NumPy 写出损失是容易的部分；真正训练模型的代码运行在 C、C++ 或 CUDA 里。CMU 的 10-714
# （"Deep Learning Systems"）让学生把同样的算子移植到 C，并按程序打印出的数字评分。这里你要为
# `cross_entropy` 做同样的事：类别索引目标、类别权重、`ignore_index` 和三种 reduction，以及
# 它对 logits 的梯度。
#
# 评判者是每个实现都要面对的 `xent-ref verify --results`（`docs/golden-format.md` 第 4、5 节）：
# 你的程序打印一个结果文件，`verify` 把它与参考用例集（golden corpus）比较；出错时，它会指出哪些
# 用例失败，如果认出了错误，还会给出错误的名称和改法。期望值从不会传到你的程序里。
#
# **怎么做。** `exercises/c_port/xent.c` 是模板：一个读入用例并打印结果文件的 `main`，以及
# `your port` 标记之间的两个函数，它们目前只返回零。在你的编辑器里把它们写好，再运行下面的单元格：
# 它们准备输入、用系统的 `cc` 编译 `xent.c`、运行它并调用 `verify`。同样的步骤也可以在命令行里
# 完成，写在 `xent.c` 的开头。完成之前模板不会通过；下面的报告就是空白模板得到的结果。一个正确
# 答案在 `../solutions/c_port/port.c`，测试 `tests/test_course.py` 会编译它，`verify` 判它通过。

# %%
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path("..").resolve()  # [en]
ROOT = Path("../..").resolve()  # [zh solutions]
sys.path.insert(0, str(ROOT / "exercises" / "c_port"))
import prepare  # noqa: E402 (exercises/c_port/prepare.py)

work = Path(tempfile.mkdtemp(prefix="xent-c-port-"))
corpus, inputs = prepare.write(work)
count = int(inputs.read_text(encoding="ascii").splitlines()[1])
print(_("nb.11.cases"))
print(_("nb.11.first_case"))
print("\n".join(inputs.read_text(encoding="ascii").splitlines()[2:7]))

# %% [markdown]
# <!-- en solutions -->
# ## What you write
#
# The two functions of the template, as it ships:
# <!-- zh -->
# ## 你要写的部分
#
# 模板里的两个函数，原样如下：

# %%
template = (ROOT / "exercises" / "c_port" / "xent.c").read_text(encoding="utf-8")
begin = template.index(prepare.BEGIN)
print(template[begin:template.index(prepare.END) + len(prepare.END)])

# %% [markdown]
# <!-- en solutions -->
# What they must get right, each a classic mistake `verify` names if you make it:
#
# * shift each row by its maximum before `exp` (logits of $10^4$ and $10^{30}$ are in
#   the corpus), and form the probabilities as $e^{x_j - m} / s$, not
#   $e^{x_j - \operatorname{lse}}$: at $10^4$, $\operatorname{lse} = m + \log s$ rounds
#   $\log s$ away and every tied maximum gets $p = 1$;
# * a row whose target is `ignore_index` adds nothing, to the sum or to the mean's
#   denominator, and gets a zero gradient;
# * `reduction="mean"` divides by $\sum_i w_{t_i}$ over the kept rows, not by their
#   count (notebook 2); nothing kept gives $0/0$, NaN, as PyTorch;
# * the gradient is $s_i\, w_{t_i} (p_i - \text{onehot}(t_i))$ with
#   $s_i$ = `grad_output` (none), `grad_output` (sum) or `grad_output` divided by the
#   mean's denominator (notebook 9 walked through why).
# <!-- zh -->
# 它们必须做对的几件事；每一件都是经典错误，犯了的话 `verify` 会说出它的名称：
#
# * 取 `exp` 之前每行先减去最大值（用例集里有 $10^4$ 和 $10^{30}$ 的 logits），并且用
#   $e^{x_j - m} / s$ 计算概率，而不是 $e^{x_j - \operatorname{lse}}$：在 $10^4$ 处，
#   $\operatorname{lse} = m + \log s$ 会把 $\log s$ 舍入掉，并列的最大值都会得到 $p = 1$；
# * 目标等于 `ignore_index` 的行对求和和平均的分母都没有贡献，梯度为零；
# * `reduction="mean"` 除以保留行的 $\sum_i w_{t_i}$，而不是保留行的个数（见第 2 个笔记本）；
#   一行都没保留时得到 $0/0$，即 NaN，与 PyTorch 相同；
# * 梯度是 $s_i\, w_{t_i} (p_i - \text{onehot}(t_i))$，其中 $s_i$ 为 `grad_output`（none）、
#   `grad_output`（sum），或 `grad_output` 除以平均的分母（第 9 个笔记本讲了为什么）。

# %% [markdown]
# <!-- en solutions -->
# ## Compile, run, verify
# <!-- zh -->
# ## 编译、运行、评判

# %%
port = template[begin + len(prepare.BEGIN):template.index(prepare.END)]  # [en zh]
port = (ROOT / "notebooks" / "solutions" / "c_port" / "port.c").read_text(encoding="utf-8")  # [solutions]
(work / "xent.c").write_text(prepare.splice(template, port), encoding="utf-8")


def verify_port(folder):
    """Compile folder/xent.c, run it on the inputs, judge its results; the report's
    exit status (None without a C compiler)."""
    compiler = shutil.which("cc")
    if compiler is None:
        print(_("nb.11.no_compiler"))
        return None
    subprocess.run([compiler, "-std=c99", "-O2", "-o", "xent", "xent.c", "-lm"], cwd=folder,
                   check=True)
    with open(folder / "results.json", "w", encoding="utf-8") as results:
        subprocess.run(["./xent", "inputs.txt"], cwd=folder, stdout=results, check=True)
    report = subprocess.run([sys.executable, "-m", "xent_ref", "verify", "--results",
                             "results.json", "--corpus", "corpus.json"], cwd=folder,
                            capture_output=True, text=True)
    lines = report.stdout.splitlines()
    # from the table of results on (the header names the corpus and the rule)
    table = lines.index(next(line for line in lines if line.startswith("function")))
    print("\n".join(lines[table:]))
    print(_("nb.11.exit_status"))
    return report.returncode


status = verify_port(work)
assert status in (0, 1, None)
assert status == 0  # [solutions]
shutil.rmtree(work)
