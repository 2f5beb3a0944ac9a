"""Who may change what: every write in ``lib`` names an actor with the resolver role.

The checks live here, in ``lib``, so that the dashboard, the command line and any script that imports the
package are held to the same rule; the dashboard hiding a button is a courtesy, not the control.
``system`` is the actor of unattended work (the first start's demo, the nightly job, auto-resolve): it
may classify, auto-resolve, sync and seed, but never stands in for a person in a hand-made change.
"""

from __future__ import annotations

from lib.errors import TriageError
from lib.model import Actor, Role

SYSTEM = Actor("system", Role.RESOLVER)


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
    return actor


def require_person(actor: Actor | None, *, what: str = "change an item's status") -> Actor:
    """A resolver who is a person: ``system`` may not be named as the author of a hand-made change."""
    who = require_resolver(actor, what=what)
    if who.name.strip().casefold() == SYSTEM.name:
        raise NotAllowed(f"'{SYSTEM.name}' is the actor of unattended work and may not {what}.",
                         "Give your own name with --actor.")  # fmt: skip
    return who
