"""Helpers for the sm-template cookiecutter hooks.

The hooks stay short and call into this package so that the checks can be imported and
tested like ordinary Python code.
"""
