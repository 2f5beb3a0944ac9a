"""Shared presentation helpers: colours, markdown escaping, KPI tiles, the item table's columns."""

from __future__ import annotations

import re

import streamlit as st

from lib.model import UNCLASSIFIED, FailureType

#: One colour per failure type, the same on every chart.
TYPE_COLOURS = {
    FailureType.PLAYER_DNP.value: "#7f8c9d",
    FailureType.DATA_GAP.value: "#d9534f",
    FailureType.MIXED.value: "#f0ad4e",
    FailureType.INSUFFICIENT_HISTORY.value: "#b8c4d6",
    FailureType.COMPLETE.value: "#5cb85c",
    FailureType.PROCESSING_ERROR.value: "#8e44ad",
    FailureType.UNKNOWN.value: "#34495e",
    UNCLASSIFIED: "#d5d9de",
}
TYPE_ORDER = list(TYPE_COLOURS)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: object) -> str:
    """Escape user or data text for Streamlit markdown (no links, no markup, no formatting)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def kpi_row(tiles: list[tuple[str, str, str]], deltas: list[str | None] | None = None) -> None:
    """(label, value, help) tiles in one bordered row, each with an optional delta text ("+12 since ...")."""
    cols = st.columns(len(tiles))
    for i, (col, (label, value, help_text)) in enumerate(zip(cols, tiles, strict=True)):
        delta = deltas[i] if deltas else None
        arrow = "auto" if delta and delta[:1] in "+-" else "off"
        col.metric(label, value, help=help_text, border=True, delta=delta, delta_color="off", delta_arrow=arrow)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def tile(label: str, n: int, help_text: str) -> tuple[str, str, str]:
    """A count's tile for ``kpi_row``: millions shortened to fit a tile ("3.57M"), the exact count in its help."""
    if abs(n) < 1_000_000:
        return label, fmt_int(n), help_text
    return label, f"{n / 1_000_000:.2f}M", f"{help_text}. Exactly {fmt_int(n)}."


ITEM_COLUMN_CONFIG = {
    "key": None,
    "item_date": st.column_config.DateColumn("Date", format="YYYY-MM-DD", width="small"),
    "source_table": st.column_config.TextColumn("Table", width="small"),
    "phase": st.column_config.NumberColumn("Ph", width="small"),
    "processor_name": st.column_config.TextColumn("Processor"),
    "entity_id": st.column_config.TextColumn("Entity"),
    "entity_type": st.column_config.TextColumn("Kind", width="small"),
    "status": st.column_config.TextColumn("Status"),
    "failure_category": st.column_config.TextColumn("Category"),
    "failure_type": st.column_config.TextColumn("Type"),
    "is_correctable": st.column_config.CheckboxColumn("Correctable", width="small"),
    "pipeline_said": st.column_config.TextColumn(
        "Pipeline said",
        help="The verdict the pipeline's own classifier wrote, beside ours (Type, Correctable): 'the same', "
        "'≠ its verdict' where we disagree, or 'not judged yet' where the verdict shown is still the pipeline's",
    ),
    "occurrences": st.column_config.NumberColumn(
        "Occ.", help="Rows recorded for this item (reruns, duplicates)", width="small"
    ),
    "runs": st.column_config.NumberColumn("Runs", width="small"),
    "expected_count": st.column_config.NumberColumn(
        "Expected", help="Expected games (phase 4) or records (phase 3)", width="small"
    ),
    "actual_count": st.column_config.NumberColumn("Actual", width="small"),
    "missing_json": st.column_config.TextColumn(
        "Missing", help="Missing game dates / game ids / upstream tables (JSON)"
    ),
    "raw_data_checked": st.column_config.CheckboxColumn("Raw checked", width="small"),
    "first_seen": st.column_config.DatetimeColumn("First seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "last_seen": st.column_config.DatetimeColumn("Last seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "latest_run_id": st.column_config.TextColumn("Latest run"),
    "failure_reason": st.column_config.TextColumn("Reason", width="large"),
}

ITEM_COLUMN_ORDER = (
    "item_date",
    "processor_name",
    "entity_id",
    "status",
    "failure_category",
    "failure_type",
    "pipeline_said",
    "is_correctable",
    "occurrences",
    "expected_count",
    "actual_count",
    "failure_reason",
    "missing_json",
    "last_seen",
    "latest_run_id",
)
