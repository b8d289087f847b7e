# %% [markdown]
# <!-- en -->
# # 6. Exercises: write the losses yourself
# <!-- solutions -->
# # 6. Exercises: write the losses yourself (solutions)
#
# *This is the solutions variant of `../06_exercises.ipynb`, built from the same
# source with one right answer filled in for each exercise; every check cell
# below passes. Try the exercises before reading on.*
# <!-- both -->
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

# %%
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


def check_answer(name, fn=None, *, grad=None, **select):
    """Run the golden cases of ``name`` (optionally only those matching ``select``,
    see ``testing.cases``) on your function and print the report."""
    answer, probe = (fn, name) if fn is not None else (grad, name + "_grad")
    if not _attempted(answer, probe):
        print(f"{probe}: not attempted yet. Write the function in the cell above, run it, "
              "then run this cell again.")
        return None
    cases = testing.cases(name, **select) if select else None
    report = testing.check(fn, name, grad=grad, cases=cases, dtypes=("float32", "float64"))
    print(report)
    return report

# %% [markdown]
# ## What a report looks like
#
# Before the exercises, a function that is wrong on purpose: it calls the
# library's softmax but always along the last axis, whatever `axis` says. The
# report gives the counts per function, names the mistake with its fix, and
# prints the first failing case in full: its inputs, the expected and the
# obtained values, and where they differ.

# %%
import xent_ref as xr


def softmax_on_last_axis(x, axis=-1):
    return xr.softmax(x, axis=-1)


example = check_answer("softmax", softmax_on_last_axis)
assert not example.ok and "class-axis-last" in [d.id for d in example.diagnoses]

# %% [markdown]
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

# %%
def softmax(x, axis=-1):
    """Softmax of the array x along axis."""
    probs = None  # [en]
    # ---- your code here (about 3 lines) ----
    # [en]
    shifted = x - x.max(axis=axis, keepdims=True)  # [solutions]
    exps = np.exp(shifted)  # [solutions]
    probs = exps / exps.sum(axis=axis, keepdims=True)  # [solutions]
    # ---- end of your code ----
    return probs

# %%
report = check_answer("softmax", softmax)
assert report.ok  # [solutions]

# %% [markdown]
# ## Exercise 2: log-softmax
#
# $$\log \operatorname{softmax}(x)_i = x_i - \log \sum_j e^{x_j}.$$
#
# *Hint.* Do not take `np.log(softmax(x))`: a probability that underflows to 0
# becomes $-\infty$, although its log is an ordinary number such as $-800$.
# Shift by the maximum $m$ and use $\log \sum_j e^{x_j} = m + \log \sum_j e^{x_j - m}$.

# %%
def log_softmax(x, axis=-1):
    """Log-softmax of the array x along axis."""
    log_probs = None  # [en]
    # ---- your code here (about 3 lines) ----
    # [en]
    shifted = x - x.max(axis=axis, keepdims=True)  # [solutions]
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))  # [solutions]
    # ---- end of your code ----
    return log_probs

# %%
report = check_answer("log_softmax", log_softmax)
assert report.ok  # [solutions]

# %% [markdown]
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

# %%
def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """Cross-entropy of (N, C) logits against (N,) class indices."""
    loss = None  # [en]
    # ---- your code here (about 10 lines) ----
    # [en]
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

# %%
def cross_entropy_grad(logits, target, weight=None, ignore_index=-100, reduction="mean",
                       grad_output=1.0):
    """d loss / d logits, shape (N, C), for the loss of exercise 3."""
    grad = None  # [en]
    # ---- your code here (about 12 lines) ----
    # [en]
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

# %%
def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """Binary cross-entropy of logits x against targets y (any shape)."""
    loss = None  # [en]
    # ---- your code here (about 6 lines) ----
    # [en]
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
