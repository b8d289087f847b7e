"""What several test files share, imported by name: ``from tests.helpers import naive``.

- ``naive``: loop-based twins of every function, written straight from the formulas.
- ``strategies``: hypothesis strategies for the class-axis losses.
- ``accuracy_oracle``: the stress corpus and the mpmath oracle of the accuracy figures
  (also used by ``scripts/torch_accuracy.py``).
- ``torch_compare``: one xent_ref call made the way a PyTorch case describes it, and the
  tolerances it is held to.
"""
