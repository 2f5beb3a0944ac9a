"""CSV that is safe to open in a spreadsheet: one writer for the dashboard's downloads and the command line."""

from __future__ import annotations

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


def write_csv(frames: Iterable[pd.DataFrame], columns: Sequence[str], out: TextIO) -> int:
    """Frames that arrive one by one as one CSV with its header (also with no rows); returns the rows written."""
    header = True
    rows = 0
    for frame in frames:
        safe_for_spreadsheets(frame[list(columns)]).to_csv(out, index=False, header=header)
        header = False
        rows += len(frame)
    if header:
        pd.DataFrame(columns=list(columns)).to_csv(out, index=False)
    return rows


__all__ = ["FORMULA_START", "safe_for_spreadsheets", "write_csv"]
