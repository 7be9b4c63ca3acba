"""Errors shared across moksori that are not tied to one module."""

from __future__ import annotations


class UserError(Exception):
    """A failure the user fixes (a run folder already in use, data that cannot train, a missing
    tool): its message says what to do, and the command line prints it as one line, without a
    traceback. Subclasses also derive from the built-in error that fits (RuntimeError, ...)."""
