"""xent_ref: a pure-NumPy reference for the cross-entropy family of losses."""

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
from xent_ref.teach.explain import Explanation, explain
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
from xent_ref.modules import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    KLDivLoss,
    LinearCrossEntropyLoss,
    NLLLoss,
    Poly1CrossEntropyLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
)
from xent_ref.poly import poly1_cross_entropy, poly1_cross_entropy_grad
from xent_ref.softmax import log_softmax, log_softmax_grad, softmax, softmax_grad
from xent_ref.stats import TokenStats, cross_entropy_stats, linear_cross_entropy_stats

from xent_ref.version import __version__  # noqa: E402

__all__ = [
    "softmax",
    "softmax_grad",
    "log_softmax",
    "log_softmax_grad",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_with_grad",
    "nll_loss",
    "nll_loss_grad",
    "linear_cross_entropy",
    "linear_cross_entropy_grad",
    "linear_cross_entropy_with_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_with_grad",
    "softmax_hvp",
    "log_softmax_hvp",
    "cross_entropy_hvp",
    "cross_entropy_hessian",
    "nll_loss_hvp",
    "binary_cross_entropy_hvp",
    "binary_cross_entropy_with_logits_hvp",
    "linear_cross_entropy_hvp",
    "cross_entropy_stats",
    "linear_cross_entropy_stats",
    "TokenStats",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "LinearCrossEntropyLoss",
    "kl_div", "kl_div_grad", "KLDivLoss",
    "sigmoid_focal_loss", "sigmoid_focal_loss_grad", "SigmoidFocalLoss",
    "softmax_focal_loss", "softmax_focal_loss_grad", "SoftmaxFocalLoss",
    "poly1_cross_entropy", "poly1_cross_entropy_grad", "Poly1CrossEntropyLoss",
    "explain",
    "Explanation",
]
