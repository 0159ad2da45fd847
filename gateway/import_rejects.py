"""`rallypoint import --rejects PATH`: the rejected rows of an import as a CSV of their own
(`row`, `reason`, then the file's columns), to fix and import again. A cell a spreadsheet
would run as a formula is written with a leading quote, which the import drops."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

from routing.people.csv_formulas import escape_cell


class RejectsFile:
    """Rows written as they are rejected; no file at all without a path."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> RejectsFile:
        if self.path:
            self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
        return self

    def write(self, row: int, header: Sequence[str], cells: Sequence[str], reason: str) -> None:
        if self._file is None:
            return
        if self._file.tell() == 0:
            self._writer.writerow(["row", "reason", *header])
        # Escaped as the export escapes cells: a spreadsheet must not run one as a formula.
        escaped = [escape_cell(column, cell) for column, cell in zip(header, cells, strict=False)]
        self._writer.writerow([row, reason, *escaped, *cells[len(header) :]])

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
