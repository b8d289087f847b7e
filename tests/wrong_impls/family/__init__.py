"""Deliberately wrong versions of the cross-entropy family's relatives (KL divergence, the
focal losses): each module gets one thing wrong (its docstring's ``Diagnosis:`` line names
it, its ``# BUG`` comment shows where; apart from it each returns its input's dtype).
``tests/test_family_wrong_impls.py`` checks that each differs from xent_ref on a small input,
and that ``xent-ref verify --impl FILE`` and ``xent_ref.testing.check`` fail it and name
every failure by its ``Diagnosis:`` id alone.
"""
