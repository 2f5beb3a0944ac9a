"""Who is acting: the signed-in user when OpenID Connect is configured, else an operator name.

With ``[auth]`` in secrets, the identity is a claim of the signed-in user (``email`` unless
``[triage] identity_claim`` or TRIAGE_IDENTITY_CLAIM says otherwise), roles are looked up by it
case-insensitively, and no typed name is ever offered: a misconfigured sign-in says what is wrong and
leaves everyone a viewer, it never falls back to names anyone can type.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import streamlit as st

from lib.access import is_system
from lib.config import SYSTEM_NAME, Roles
from lib.model import Actor, Role
from ui import context
from ui.widgets import md

K_NAME = "identity_name"
K_SIGNING_IN = "identity_signing_in"
#: The OpenID Connect settings st.login needs in ``[auth]``.
AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
#: How long a sign-in that did not come back signed in is reported as failed, in seconds.
_ATTEMPT_TTL = 300
_attempts: dict[str, float] = {}  # browser -> when its sign-in started (this server process)
_attempts_lock = threading.Lock()


def _secrets_section(name: str) -> dict[str, Any]:
    try:
        return dict(st.secrets.get(name, {}))
    except Exception:  # no secrets file: the local default
        return {}


def auth_configured() -> bool:
    return bool(_secrets_section("auth"))


def identity_claim() -> str:
    configured = os.environ.get("TRIAGE_IDENTITY_CLAIM") or _secrets_section("triage").get("identity_claim")
    return str(configured or "email").strip() or "email"


def roles() -> Roles:
    section = dict(_secrets_section("triage").get("roles", {}))
    return Roles.from_mapping(section) if section else Roles.from_env()


def auth_problem() -> str | None:
    """What is wrong with the ``[auth]`` section, if anything (before anyone clicks Sign in)."""
    section = _secrets_section("auth")
    missing = [k for k in AUTH_KEYS if not str(section.get(k) or "").strip()]
    if missing:
        return (
            f"Sign-in is configured (`[auth]` in secrets) but incomplete: {', '.join(missing)} missing. "
            "Add them (see the README, 'Signing in'); until then nobody can act."
        )
    bad = [
        k for k in ("redirect_uri", "server_metadata_url") if not str(section[k]).startswith(("http://", "https://"))
    ]
    if bad:
        return f"Sign-in settings {', '.join(bad)} must be absolute URLs (http:// or https://)."
    if not str(section["redirect_uri"]).rstrip("/").endswith("/oauth2callback"):
        return "Sign-in setting redirect_uri must end with /oauth2callback (e.g. https://triage.example.com/oauth2callback)."
    return _provider_problem(str(section["server_metadata_url"]))


@st.cache_data(ttl=60, show_spinner=False)
def _provider_problem(url: str) -> str | None:
    """Whether the identity provider answers with OpenID Connect metadata (checked once a minute)."""
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            metadata = json.loads(answer.read(1_000_000))
        if not isinstance(metadata, dict) or "authorization_endpoint" not in metadata:
            return (
                f"The identity provider at {url} answered without OpenID Connect metadata: check server_metadata_url."
            )

    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"The identity provider cannot be reached ({str(reason)[:160]}) at {url}. Nobody can sign in until it "
            "answers: check server_metadata_url and the network, then reload."
        )
    return None


def _browser() -> str | None:
    """A stable key for this browser: the token inside its XSRF cookie, which Streamlit sets when sign-in is
    configured (the cookie is re-masked on every page load, in Tornado's "2|mask|masked|time" form)."""
    try:
        cookie = str(st.context.cookies.get("_streamlit_xsrf") or "")
    except Exception:
        return None
    parts = cookie.split("|")
    if len(parts) != 4 or parts[0] != "2":
        return cookie or None
    try:
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked)).hex() if mask else None


def _sign_in() -> None:
    browser = _browser()
    if browser:
        with _attempts_lock:
            _attempts[browser] = time.monotonic()
    st.session_state[K_SIGNING_IN] = True  # this session is leaving for the provider; the return is a new one
    st.login()


def _failed_sign_in() -> bool:
    """This browser started a sign-in a moment ago and came back signed out: the provider or the app's
    credentials refused it (Streamlit logs the provider's answer)."""
    browser = _browser()
    if not browser or st.session_state.get(K_SIGNING_IN):
        return False
    with _attempts_lock:
        started = _attempts.pop(browser, None)
    return started is not None and time.monotonic() - started < _ATTEMPT_TTL


def _forget_attempt() -> None:
    browser = _browser()
    if browser:
        with _attempts_lock:
            _attempts.pop(browser, None)


def current_actor() -> Actor | None:
    if auth_configured():
        if auth_problem() or not st.user.is_logged_in:
            return None
        name = str(st.user.get(identity_claim()) or "")
    else:
        name = context.settings().operator or str(st.session_state.get(K_NAME) or "")
    if is_system(Actor(name, Role.VIEWER)):
        return None  # the name of unattended work is no one's to type (the sidebar says so)
    return roles().actor(name) if name.strip() else None


def sidebar() -> Actor | None:
    """Sign-in or name entry in the sidebar; returns the actor (None until known)."""
    with st.sidebar:
        st.divider()
        if auth_configured():
            return _signed_in_sidebar()
        if not context.settings().operator:
            st.text_input("Your name, for the audit trail", key=K_NAME, max_chars=120, placeholder="e.g. alice")
        actor = current_actor()
        typed = context.settings().operator or str(st.session_state.get(K_NAME) or "")
        if actor is None and typed.strip() and is_system(Actor(typed, Role.VIEWER)):
            st.warning(f"“{SYSTEM_NAME}” is the name of unattended work (the nightly job, the first start). "
                       "Give your own name to act.", icon=":material/badge:")  # fmt: skip
        if actor:
            badge = "can resolve" if actor.role is Role.RESOLVER else "viewer: read only"
            st.caption(f"Acting as **{md(actor.name)}** · {badge}")
        return actor


def _signed_in_sidebar() -> Actor | None:
    problem = auth_problem()
    if problem:
        st.error(problem, icon=":material/lock:")
        return None
    if not st.user.is_logged_in:
        if _failed_sign_in():
            st.error(
                "Sign-in did not complete: the identity provider refused the request or the app's credentials "
                "(check client_id and client_secret in `[auth]`; the server log has the provider's answer), or "
                "it was cancelled. Try again.",
                icon=":material/error:",
            )
        st.caption("Sign in to change statuses; everyone can look.")
        st.button("Sign in", key="identity_login", on_click=_sign_in, icon=":material/login:")
        return None
    _forget_attempt()
    claim = identity_claim()
    actor = current_actor()
    if actor is None:
        st.error(f"Your sign-in carries no `{claim}` claim, so you cannot act. Ask for the claim to be released, "
                 "or set `[triage] identity_claim`.", icon=":material/error:")  # fmt: skip
    else:
        badge = "can resolve" if actor.role is Role.RESOLVER else "viewer: read only"
        st.caption(f"Signed in as **{md(actor.name)}** · {badge}")
    st.button("Sign out", key="identity_logout", on_click=st.logout, icon=":material/logout:")
    return actor
