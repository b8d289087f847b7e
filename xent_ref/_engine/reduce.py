"""Reductions and upstream-gradient handling, in one place.

A loss first produces one number per sample (``reduction="none"``). ``sum`` adds
them; ``mean`` divides the sum by a *denominator* that each loss defines (the
number of samples, or the total weight of the kept targets). The gradient of a
reduced loss with respect to each per-sample loss is therefore a single scale:
``grad_output`` for ``sum``, ``grad_output / denominator`` for ``mean`` -- and
``grad_output`` itself, element by element, for ``none``.

Everything here runs inside a public call, under the library's error state
(:func:`xent_ref._engine.blocks.library_errstate`): a zero denominator or an
``inf - inf`` gives PyTorch's inf or nan without a NumPy warning.
"""

from __future__ import annotations

import numpy as np

from xent_ref._engine.blocks import run_blocks


def reduce(losses: np.ndarray, reduction: str, denominator) -> np.ndarray:
    """Apply ``reduction`` to per-sample ``losses``; returns an ndarray (0-d unless ``none``).

    A zero denominator divides as PyTorch does, by IEEE rules: ``mean`` over nothing
    (an empty batch, every target ignored, or only zero weights) is 0/0 = nan, and
    a non-zero sum over a zero total weight (class weights of both signs that cancel)
    is +-inf. No NumPy warning either way.
    """
    if reduction == "none":
        return losses
    total = total_of(losses)
    if reduction == "sum":
        return np.asarray(total)
    return divided(total, denominator, losses.dtype)


def divided(value, denominator, dtype) -> np.ndarray:
    """``value / denominator`` in float64, rounded once to ``dtype``.

    A count (the number of samples or of kept targets, an ``int``) is used exactly:
    in float32 a count above 2**24 would be rounded before the division. For a
    float32 ``value`` and a denominator float32 can hold this is bit for bit
    float32's own division (a quotient rounded to 53 bits, then to 24, is rounded
    correctly), so float32 results do not change where they were right.
    """
    return np.asarray(np.divide(value, np.float64(denominator)), dtype=dtype)


def reduce_blocks(block_losses, blocks, reduction: str, denominator, dtype, shape) -> np.ndarray:
    """Run ``block_losses(block)`` over ``blocks`` (on all cores) and apply ``reduction``.

    For ``none`` each block's losses are written into a new array of ``shape`` at
    ``[block]``. ``mean`` and ``sum`` never hold all the losses at once: each block
    is summed as it is made, and the block sums are summed (pairwise) at the end.
    """
    losses = np.empty(shape, dtype) if reduction == "none" else None

    def work(block):
        values = block_losses(block)
        if losses is None:
            return total_of(values)
        losses[block] = values

    block_sums = run_blocks(work, blocks)
    if losses is not None:
        return losses
    return reduce(np.array(block_sums, dtype=dtype), reduction, denominator)


def total_of(losses: np.ndarray):
    """``losses.sum()`` in the losses' dtype; +inf and -inf add up to nan (as in
    PyTorch)."""
    return losses.sum(dtype=losses.dtype)


def per_sample_scale(grad_output: np.ndarray, reduction: str, denominator) -> np.ndarray:
    """d(reduced loss)/d(loss_i) times the upstream gradient, broadcastable to the losses.

    For ``mean`` with a zero denominator this is ``grad_output / 0`` (inf), as in
    PyTorch; callers zero it on ignored samples, so an all-ignored batch gets a
    zero gradient.
    """
    if reduction != "mean":
        return grad_output
    return divided(grad_output, denominator, grad_output.dtype)
