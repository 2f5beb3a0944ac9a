"""Errors that reach an operator: each says what happened and what to do about it."""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error meant to be shown to a person rather than as a traceback."""

    def __init__(self, what: str, todo: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.todo = todo

    def __str__(self) -> str:
        return f"{self.what} {self.todo}".strip()


class StoreBusy(TriageError):
    """Another process holds the database file for writing longer than we were willing to wait."""


class StoreUnavailable(TriageError):
    """The database cannot be opened or reached at all."""


class QueryFailed(TriageError):
    """A statement failed in the engine."""


class BadInput(TriageError):
    """Input from a person or a file that cannot be used as it is."""
