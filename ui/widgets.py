"""Shared presentation helpers: colours, markdown escaping, KPI tiles, the item table's columns."""

from __future__ import annotations

import re

import pandas as pd
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


#: Characters that reorder or hide the text around them (bidirectional controls): shown as their code instead.
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def unbidi(text: object) -> str:
    """Text with its bidirectional controls shown as their codes (``\\u202e``): nothing around them reordered."""
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


def md(text: object) -> str:
    """Escape user or data text for Streamlit markdown (no links, no markup, no formatting, no reordering)."""
    return _MD_SPECIAL.sub(r"\\\1", unbidi(text))


def kpi_row(tiles: list[tuple[str, str, str]], deltas: list[str | None] | None = None) -> None:
    """(label, value, help) tiles in one bordered row, each with an optional delta text ("+12 since ...")."""
    cols = st.columns(len(tiles))
    for i, (col, (label, value, help_text)) in enumerate(zip(cols, tiles, strict=True)):
        delta = deltas[i] if deltas else None
        arrow = "auto" if delta and delta[:1] in "+-" else "off"
        col.metric(label, value, help=help_text, border=True, delta=delta, delta_color="off", delta_arrow=arrow)


#: Counts that may be unknown: shown as text, so that an unknown one is an empty cell rather than "None".
COUNT_COLUMNS = ("expected_count", "actual_count")


def blank_nulls(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns and counts with their missing values as empty cells (a table would otherwise print "None")."""
    out = frame.copy()
    for column in COUNT_COLUMNS:
        if column in out:
            numbers = pd.to_numeric(out[column], errors="coerce")
            out[column] = [
                "" if pd.isna(n) else fmt_int(int(n)) if float(n).is_integer() else f"{n:,}" for n in numbers
            ]
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column]
            if values.isna().any() and not values.dropna().map(lambda v: isinstance(v, bool)).any():
                out[column] = values.astype(object).where(values.notna(), "")
    return out


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_hours(hours: float | None) -> str:
    """A duration as people say it: minutes under an hour, hours under four days, days beyond."""
    if hours is None or pd.isna(hours):
        return "–"
    if hours < 1:
        return "under 1 min" if hours * 60 < 1 else f"{hours * 60:.0f} min"
    return f"{hours:.1f} hours" if hours < 96 else f"{hours / 24:.1f} days"


def short_count(n: int) -> str:
    """A count in at most five characters and a sign: exact below 100,000 ("56,430"), then thousands to one
    decimal ("343.5k") and millions to two ("3.57M"); six figures do not fit a tile of a six-tile row at 1280 px."""
    if abs(n) < 100_000:
        return fmt_int(n)
    if abs(n) < 999_950:  # 999,950 would round to "1000.0k"
        return f"{n / 1_000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def cell_count(n: int) -> str:
    """A count in at most five characters, for a cell of a chart (the exact count is in its hover): exact below
    1,000, then "4.1k", "40k", "1.2M"; five figures overlapped their neighbours at 1280 px."""
    if abs(n) < 1_000:
        return str(n)
    if abs(n) < 9_950:
        return f"{n / 1_000:.1f}k"
    if abs(n) < 999_500:
        return f"{n / 1_000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def tile(label: str, n: int, help_text: str) -> tuple[str, str, str]:
    """A count's tile for ``kpi_row``: large counts shortened to fit a tile (``short_count``), the exact count
    in its help."""
    shown = short_count(n)
    if shown == fmt_int(n):
        return label, shown, help_text
    return label, shown, f"{help_text.rstrip('.')}. Exactly {fmt_int(n)}."


#: Page-wide layout rules, applied once by app.py: on a 1280 px laptop a metric's label and delta wrap instead of
#: being cut with an ellipsis, a tile whose value is a word (a container keyed ``word_tile_…``) shows it smaller and
#: wraps it, and the wide layout's side padding gives the tables room.
LAYOUT_CSS = """<style>
[data-testid="stMetricLabel"] .stMarkdownEllipsis, [data-testid="stMetricLabel"] .stMarkdownEllipsis p,
[data-testid="stMetricDelta"] .stMarkdownEllipsis, [data-testid="stMetricDelta"] .stMarkdownEllipsis p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: break-word; line-height: 1.25;
}
[data-testid="stMetricLabel"] { height: auto !important; min-height: 1.5rem; }
[class*="st-key-word_tile_"] [data-testid="stMetricValue"] { font-size: 1.6rem !important; line-height: 1.3; }
[class*="st-key-word_tile_"] [data-testid="stMetricValue"] .stMarkdownEllipsis,
[class*="st-key-word_tile_"] [data-testid="stMetricValue"] .stMarkdownEllipsis p,
[class*="st-key-word_tile_"] [data-testid="stMetricValue"] > div {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: break-word;
}
[data-testid="stMainBlockContainer"] { padding-left: 2.5rem !important; padding-right: 2.5rem !important; }
</style>"""


def processor_short(name: object) -> str:
    """A processor's name by its capitals, as the team says them (PlayerDailyCacheProcessor: PDC,
    MLFeatureStoreProcessor: MLFS); a name without capitals stays as it is."""
    text = str(name)
    core = re.sub(r"(Processor|Worker)$", "", text)
    caps = "".join(c for c in core if c.isupper() or c.isdigit())
    return caps if len(caps) >= 2 else text


ITEM_COLUMN_CONFIG = {
    "key": None,
    "item_date": st.column_config.DateColumn("Date", format="YYYY-MM-DD", width=96),
    "source_table": st.column_config.TextColumn("Table", width="small"),
    "phase": st.column_config.NumberColumn("Ph", width="small"),
    "processor_name": st.column_config.TextColumn("Processor"),
    "processor_short": st.column_config.TextColumn(
        "Proc.",
        help="The processor by its capitals: PDC PlayerDailyCache, MLFS MLFeatureStore, PCF PlayerCompositeFactors, "
        "PSZA PlayerShotZoneAnalysis, TDZA TeamDefenseZoneAnalysis, PGS PlayerGameSummary, UPGC "
        "UpcomingPlayerGameContext, UTGC UpcomingTeamGameContext, TOGS TeamOffenseGameSummary, TDGS "
        "TeamDefenseGameSummary, PC PredictionCoordinator, PPP PlayerPropPrediction(Worker). The item panel and the "
        "export give the full name.",
        width=60,
    ),
    "entity_id": st.column_config.TextColumn("Entity"),
    "entity_type": st.column_config.TextColumn("Kind", width="small"),
    "status": st.column_config.TextColumn("Status", width=110),
    "failure_category": st.column_config.TextColumn("Category"),
    "failure_type": st.column_config.TextColumn("Type", width=165),
    "is_correctable": st.column_config.CheckboxColumn("Fix?", width=48, help="Correctable: data can be re-ingested"),
    "pipeline_said": st.column_config.TextColumn(
        "Pipeline said",
        help="The verdict the pipeline's own classifier wrote, beside ours (Type, Fix?): 'the same', "
        "'≠ its verdict' where we disagree, or 'not judged yet' where the verdict shown is still the pipeline's",
        width=175,
    ),
    "occurrences": st.column_config.NumberColumn(
        "Occ.", help="Rows recorded for this item (reruns, duplicates)", width="small"
    ),
    "runs": st.column_config.NumberColumn("Runs", width="small"),
    "expected_count": st.column_config.TextColumn(
        "Expected", help="Expected games (phase 4) or records (phase 3)", width="small", alignment="right"
    ),
    "actual_count": st.column_config.TextColumn("Actual", width="small", alignment="right"),
    "missing_json": st.column_config.TextColumn(
        "Missing", help="Missing game dates / game ids / upstream tables (JSON)"
    ),
    "raw_data_checked": st.column_config.CheckboxColumn("Raw checked", width="small"),
    "first_seen": st.column_config.DatetimeColumn("First seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "last_seen": st.column_config.DatetimeColumn("Last seen", format="YYYY-MM-DD HH:mm", timezone="UTC"),
    "latest_run_id": st.column_config.TextColumn("Latest run"),
    "failure_reason": st.column_config.TextColumn("Reason", width="large"),
}

#: The item table's columns: what an operator reads first (when, what, whose, our verdict beside the pipeline's,
#: status) fits a 1280 px laptop; the rest follows to the right.
ITEM_COLUMN_ORDER = (
    "item_date",
    "processor_short",
    "entity_id",
    "failure_type",
    "is_correctable",
    "pipeline_said",
    "status",
    "failure_category",
    "processor_name",
    "occurrences",
    "expected_count",
    "actual_count",
    "failure_reason",
    "missing_json",
    "last_seen",
    "latest_run_id",
)
