# %% [markdown]
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
# where other projects differ from PyTorch.

# %%
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

import xent_ref as xr

np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(2024)


def lse(z):
    """log-sum-exp of each row of z (N, V), with the max shift of notebook 1."""
    m = z.max(axis=1)
    return m + np.log(np.exp(z - m[:, None]).sum(axis=1))

# %% [markdown]
# ## Softcap: $c \tanh(z / c)$
#
# Gemma 2 passes its final logits through $z \mapsto c \tanh(z / c)$ with
# $c = 30$ before the loss. Near 0 the curve is the identity (its slope is
# 1), so ordinary logits are left almost alone; far out it flattens at
# $\pm c$, so no logit can run away. The price is in the gradient: by the
# chain rule every logit's gradient is multiplied by the slope
# $1 - \tanh^2(z / c)$, which is small exactly where the logit is large.

# %%
cap = 30.0
z = np.linspace(-120, 120, 481)
capped = cap * np.tanh(z / cap)
slope = 1 - np.tanh(z / cap) ** 2

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(z, z, "k:", label="no cap")
left.plot(z, capped, label=f"c tanh(z / c), c = {cap:g}")
for bound in (cap, -cap):
    left.axhline(bound, color="gray", linewidth=0.8)
left.set_ylim(-60, 60)
left.set_xlabel("logit z")
left.set_ylabel("logit seen by the loss")
left.legend(fontsize=8)
left.set_title("softcap bounds the logits to (-c, c)")
right.plot(z, slope)
right.set_xlabel("logit z")
right.set_ylabel("d/dz c tanh(z / c)")
right.set_title("its slope 1 - tanh²(z / c) scales the gradient")
plt.show()

for value in (0.0, 15.0, 30.0, 60.0, 90.0):
    print(f"z = {value:>4g}: capped {cap * np.tanh(value / cap):8.4f}, "
          f"slope {1 - np.tanh(value / cap) ** 2:.4f}")
assert np.abs(capped).max() < cap and slope.max() == 1.0

# %% [markdown]
# Two tokens over a vocabulary of 5: the first is fairly sure and right, the
# second confident and wrong (its target is class 3, the model bets on
# class 0 with a logit of 60). The library applies the cap when given
# `softcap=c`; it equals the plain loss of the capped logits.

# %%
logits = np.array([[12.0, 4.0, 0.0, -5.0, 2.0],
                   [60.0, 15.0, -3.0, 4.0, 0.0]])
labels = np.array([0, 3])

plain = xr.cross_entropy(logits, labels, reduction="none")
softcapped = xr.cross_entropy(logits, labels, reduction="none", softcap=cap)
print("per-token loss, no cap :", plain)
print("per-token loss, c = 30 :", softcapped)
assert np.allclose(softcapped, xr.cross_entropy(cap * np.tanh(logits / cap), labels,
                                                reduction="none"), rtol=1e-14)

# %% [markdown]
# The wrong token's loss falls from about 56 to about 25: with the cap, no
# loss can exceed $2c + \log V$. Its gradient is softmax minus one-hot *of the
# capped logits*, times the slope at each raw logit:
#
# $$\frac{\partial \ell}{\partial z} = \big(\operatorname{softmax}(c \tanh(z/c)) - \text{onehot}(t)\big) \odot \big(1 - \tanh^2(z/c)\big).$$

# %%
def softcap_grad_by_hand(logits, labels, cap):
    probs = xr.softmax(cap * np.tanh(logits / cap), axis=1)
    one_hot = np.eye(logits.shape[1])[labels]
    return (probs - one_hot) * (1 - np.tanh(logits / cap) ** 2) / len(labels)


by_hand = softcap_grad_by_hand(logits, labels, cap)
library = xr.cross_entropy_grad(logits, labels, softcap=cap)
print("gradient, no cap:\n", xr.cross_entropy_grad(logits, labels))
print("gradient, c = 30:\n", library)
print(f"max |by hand - library| = {np.abs(by_hand - library).max():.1e}")
assert np.allclose(by_hand, library, rtol=0, atol=1e-15)
assert abs(library[1].sum()) > 0.1  # the slopes differ, so the row no longer sums to 0

# %% [markdown]
# Without the cap the wrong token's logit of 60 gets the full push, almost
# exactly $1/N = 0.5$; with it, the push is damped by the slope at 60,
# $1 - \tanh^2(2) \approx 0.07$. A softcapped gradient row no longer sums to
# zero, since each entry has its own slope.
#
# `logit_scale=s` multiplies the logits first (flash-attention's option), then
# the cap is applied, then the loss:

# %%
scale = 1.5
combined = xr.cross_entropy(logits, labels, logit_scale=scale, softcap=cap)
composed = xr.cross_entropy(cap * np.tanh(scale * logits / cap), labels)
print(f"logit_scale=1.5, softcap=30: {float(combined):.10f}  composed by hand: {float(composed):.10f}")
assert np.isclose(combined, composed, rtol=1e-14)

# %% [markdown]
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
left.set_xlabel("lse(z) of the shifted row")
left.set_ylabel("loss")
left.legend(fontsize=8)
left.set_title("cross-entropy is flat in the shift; z-loss is not")
right.axhline(0, color="gray", linewidth=0.8)
right.set_xlabel("lse(z) of the shifted row")
right.set_ylabel("sum of d loss / d z over the row")
right.legend(fontsize=8)
right.set_title("the pull 2 z_loss lse points towards lse = 0")
plt.show()

pull = xr.cross_entropy_grad(row + 20.0, target, z_loss=1e-2).sum()
print(f"lse = {lse(row + 20.0)[0]:.6f}: row sum of the gradient {pull:.6f}, "
      f"2 * 0.01 * lse = {2 * 1e-2 * lse(row + 20.0)[0]:.6f}")
assert np.isclose(pull, 2 * 1e-2 * lse(row + 20.0)[0], rtol=1e-12)

# %% [markdown]
# The two-token example with PaLM's $\lambda = 10^{-4}$: the loss grows by
# $\lambda$ times the mean of $\operatorname{lse}^2$, and the gradient by
# $2\lambda \operatorname{lse}\, p / N$.

# %%
z_coef = 1e-4
token_lse = lse(logits)
probs = xr.softmax(logits, axis=1)
loss_plain, grad_plain = xr.cross_entropy_with_grad(logits, labels)
loss_z, grad_z = xr.cross_entropy_with_grad(logits, labels, z_loss=z_coef)
print("lse per token         :", token_lse)
print(f"loss without / with   : {float(loss_plain):.8f} / {float(loss_z):.8f}")
print(f"difference            : {float(loss_z - loss_plain):.8f}"
      f"  = 1e-4 * mean(lse^2) = {z_coef * np.mean(token_lse ** 2):.8f}")
print("gradient difference:\n", grad_z - grad_plain)
print("row sums with z-loss  :", grad_z.sum(axis=1), " 2 * 1e-4 * lse / N:", 2 * z_coef * token_lse / 2)
assert np.isclose(loss_z - loss_plain, z_coef * np.mean(token_lse ** 2), rtol=1e-10)
assert np.allclose(grad_z - grad_plain, 2 * z_coef * token_lse[:, None] * probs / 2, rtol=0, atol=1e-15)

# %% [markdown]
# The z-term is not multiplied by the class weights, and `mean` divides it
# by the number of kept tokens, while the cross-entropy part divides by the
# sum of the kept tokens' weights (Liger Kernel and flash-attention agree on
# this). With a weight and an ignored token:

# %%
three = rng.normal(0, 3, size=(3, 5))
three_labels = np.array([2, -100, 4])
weight = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
kept = three_labels != -100
extra = (xr.cross_entropy(three, three_labels, weight=weight, z_loss=0.1)
         - xr.cross_entropy(three, three_labels, weight=weight))
print(f"added by z_loss = 0.1 : {float(extra):.10f}")
print(f"0.1 * mean over the 2 kept tokens of lse^2: {0.1 * np.mean(lse(three)[kept] ** 2):.10f}")
assert np.isclose(extra, 0.1 * np.mean(lse(three)[kept] ** 2), rtol=1e-12)

# %% [markdown]
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
    print(f"classes {start}-{stop - 1}: running max {run_max}, running sum {run_sum}, "
          f"target logit found for tokens {np.flatnonzero(here).tolist()}")

chunked_lse = run_max + np.log(run_sum)
chunked_loss = np.mean(chunked_lse - target_logit)
print(f"\nchunked by hand              : {chunked_loss:.15f}")
print(f"cross_entropy(h @ W.T, t)    : {float(xr.cross_entropy(h @ W.T, targets)):.15f}")
print(f"linear_cross_entropy(h, W, t): {float(xr.linear_cross_entropy(h, W, targets)):.15f}")
print(f"the same, one row per chunk  : "
      f"{float(xr.linear_cross_entropy(h, W, targets, chunk_size=1)):.15f}")
assert np.allclose(chunked_lse, lse(h @ W.T), rtol=1e-14)
assert np.isclose(chunked_loss, xr.linear_cross_entropy(h, W, targets), rtol=1e-14)

# %% [markdown]
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
print(f"max |dh by hand - library| = {np.abs(grad_h - lib_h).max():.1e}")
print(f"max |dW by hand - library| = {np.abs(grad_W - lib_W).max():.1e}")
print("grad_linear_bias without a bias:", lib_b)
assert np.allclose(grad_h, lib_h, rtol=0, atol=1e-15)
assert np.allclose(grad_W, lib_W, rtol=0, atol=1e-15)
assert lib_b is None

# %% [markdown]
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
print(f"N x V float32 at N = 8192, V = 128256: {8192 * 128256 * 4 / 2**30:.2f} GiB")
print(f"one N x V float32 array     : {logits_mib:6.1f} MiB")
print(f"the gradients (dh, dW)      : {outputs_mib:6.1f} MiB")
for name, peak in (("through the logits  ", peak_a), ("linear_cross_entropy", peak_b)):
    extra = peak - outputs_mib
    print(f"peak {name}   : {peak:6.0f} MiB; beyond the gradients {extra:4.0f} MiB "
          f"= {extra / logits_mib:.1f} N x V arrays")
print(f"losses {float(loss_a):.6f} and {float(loss_b):.6f}; "
      f"max |dW difference| {np.abs(dW_a - dW_b).max():.1e}")
assert peak_b - outputs_mib < logits_mib / 2 and peak_a - outputs_mib > logits_mib
assert np.isclose(loss_a, loss_b, rtol=1e-5) and np.allclose(dW_a, dW_b, rtol=0, atol=1e-6)

fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(["through the logits", "linear_cross_entropy"], [peak_a, peak_b])
ax.axvline(outputs_mib, color="black", linestyle=":", label="the gradients themselves")
ax.axvline(outputs_mib + logits_mib, color="red", linestyle=":", label="gradients + one N x V array")
ax.set_xlabel("peak traced memory (MiB)")
ax.legend(fontsize=8)
ax.set_title(f"Loss and gradients at N = {N}, H = {H}, V = {V}, float32")
plt.show()

# %% [markdown]
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
    print(f"shard {r} (classes {start}-{start + block.shape[1] - 1}): token 0's local max "
          f"{local_max[0]:7.4f}, local sum {local_sum[0]:8.4f}; "
          f"owns the targets of tokens {np.flatnonzero(owned).tolist()}")
sharded_lse, sharded_target = all_reduce(stats)
sharded_losses = sharded_lse - sharded_target
unsharded = xr.cross_entropy(full_logits, labels_v, reduction="none")
print(f"\nsharded mean loss  : {sharded_losses.mean():.15f}")
print(f"xr.cross_entropy   : {float(unsharded.mean()):.15f}")
print(f"max |difference| per token: {np.abs(sharded_losses - unsharded).max():.1e}")
assert np.allclose(sharded_losses, unsharded, rtol=1e-14, atol=0)

# %% [markdown]
# The gradient needs no further communication: once every device knows lse,
# it forms $e^{z - \operatorname{lse}}$ for its own classes and subtracts 1
# at the target if it owns it. Put side by side, the shards' blocks are the
# library's gradient.

# %%
grad_blocks = []
for start, block in shards(full_logits, k):
    g = np.exp(block - sharded_lse[:, None])
    owned = (labels_v >= start) & (labels_v < start + block.shape[1])
    g[owned, labels_v[owned] - start] -= 1.0
    grad_blocks.append(g / n)
sharded_grad = np.concatenate(grad_blocks, axis=1)
library_grad = xr.cross_entropy_grad(full_logits, labels_v)
print(f"max |sharded gradient - library| = {np.abs(sharded_grad - library_grad).max():.1e}")
assert np.allclose(sharded_grad, library_grad, rtol=0, atol=1e-16)

# %% [markdown]
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
    print(f"k = {c:>2}: sharded {good:.10f}   with C = V/k {bad:.10f}   error {bad - reference:+.6f}")
assert np.allclose(right_way, reference, rtol=1e-14)
assert bug[0] == right_way[0] and bug[2] - reference > 0.1

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(shard_counts, np.array(bug) - reference, "o-", label="smoothing divided by V / k")
ax.plot(shard_counts, np.array(right_way) - reference, "s--", label="smoothing divided by V")
ax.set_xticks(shard_counts)
ax.set_xlabel("number of shards k")
ax.set_ylabel("loss - unsharded loss")
ax.legend(fontsize=8)
ax.set_title(f"Label smoothing {eps} on {vocab_size} classes, split in k shards")
plt.show()

# %% [markdown]
# ## Two conventions that differ from PyTorch
#
# **Megatron's smoothing.** PyTorch gives the target $1 - \varepsilon +
# \varepsilon / C$ and every other class $\varepsilon / C$. Megatron gives
# the target exactly $1 - \varepsilon$ and spreads $\varepsilon$ over the
# other $C - 1$ classes; that is PyTorch's formula with
# $\varepsilon' = \varepsilon\, C / (C - 1)$. The gap shrinks like $1 / C$:
# it matters at $C = 4$ and hardly at a vocabulary of 1000.

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
    print(f"{name}: PyTorch eps = 0.1 {pytorch:.8f}, Megatron {megatron:.8f} "
          f"(= PyTorch with eps C/(C-1) = {eps * c / (c - 1):.6f}: {rescaled:.8f}), "
          f"difference {megatron - pytorch:+.2e}")
    assert np.isclose(megatron, rescaled, rtol=1e-13)

# %% [markdown]
# **torchtune when every token is ignored.** With `reduction="mean"`,
# PyTorch divides by the number of kept tokens, so a batch in which every
# target is `ignore_index` gives $0 / 0$ = nan (and the library follows it).
# torchtune's loss returns 0 instead, as if the denominator were at least 1.
# The gradient is zero either way; only the reported loss differs, which
# matters when losses are averaged across steps or devices.

# %%
all_ignored = np.full(4, -100)
x4 = rng.normal(size=(4, 5))
pytorch_mean = float(xr.cross_entropy(x4, all_ignored))
kept_count = int(np.sum(all_ignored != -100))
torchtune_style = float(xr.cross_entropy(x4, all_ignored, reduction="sum")) / max(kept_count, 1)
print(f"PyTorch (and xent_ref) mean: {pytorch_mean}")
print(f"torchtune's convention     : {torchtune_style}")
print(f"gradient all zero          : {not xr.cross_entropy_grad(x4, all_ignored).any()}")
assert np.isnan(pytorch_mean) and torchtune_style == 0.0
