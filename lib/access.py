"""Who may change what: every public write in ``lib`` names an actor with the resolver role.

The checks live here, in ``lib``, so that the dashboard, the command line and any script that imports the
package are held to the same rule; the dashboard hiding a button is a courtesy, not the control.
``system`` is the actor of unattended work (the first start's demo, the nightly job, a scheduler's
classification): it exists only where it is configured (``Roles.system_users``: the operating-system
accounts that may act as it), may classify, auto-resolve, sync and seed, and never stands in for a person in
a hand-made change.

What this protects against is a mistake (a viewer's click, a script run under the wrong name), not a person
set on writing: names are declared, not proven, outside the dashboard's sign-in. The real boundary is the
store's own: file permissions on the DuckDB file, IAM roles on the BigQuery datasets.
"""

from __future__ import annotations

import getpass
import os

from lib.config import SYSTEM_NAME, Roles
from lib.errors import TriageError
from lib.model import Actor, Role

SYSTEM = Actor(SYSTEM_NAME, Role.RESOLVER)


def account() -> str:
    """The operating-system account this process runs as (what ``system_users`` lists)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return os.environ.get("USER") or f"uid {os.getuid()}"


def is_system(actor: Actor) -> bool:
    return actor.name.strip().casefold() == SYSTEM_NAME


class NotAllowed(TriageError):
    """The actor may not make this change (no actor, or a viewer)."""


def require_resolver(actor: Actor | None, *, what: str = "make changes") -> Actor:
    """The actor, if it may write; :class:`NotAllowed` otherwise (a missing actor, a blank name, a viewer)."""
    if not isinstance(actor, Actor) or not isinstance(actor.name, str) or not actor.name.strip():
        raise NotAllowed(
            f"To {what}, say who you are.", "Sign in, or set your operator name (--actor on the command line)."
        )
    if actor.role is not Role.RESOLVER:
        raise NotAllowed(
            f"{actor.name} is a viewer and may not {what}: viewers see everything and change nothing.",
            "Ask for the resolver role in the dashboard's configuration.",
        )
    if is_system(actor):
        why = Roles.from_env().system_refusal(account())
        if why:
            raise NotAllowed(f"'{SYSTEM_NAME}' may not {what} here: {why}.",
                             "Run unattended work from a listed account, or act under your own name "
                             "(--actor NAME).")  # fmt: skip
    return actor


def require_person(actor: Actor | None, *, what: str = "change an item's status") -> Actor:
    """A resolver who is a person: ``system`` may not be named as the author of a hand-made change."""
    if isinstance(actor, Actor) and isinstance(actor.name, str) and is_system(actor):
        raise NotAllowed(f"'{SYSTEM.name}' is the actor of unattended work and may not {what}.",
                         "Give your own name with --actor.")  # fmt: skip
    return require_resolver(actor, what=what)
