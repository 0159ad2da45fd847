"""Reading an import file: its delimiter, its header, and the rows that cannot be read.

The file is read twice, in chunks: first to find every row that is not UTF-8 or has more
cells than the header (a wrong delimiter), so that by default a bad file imports nothing,
then row by row to import. Bytes that are not UTF-8 are decoded as lone surrogates
(`surrogateescape`), which no UTF-8 text contains, so a bad row is known by its number.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from routing.people.csv_formulas import unescape_cell

DELIMITERS = (",", ";", "\t")
_NAMES = {",": "a comma", ";": "a semicolon", "\t": "a tab"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (not UTF-8, no header, no name column)."""


def _bad_text(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


@dataclass
class FileShape:
    header: list[str]
    delimiter: str
    # Data row number → why it cannot be read.
    problems: dict[int, str] = field(default_factory=dict)
    rows: int = 0


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _reader(text: io.TextIOWrapper) -> tuple[list[str], str, Iterator[list[str]]]:
    first = text.readline()
    if not first.strip():
        raise ImportFileError("the file is empty; the first row must name the columns")
    if _bad_text(first):
        raise ImportFileError("row 0 (the header) is not UTF-8 text; save the file as 'CSV UTF-8'")
    delimiter = max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
    header = next(reader)
    return header, delimiter, reader


def scan(stream: IO[bytes]) -> FileShape:
    """The file's shape and its unreadable rows; the stream is rewound."""
    text = _text(stream)
    shape = FileShape(header=[], delimiter=",")
    try:
        shape.header, shape.delimiter, reader = _reader(text)
        header, delimiter = shape.header, shape.delimiter
        shape = FileShape(header=header, delimiter=delimiter)
        width = len(header)
        for number, cells in enumerate(reader, start=1):
            shape.rows = number
            if any(_bad_text(c) for c in cells):
                shape.problems[number] = (
                    "not UTF-8 text (save the file as 'CSV UTF-8', or give its encoding)"
                )
            elif len(cells) > width and any(c.strip() for c in cells[width:]):
                shape.problems[number] = (
                    f"{len(cells)} cells but the header has {width} columns (the delimiter "
                    f"is taken to be {_NAMES[delimiter]} from the header row)"
                )
    except csv.Error as exc:
        raise ImportFileError(f"row {shape.rows + 1}: unreadable CSV ({exc})") from exc
    finally:
        text.detach()
    stream.seek(0)
    return shape


def read_rows(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(1-based data row number, cells) for each non-blank data row; the quote the export
    puts before a cell that starts like a formula is dropped."""
    text = _text(stream)
    try:
        _, _, reader = _reader(text)
        for number, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue
            yield number, [unescape_cell(c.strip()) for c in cells]
    finally:
        text.detach()
