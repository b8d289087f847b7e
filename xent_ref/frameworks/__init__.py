"""Other frameworks' cross-entropy conventions, computed: references in their own names.

Each module restates one framework's losses in that framework's names and
signatures, NumPy in and NumPy out, with a hand-derived gradient beside every
loss (``<name>_grad``), and says in its docstring exactly where the framework
differs from PyTorch:

* :mod:`~xent_ref.frameworks.keras` -- ``sum_over_batch_size`` divides by the
  number of losses; a masked mean over nothing is 0; probabilities clipped to 1e-7.
* :mod:`~xent_ref.frameworks.optax` -- per-example losses, ``where=`` masks.
* :mod:`~xent_ref.frameworks.tensorflow` -- per-example losses, class axis last,
  a gradient into the labels.
* :mod:`~xent_ref.frameworks.sklearn` -- ``log_loss``, clipped to the dtype's eps.
* :mod:`~xent_ref.frameworks.onnx` -- ``SoftmaxCrossEntropyLoss`` and
  ``NegativeLogLikelihoodLoss`` with their optional ``log_prob`` output.
* :mod:`~xent_ref.frameworks.megatron` -- vocab-parallel cross-entropy over a list
  of shards, with Megatron's local smoothing ``alpha K / (K - 1)``.
* :mod:`~xent_ref.frameworks.torchtune` -- chunked cross-entropy, 0 when every
  token is ignored.

They are built on the library's own math (:mod:`xent_ref.cross_entropy`,
:mod:`xent_ref.softmax`, :mod:`xent_ref.binary`, :mod:`xent_ref.linear`,
:mod:`xent_ref.parallel`); none of them imports the framework it describes.
"""
