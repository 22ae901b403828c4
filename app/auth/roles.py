"""Roles on the server side: analysts may train (and delete), reviewers see everything read-only.

``current_role()`` is what handlers ask before they act; it reads the session's user through
``pn.state.user`` and maps the name to a role with the policy ``hepml serve`` installed. Without
``--auth`` there is no policy and everyone is an analyst, so local single-user mode keeps every
button. A disabled button is only a courtesy: the handlers call ``can_train()`` themselves, because a
browser can re-enable any widget it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the users file needs argon2; this module stays light for ``hepml --help``
    from app.auth.users import UsersFile

__all__ = ["ROLES", "RolePolicy", "set_role_policy", "role_policy", "current_role", "current_user", "can_train",
           "signed_in_note", "READ_ONLY_NOTE"]

#: analyst: everything; reviewer: sees every page and run, cannot train or delete
ROLES = ("analyst", "reviewer")

READ_ONLY_NOTE = "Read-only reviewer account: you can look at every run, but not train or delete."


@dataclass(frozen=True)
class RolePolicy:
    """How a logged-in name maps to a role.

    Args:
        users: the users file (None: OAuth without ``--users``); a listed name gets its role from there.
        default_role: the role of a logged-in name that is not listed (OAuth: analyst unless
            ``--oauth-default-role reviewer``; basic auth: reviewer, the least privilege).
    """

    users: "UsersFile | None"
    default_role: str = "reviewer"

    def role_of(self, name: str | None) -> str:
        """The role of ``name`` (a missing name gets the least privilege)."""
        if not name:
            return "reviewer"
        user = self.users.get(name) if self.users is not None else None
        return user.role if user is not None else self.default_role


_POLICY: RolePolicy | None = None


def set_role_policy(policy: RolePolicy | None) -> None:
    """Install the policy of this server process (None: no auth, everyone is an analyst)."""
    global _POLICY
    if policy is not None and policy.default_role not in ROLES:
        raise ValueError(f"default_role must be one of {ROLES}")
    _POLICY = policy


def role_policy() -> RolePolicy | None:
    """The installed policy (None without ``--auth``)."""
    return _POLICY


def current_user() -> str | None:
    """The logged-in name of the current session, or None (no auth, or outside a session)."""
    if _POLICY is None:
        return None
    import panel as pn

    # Panel reports a client-set "is_guest" cookie as user "guest"; this server never grants guest
    # access, so such a session is read as nobody (reviewer) rather than as a name with rights.
    if pn.state.cookies.get("is_guest"):
        return None
    return pn.state.user


def current_role() -> str:
    """The role of the current session: "analyst" without ``--auth``, else the user's role."""
    if _POLICY is None:
        return "analyst"
    return _POLICY.role_of(current_user())


def can_train() -> bool:
    """Whether the current session may start, cancel or delete trainings."""
    return current_role() == "analyst"


def signed_in_note() -> str | None:
    """Markdown "Signed in as NAME (role) · Sign out" for the page frame; None without ``--auth``."""
    user = current_user()
    if user is None:
        return None
    import html

    # OAuth names come from the identity provider: escaped, never read as markup.
    return f"Signed in as <b>{html.escape(user)}</b> ({current_role()}) · [Sign out](./logout)"
