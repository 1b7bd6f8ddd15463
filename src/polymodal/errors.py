"""Errors that name what went wrong and where: the row, the column, the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PolymodalError(Exception):
    """Base class for every error polymodal raises on purpose."""


class ConfigError(PolymodalError):
    """A configuration the user gave cannot work (unknown encoder, absent column, ...)."""


class InputError(PolymodalError):
    """One input value (a cell, a file) cannot be used.

    Readers raise it with ``path``; the data path adds ``row`` and ``column`` so the final message
    says exactly where the problem is.
    """

    def __init__(
        self,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.problem = problem
        self.row = row
        self.column = column
        self.path = None if path is None else str(path)
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.path is not None:
            where.append(f"file {self.path}")
        return f"{', '.join(where)}: {self.problem}" if where else self.problem

    def at(self, *, row: int | None = None, column: str | None = None) -> InputError:
        """Return a copy of this error located at ``row`` / ``column``."""
        return InputError(
            self.problem,
            row=self.row if row is None else row,
            column=self.column if column is None else column,
            path=self.path,
        )


@dataclass(frozen=True)
class SkippedRow:
    """A value a batch job could not use, kept so that nothing is lost silently."""

    row: int
    column: str
    problem: str
    path: str | None = None

    @classmethod
    def from_error(cls, err: InputError) -> SkippedRow:
        return cls(
            row=err.row if err.row is not None else -1,
            column=err.column or "",
            problem=err.problem,
            path=err.path,
        )
