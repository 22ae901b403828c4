"""Login sessions: the cookie secret, signed expiring session cookies and safe ``next=`` targets.

The session is one tornado signed cookie called ``user`` (the name Panel reads for ``pn.state.user``),
signed with ``HEPML_COOKIE_SECRET``. Tornado's signed values carry their creation time inside the
signature, so expiry is checked on the server: a cookie older than ``--session-hours`` counts as
not logged in, whatever its browser-side expiry says, and a tampered one fails the signature.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from tornado.web import RequestHandler

from hepml_core.exceptions import ConfigError

__all__ = ["COOKIE_NAME", "SECRET_ENV", "MAKE_SECRET", "cookie_secret_from_env", "read_session",
           "start_session", "end_session", "safe_next"]

COOKIE_NAME = "user"
SECRET_ENV = "HEPML_COOKIE_SECRET"
MAKE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
_MIN_SECRET = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def cookie_secret_from_env(environ=os.environ) -> str:
    """The cookie-signing secret from ``$HEPML_COOKIE_SECRET``.

    Raises:
        ConfigError: unset or shorter than 32 characters (the message says how to make one).
    """
    secret = environ.get(SECRET_ENV, "")
    if not secret:
        raise ConfigError(f"--auth needs a cookie secret in ${SECRET_ENV}; make one with: "
                          f"export {SECRET_ENV}=$({MAKE_SECRET})")
    if len(secret) < _MIN_SECRET:
        raise ConfigError(f"${SECRET_ENV} is too short ({len(secret)} characters, need {_MIN_SECRET}+); "
                          f"make one with: export {SECRET_ENV}=$({MAKE_SECRET})")
    return secret


def read_session(handler: RequestHandler, hours: float) -> str | None:
    """The user name of a valid session cookie, or None (missing, tampered or older than ``hours``)."""
    value = handler.get_signed_cookie(COOKIE_NAME, max_age_days=hours / 24.0)
    if not value:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def start_session(handler: RequestHandler, user: str, hours: float) -> None:
    """Set the signed session cookie (HttpOnly, SameSite=Lax, Secure over https)."""
    handler.clear_cookie("is_guest")  # Panel would otherwise report the session as "guest"
    handler.set_signed_cookie(COOKIE_NAME, user, expires_days=hours / 24.0, httponly=True, samesite="Lax",
                              secure=handler.request.protocol == "https")


def end_session(handler: RequestHandler) -> None:
    """Clear the session cookie (and Panel's OAuth cookies, harmless when absent)."""
    for name in (COOKIE_NAME, "id_token", "access_token", "refresh_token", "oauth_expiry", "is_guest"):
        handler.clear_cookie(name)


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this server, else ``default`` (no open redirects).

    Accepted: an absolute path such as ``/he_study?x=1``. Refused: other hosts (``//evil``,
    ``http://evil``), backslashes and control characters, which browsers read in surprising ways.
    """
    if not target or not target.startswith("/") or target.startswith("//") or _CONTROL.search(target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
