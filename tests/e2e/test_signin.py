"""Sign-in for real: ``st.login`` against a local OpenID Connect provider, in chromium.

The provider is ``oidc-provider-mock`` (from PyPI), started on loopback with client registration required;
the dashboard runs with an ``[auth]`` secrets file pointing at it. Roles come from the signed-in identity's
email (TRIAGE_RESOLVERS, compared case-insensitively; everyone else is a viewer). The flows: a signed-out
visitor sees the data and cannot act; a resolver signs in, resolves, and the audit trail names the signed-in
identity; signing out takes the actions away; a viewer signs in and sees no actions, and the library refuses
a write made as that identity; a wrong client secret is explained, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lib import resolution
from lib.config import Roles
from lib.model import Filters, ItemKey
from lib.model import Page as ListPage
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT
from tests.e2e.conftest import ARTIFACTS
from tests.servers import free_port, stop, wait_until_answering

WAIT = 60_000  # every expect gets an explicit timeout: the machine may be busy
RESOLVERS = "ALICE@example.com"
ALICE, VICTOR = "alice@example.com", "Victor@Example.com"


def _call(url: str, method: str, body: object | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return bytes(answer.read())


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("oidc") / "provider.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--host", "127.0.0.1",
         "--require-registration"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/.well-known/openid-configuration", proc, log.name)
    for sub, claims in ((ALICE, {"email": ALICE, "name": "Alice"}), (VICTOR, {"email": VICTOR, "name": "Victor"})):
        _call(f"{url}/users/{sub}", "PUT", claims)
    yield url
    stop(proc, log)


@dataclass(frozen=True)
class Dashboard:
    url: str
    db: Path


def _dashboard(tmp: Path, provider: str, demo_db_path: Path, *, wrong_secret: bool = False) -> Iterator[Dashboard]:
    """A dashboard server whose secrets file configures sign-in against ``provider``."""
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oauth2callback"
    client = json.loads(_call(f"{provider}/oauth2/clients", "POST", {"redirect_uris": [redirect]}))
    secret = "not-the-secret" if wrong_secret else client["client_secret"]
    (tmp / ".streamlit").mkdir(parents=True)
    shutil.copy(ROOT / ".streamlit" / "config.toml", tmp / ".streamlit" / "config.toml")
    (tmp / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect}"\n'
        f'cookie_secret = "test-cookie-secret-{port}-0123456789abcdef"\n'
        f'client_id = "{client["client_id"]}"\n'
        f'client_secret = "{secret}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    db = tmp / "signin.duckdb"
    shutil.copy(demo_db_path, db)
    env = {**os.environ, "TRIAGE_DB": str(db), "TRIAGE_RESOLVERS": RESOLVERS, "TRIAGE_DEFAULT_ROLE": "viewer",
           "AUTHLIB_INSECURE_TRANSPORT": "1", "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("TRIAGE_OPERATOR", None)
    log = open(tmp / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port), "--server.address",
         "127.0.0.1",
         "--server.headless", "true"],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/_stcore/health", proc, log.name)
    yield Dashboard(url, db)
    stop(proc, log)


@pytest.fixture(scope="module")
def app(provider: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    yield from _dashboard(tmp_path_factory.mktemp("signin-app"), provider, demo_db_path)


@pytest.fixture(scope="module")
def misconfigured(provider: str, demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    yield from _dashboard(tmp_path_factory.mktemp("signin-wrong"), provider, demo_db_path, wrong_secret=True)


def _settled(page: Page) -> None:
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=WAIT)


def _sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-testid="stSidebar"]')


def _sign_in(page: Page, app: str, who: str) -> None:
    page.goto(app)
    expect(page.get_by_role("heading", name="Failure overview")).to_be_visible(timeout=WAIT)
    _settled(page)
    _sidebar(page).get_by_role("button", name="Sign in").click()
    subject = page.locator('input[name="sub"]')
    expect(subject).to_be_visible(timeout=WAIT)  # the provider's own page
    subject.fill(who)
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", name="Failure overview")).to_be_visible(timeout=WAIT)
    _settled(page)


def _player_with_open_items(app_db: Path) -> str:
    store = DuckDBStore(app_db)
    bounds = q.bounds(store)
    start, end = bounds.default_range() or (None, None)
    items = q.list_items(store, Filters(date_from=start, date_to=end, statuses=("UNRESOLVED",)), ListPage(size=50))
    players = items[items["entity_type"] == "PLAYER"]["entity_id"]
    return str(players.iloc[0])


def test_a_signed_out_visitor_sees_the_data_and_cannot_act(app: Dashboard, page: Page) -> None:
    page.goto(app.url)
    expect(page.get_by_role("heading", name="Failure overview")).to_be_visible(timeout=WAIT)
    _settled(page)
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_label("Your name, for the audit trail")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_role("button", name=re.compile("Auto-resolve items whose data has arrived"))).to_have_count(
        0, timeout=WAIT
    )
    expect(page.get_by_role("button", name="Re-classify this date range")).to_have_count(0, timeout=WAIT)


def test_a_resolver_signs_in_resolves_and_the_audit_trail_names_the_signed_in_identity(
    app: Dashboard, page: Page
) -> None:
    _sign_in(page, app.url, ALICE)
    expect(_sidebar(page).get_by_text(f"Signed in as {ALICE}")).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_text("can resolve")).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(exist_ok=True)
    _settled(page)
    _sidebar(page).get_by_role("button", name="Sign out").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "signed-in.png"))
    player = _player_with_open_items(app.db)
    page.goto(f"{app.url}/player?player={player}")
    expect(page.get_by_role("heading", name="Player")).to_be_visible(timeout=WAIT)
    _settled(page)
    page.get_by_text(re.compile(r"^All \d+ of his items$")).click()
    _settled(page)
    page.get_by_role("button", name="Resolve").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    dialog.get_by_label("Note (required): why?").fill("re-scraped after sign-in")
    dialog.get_by_role("button", name="Confirm: RESOLVED").click()
    expect(page.get_by_text(re.compile(r"\d+ items? marked RESOLVED"))).to_be_visible(timeout=WAIT)
    events = DuckDBStore(app.db).query(
        "SELECT actor, note FROM nba_processing.failure_resolutions WHERE item_date BETWEEN @a AND @b",
        {"a": dt.date(1900, 1, 1), "b": dt.date(2999, 1, 1)},
    )
    mine = events[events["note"] == "re-scraped after sign-in"]
    assert len(mine) > 0 and set(mine["actor"]) == {ALICE}  # the signed-in identity, not a typed name
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible(timeout=WAIT)
    # Sign out (the provider ends its session too, and sends the browser back): the actions are gone.
    _sidebar(page).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()
    expect(_sidebar(page).get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_text("Signed in as")).to_have_count(0, timeout=WAIT)
    page.goto(f"{app.url}/player?player={player}")
    expect(page.get_by_role("heading", name="Player")).to_be_visible(timeout=WAIT)
    _settled(page)
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0, timeout=WAIT)


def test_a_viewer_signs_in_sees_no_actions_and_the_library_refuses_his_writes(app: Dashboard, page: Page) -> None:
    _sign_in(page, app.url, VICTOR)
    expect(_sidebar(page).get_by_text(f"Signed in as {VICTOR}")).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_text("viewer: read only")).to_be_visible(timeout=WAIT)
    player = _player_with_open_items(app.db)
    page.goto(f"{app.url}/player?player={player}")
    expect(page.get_by_role("heading", name="Player")).to_be_visible(timeout=WAIT)
    _settled(page)
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_role("button", name="Mark permanent")).to_have_count(0, timeout=WAIT)
    # The same identity, with the same role settings, is refused by the library itself.
    viewer = Roles.from_env({"TRIAGE_RESOLVERS": RESOLVERS, "TRIAGE_DEFAULT_ROLE": "viewer"}).actor(VICTOR)
    alice = Roles.from_env({"TRIAGE_RESOLVERS": RESOLVERS, "TRIAGE_DEFAULT_ROLE": "viewer"}).actor(ALICE)
    assert alice.role.value == "resolver"  # case-insensitive: ALICE@example.com is configured
    store = DuckDBStore(app.db)
    first = q.list_items(store, Filters(hide_expected=False), ListPage(size=1))
    scope = resolution.Scope.of_keys([ItemKey.parse(first.iloc[0]["key"])])
    with pytest.raises(resolution.NotAllowed):
        resolution.apply(store, scope, "RESOLVED", actor=viewer, note="sneaky", now=dt.datetime.now(dt.UTC))


def test_a_wrong_client_secret_is_explained_and_nobody_becomes_a_typed_name(
    misconfigured: Dashboard, page: Page
) -> None:
    _sign_in(page, misconfigured.url, ALICE)
    expect(page.get_by_text("Sign-in did not complete")).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(exist_ok=True)
    _settled(page)
    _sidebar(page).get_by_role("button", name="Sign in").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "sign-in-refused.png"))
    expect(_sidebar(page).get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT)
    expect(_sidebar(page).get_by_label("Your name, for the audit trail")).to_have_count(0, timeout=WAIT)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0, timeout=WAIT)
