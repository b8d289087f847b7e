"""Maintainer scripts; a package so that the tests import the notebook builder by name."""
