"""A usage error met in a DataLoader worker, brought back to the main process as itself.

A worker that raises hands torch only the exception's type and a formatted traceback, and torch
re-raises the type with that whole text as its message: a bad image found while decoding in a
worker would end the command with a multi-line traceback instead of the one line naming the file
that the same image gives without workers. So the worker returns the error as a value
(:func:`fetch_or_refusal`) and the main process raises it unchanged (:func:`raise_refusals`).
Errors that are not the user's (a bug, a full disk) still travel the usual way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from padnas.core.errors import UsageError

T = TypeVar("T")


class Refusal:
    """The usage error a worker met, in place of the batch it could not make."""

    def __init__(self, error: UsageError) -> None:
        self.error = error


def fetch_or_refusal(fetch: Callable[[], T]) -> T | Refusal:
    """``fetch()``, or a :class:`Refusal` carrying the usage error it raised."""
    try:
        return fetch()
    except UsageError as exc:
        return Refusal(exc)


def raise_refusals(batches: Iterable[T | Refusal]) -> Iterator[T]:
    """The batches a loader yields, raising the first :class:`Refusal`'s error in this process."""
    for batch in batches:
        if isinstance(batch, Refusal):
            raise batch.error
        yield batch
