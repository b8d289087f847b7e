"""Deliberately wrong versions of the cross-entropy family's relatives (KL divergence, the
focal losses): each module gets one thing wrong (its docstring's ``Diagnosis:`` line names
it, its ``# BUG`` comment shows where). ``tests/test_family_wrong_impls.py`` checks that
each differs from xent_ref on a small input; the corpus diagnoses that name them come later.
"""
