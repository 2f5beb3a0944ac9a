"""Who is acting: the signed-in user when OpenID Connect is configured, else an operator name."""

from __future__ import annotations

from typing import Any

import streamlit as st

from lib.config import Roles
from lib.model import Actor, Role
from ui import context
from ui.widgets import md

K_NAME = "identity_name"


def _secrets_section(name: str) -> dict[str, Any]:
    try:
        return dict(st.secrets.get(name, {}))
    except Exception:  # no secrets file: the local default
        return {}


def auth_configured() -> bool:
    return bool(_secrets_section("auth"))


def roles() -> Roles:
    section = dict(_secrets_section("triage").get("roles", {}))
    return Roles.from_mapping(section) if section else Roles.from_env()


def current_actor() -> Actor | None:
    if auth_configured():
        if not st.user.is_logged_in:
            return None
        name = str(st.user.get("email") or st.user.get("name") or "")
    else:
        name = context.settings().operator or str(st.session_state.get(K_NAME) or "")
    return roles().actor(name) if name.strip() else None


def sidebar() -> Actor | None:
    """Sign-in or name entry in the sidebar; returns the actor (None until known)."""
    with st.sidebar:
        st.divider()
        if auth_configured():
            if not st.user.is_logged_in:
                st.button("Sign in", key="identity_login", on_click=st.login, icon=":material/login:")
                return None
            actor = current_actor()
            if actor:
                st.caption(f"Signed in as **{md(actor.name)}** · {actor.role.value}")
            st.button("Sign out", key="identity_logout", on_click=st.logout, icon=":material/logout:")
            return actor
        if not context.settings().operator:
            st.text_input("Your name, for the audit trail", key=K_NAME, max_chars=120, placeholder="e.g. alice")
        actor = current_actor()
        if actor:
            badge = "can resolve" if actor.role is Role.RESOLVER else "viewer: read only"
            st.caption(f"Acting as **{md(actor.name)}** · {badge}")
        return actor
