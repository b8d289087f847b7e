"""xent_ref: a pure-NumPy reference for the cross-entropy family of losses.

The functions (every loss, its gradient, the second-order and statistics functions)
are listed once, in :mod:`xent_ref.functions`, the table the wings look them up in;
the face re-exports that list and adds the module classes and the teaching tools.
"""

from xent_ref import functions
from xent_ref.functions import *  # noqa: F403  (the list is functions.__all__)
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
from xent_ref.stats import TokenStats
from xent_ref.teach.explain import Explanation, explain
from xent_ref.version import __version__

__all__ = [
    *functions.__all__,
    "TokenStats",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "LinearCrossEntropyLoss",
    "KLDivLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "Poly1CrossEntropyLoss",
    "explain",
    "Explanation",
]
