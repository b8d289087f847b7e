"""The library's functions by name, for the code that looks one up by a string.

The golden corpus, the verifier and the teaching tools name a loss by a string
(``"cross_entropy"``) and call it or its gradient (``"cross_entropy_grad"``) through
this table. They import it, not the package's face (``xent_ref/__init__.py``), so
every import inside the package runs one way: from the wings down to the math.
"""

from __future__ import annotations

from xent_ref.binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_with_grad,
)
from xent_ref.cross_entropy import (
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_with_grad,
    nll_loss,
    nll_loss_grad,
)
from xent_ref.focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    softmax_focal_loss,
    softmax_focal_loss_grad,
)
from xent_ref.hvp import (
    binary_cross_entropy_hvp,
    binary_cross_entropy_with_logits_hvp,
    cross_entropy_hessian,
    cross_entropy_hvp,
    linear_cross_entropy_hvp,
    log_softmax_hvp,
    nll_loss_hvp,
    softmax_hvp,
)
from xent_ref.kl import kl_div, kl_div_grad
from xent_ref.linear import (
    linear_cross_entropy,
    linear_cross_entropy_grad,
    linear_cross_entropy_with_grad,
)
from xent_ref.poly import poly1_cross_entropy, poly1_cross_entropy_grad
from xent_ref.softmax import log_softmax, log_softmax_grad, softmax, softmax_grad
from xent_ref.stats import cross_entropy_stats, linear_cross_entropy_stats

BY_NAME = {function.__name__: function for function in (
    softmax, softmax_grad, log_softmax, log_softmax_grad,
    cross_entropy, cross_entropy_grad, cross_entropy_with_grad, nll_loss, nll_loss_grad,
    linear_cross_entropy, linear_cross_entropy_grad, linear_cross_entropy_with_grad,
    binary_cross_entropy, binary_cross_entropy_grad,
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_with_grad,
    kl_div, kl_div_grad,
    sigmoid_focal_loss, sigmoid_focal_loss_grad,
    softmax_focal_loss, softmax_focal_loss_grad,
    poly1_cross_entropy, poly1_cross_entropy_grad,
    softmax_hvp, log_softmax_hvp, cross_entropy_hvp, cross_entropy_hessian, nll_loss_hvp,
    binary_cross_entropy_hvp, binary_cross_entropy_with_logits_hvp, linear_cross_entropy_hvp,
    cross_entropy_stats, linear_cross_entropy_stats,
)}

__all__ = list(BY_NAME)  # the package's face re-exports exactly these


def named(name: str):
    """The library function called ``name`` (a ``KeyError`` for any other name).

    >>> named("cross_entropy_grad").__name__
    'cross_entropy_grad'
    """
    return BY_NAME[name]
