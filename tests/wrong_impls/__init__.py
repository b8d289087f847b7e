"""Deliberately wrong implementations: each module wraps xent_ref and breaks one
behaviour (its docstring says which, its ``# BUG`` comment shows where).
``tests/test_verify.py`` checks that ``xent-ref verify --impl`` fails every one.
"""
