"""CSV that is safe to open in a spreadsheet: one writer for the dashboard's downloads and the command line.

Two guards against CSV injection (CWE-1236): a cell whose text starts like a formula gets a leading apostrophe,
and every field holding a line break of any kind (``\n``, ``\r``) is quoted, so that no text can start a row of
its own in a spreadsheet (pandas alone leaves a bare ``\r`` unquoted, and ``x\r=cmd|...`` became a new row
starting with ``=``). Rows end in CRLF, as RFC 4180 has them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TextIO

import pandas as pd

#: A cell starting with one of these runs as a formula in Excel, LibreOffice and Google Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object or str(frame[col].dtype).startswith("str"):
            frame[col] = frame[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return frame


#: Counts that arrive as floats (a NULL makes pandas read a column of integers as float): written as integers.
COUNT_COLUMNS = ("occurrences", "runs", "expected_count", "actual_count")


def _listed(value: object) -> object:
    """A JSON list of dates or ids as a spreadsheet reads it ("2022-01-01; 2022-01-03"); anything else as it is."""
    if not isinstance(value, str) or not value.startswith("["):
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return value
    if isinstance(parsed, list) and all(isinstance(v, str | int | float) for v in parsed):
        return "; ".join(str(v) for v in parsed) if parsed else "(none)"
    return value


def readable_items(frame: pd.DataFrame) -> pd.DataFrame:
    """An item page as the CSV export writes it: counts as integers (``4``, not ``4.0``; empty where unknown),
    lists of missing dates or ids joined by "; " instead of raw JSON (text that is not such a list stays as is)."""
    frame = frame.copy()
    for column in COUNT_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    if "missing_json" in frame:
        frame["missing_json"] = frame["missing_json"].map(_listed)
    return frame


#: The row terminator: the csv module quotes every field that holds any of its characters.
LINE_END = "\r\n"


def write_csv(frames: Iterable[pd.DataFrame], columns: Sequence[str], out: TextIO) -> int:
    """Frames that arrive one by one as one CSV with its header (also with no rows); returns the rows written."""
    header = True
    rows = 0
    for frame in frames:
        safe_for_spreadsheets(frame[list(columns)]).to_csv(out, index=False, header=header, lineterminator=LINE_END)
        header = False
        rows += len(frame)
    if header:
        pd.DataFrame(columns=list(columns)).to_csv(out, index=False, lineterminator=LINE_END)
    return rows


__all__ = ["FORMULA_START", "readable_items", "safe_for_spreadsheets", "write_csv"]
