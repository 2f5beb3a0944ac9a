"""The store for this server process, first-start seeding, and showing errors to people."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from lib import demo
from lib.config import Settings
from lib.errors import TriageError
from lib.store import Store, open_store

T = TypeVar("T")

_seed_lock = threading.Lock()
_has_data: set[str] = set()  # locations known to hold failure rows: checked once per process


def settings() -> Settings:
    """Environment first; ``[triage]`` in .streamlit/secrets.toml fills what the environment leaves out."""
    env = dict(os.environ)
    try:
        section: dict[str, Any] = dict(st.secrets.get("triage", {}))
    except Exception:  # no secrets file at all is the normal local case
        section = {}
    for key, name in (("engine", "TRIAGE_ENGINE"), ("db", "TRIAGE_DB"), ("operator", "TRIAGE_OPERATOR")):
        if name not in env and section.get(key):
            env[name] = str(section[key])
    return Settings.from_env(env)


@st.cache_resource(show_spinner=False)
def _store(engine: str, location: str) -> Store:
    store = open_store(Settings(engine=engine, db_path=Path(location)))
    store.init_schema(pipeline_tables=False)  # the dashboard's own tables, on any database it is pointed at
    return store


def get_store() -> Store:
    s = settings()
    return _store(s.engine, str(s.db_path))


def show_error(exc: TriageError) -> None:
    st.error(f"**{exc.what}**" + (f"\n\n{exc.todo}" if exc.todo else ""), icon=":material/error:")


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; an operator-facing error stops the page with its message, never a traceback."""
    try:
        return fn()
    except TriageError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


def ensure_demo_data(store: Store) -> None:
    """On a fresh machine the database is empty: seed the demo season, with progress, once."""
    if store.location in _has_data or os.environ.get("TRIAGE_NO_DEMO") == "1" or store.engine != "duckdb":
        return
    with _seed_lock:
        if not store.is_empty():
            _has_data.add(store.location)
            return
        box = st.empty()
        with box.container():
            st.info(
                f"First start: creating a demo database at `{store.location}` with one simulated NBA season "
                "(2021-22) and the failures its processors would have recorded.",
                icon=":material/database:",
            )
            bar = st.progress(0.0, text="Starting")

            def progress(fraction: float, message: str) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=message)

            demo.seed(store, progress=progress)
        box.empty()
        _has_data.add(store.location)
        st.cache_data.clear()
