"""A real Streamlit server on a free port and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ROOT
from tests.servers import free_port, stop, wait_until_answering

ARTIFACTS = ROOT / "test-artifacts"
# Every expect() waits up to a minute, not Playwright's 5 s: the machine running the tests may be busy.
expect.set_options(timeout=60_000)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("The browser tests need Debian's chromium: run `make browser` (apt-get install chromium).")
    return path


@pytest.fixture(scope="session")
def server(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("e2e") / "e2e.duckdb"
    shutil.copy(demo_db_path, db)
    yield from serve(db, tmp_path_factory.mktemp("e2e-log"))


def serve(db: Path, logs: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``streamlit run app.py`` on a free port over the database ``db`` (and ``env``); yields its URL, then stops it."""
    port = free_port()
    env = {**os.environ, "TRIAGE_DB": str(db), **(env or {})}
    log = open(logs / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/_stcore/health", proc, log.name)
    yield url
    stop(proc, log)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1300}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
