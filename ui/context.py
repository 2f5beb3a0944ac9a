"""The store for this server process, first-start seeding, and showing errors to people."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import streamlit as st

from lib import classification, demo, operations
from lib.access import SYSTEM
from lib.classifier import ClassifierConfig
from lib.config import Settings, window_settings_text
from lib.errors import TriageError
from lib.model import utc_now
from lib.store import Store, open_store
from lib.store.schema import DASHBOARD_TABLES, INDEX_TABLES
from ui.widgets import md

T = TypeVar("T")

_seed_lock = threading.Lock()
_has_data: set[str] = set()  # locations known to hold failure rows: checked once per process


def _secrets(name: str) -> dict[str, Any]:
    try:
        return dict(st.secrets.get(name, {}))
    except Exception:  # no secrets file at all is the normal local case
        return {}


def settings() -> Settings:
    """Environment first; ``[triage]`` (and ``[triage.bigquery]``, ``[gcp_service_account]``) in
    .streamlit/secrets.toml fill what the environment leaves out."""
    env = dict(os.environ)
    section = _secrets("triage")
    for key, name in (("engine", "TRIAGE_ENGINE"), ("db", "TRIAGE_DB"), ("operator", "TRIAGE_OPERATOR")):
        if name not in env and section.get(key):
            env[name] = str(section[key])
    bq = dict(section.get("bigquery", {}))
    for key, name in (("project", "TRIAGE_BQ_PROJECT"), ("location", "TRIAGE_BQ_LOCATION"),
                      ("maximum_bytes_billed", "TRIAGE_BQ_MAX_BYTES"), ("endpoint", "TRIAGE_BQ_ENDPOINT")):  # fmt: skip
        if name not in env and bq.get(key):
            env[name] = str(bq[key])
    windows = section.get("windows")
    if "TRIAGE_WINDOWS" not in env and isinstance(windows, Mapping) and windows:
        env["TRIAGE_WINDOWS"] = window_settings_text(windows)
    for dataset, real in dict(bq.get("datasets", {})).items():
        name = f"TRIAGE_BQ_DATASET_{str(dataset).removeprefix('nba_').upper()}"
        env.setdefault(name, str(real))
    try:
        result = Settings.from_env(env)
    except ValueError as exc:  # a bad setting stops the page with what to fix, never a traceback
        st.error(f"**The dashboard's settings cannot be read.** {exc}", icon=":material/error:")
        st.stop()
        raise  # unreachable: st.stop() raises
    account = _secrets("gcp_service_account")
    if account:
        result = dataclasses.replace(result, bigquery=dataclasses.replace(result.bigquery, credentials_info=account))
    return result


def classifier_config() -> ClassifierConfig:
    """The processors' completeness windows as configured (``[triage.windows]`` or TRIAGE_WINDOWS)."""
    return settings().classifier_config()


@st.cache_resource(show_spinner=False)
def _store(key: str, _settings: Settings) -> Store:
    store = open_store(_settings)
    try:
        store.init_schema(pipeline_tables=False)  # the dashboard's own tables, wherever it is pointed
    except TriageError as exc:  # e.g. read-only credentials on a dataset that predates a new table
        missing = sorted(t.ref for t in DASHBOARD_TABLES if t.ref not in store.existing_tables())
        if set(missing) <= {t.ref for t in INDEX_TABLES}:
            return store  # without the item index, items are computed from the failure rows (the sidebar says so)
        raise TriageError(
            f"The dashboard's table(s) {', '.join(missing)} do not exist here and could not be created: {exc.what}",
            "Create them once with write access: `python -m lib init --db PATH --actor NAME` (or `--bigquery "
            "PROJECT`); the dashboard can then run with read-only access.",
        ) from exc
    return store


def get_store() -> Store:
    s = settings()
    key = f"{s.engine}|{s.db_path}|{s.bigquery.project}|{s.bigquery.endpoint}|{sorted(s.bigquery.datasets.items())}"
    return _store(key, s)


def show_error(exc: TriageError) -> None:
    """What happened and what to do, as text: a message quotes keys, names and notes, which must not turn into
    markup (an item key ending in ``:x`` was an emoji)."""
    st.error(f"**{md(exc.what)}**" + (f"\n\n{md(exc.todo)}" if exc.todo else ""), icon=":material/error:")


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; an operator-facing error stops the page with its message, never a traceback."""
    try:
        return fn()
    except TriageError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


FIRST_START = "dashboard first start"


def _first_start_unfinished(store: Store) -> bool:
    """The first start wrote the demo, but its classification never finished (the tab was closed or reloaded
    while it ran, which stops the script run): the next visitor finishes it."""
    log = operations.recent(store, limit=50)
    mine = log[log["origin"] == FIRST_START]
    if "demo" not in set(mine["kind"]):
        return False
    return not ((mine["kind"] == "classify") & (mine["outcome"] == "done")).any()


def ensure_demo_data(store: Store) -> None:
    """On a fresh machine the database is empty: seed the demo season and classify it, with progress, once."""
    if store.location in _has_data or os.environ.get("TRIAGE_NO_DEMO") == "1" or store.engine != "duckdb":
        return
    with _seed_lock:
        empty = store.is_empty()
        if not empty and not _first_start_unfinished(store):
            _has_data.add(store.location)
            return
        box = st.empty()
        with box.container():
            st.info(
                f"First start: creating a demo database at `{store.location}` with one simulated NBA season "
                "(2021-22, placed to end yesterday) and the failures its processors would have recorded."
                if empty
                else "First start: finishing the demo database (classifying its failures).",
                icon=":material/database:",
            )
            bar = st.progress(0.0, text="Starting")

            def progress(fraction: float, message: str) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=message)

            if empty:
                demo.seed(store, progress=lambda f, m: progress(0.8 * f, m), actor=SYSTEM, origin=FIRST_START,
                          as_of=dt.datetime.now(dt.UTC).date())  # fmt: skip
            # Every page has something to show at once: the classifier judges what the pipeline left
            # unclassified; the pipeline's own verdicts stay, for re-classification to correct on request.
            classification.run(store, actor=SYSTEM, now=dt.datetime.now(dt.UTC), config=classifier_config(),
                               progress=lambda f, m: progress(0.8 + 0.2 * f, m), origin=FIRST_START,
                               clock=utc_now)  # fmt: skip
        box.empty()
        _has_data.add(store.location)
        st.cache_data.clear()
