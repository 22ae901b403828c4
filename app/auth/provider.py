"""Bokeh auth providers: every page of ``app_routes`` needs a login, and every WebSocket a login and a good Origin.

Bokeh asks the provider for the current user in each handler's ``prepare`` (``get_user_async``) before
the handler runs. A page request without a valid session gets ``None`` and Bokeh's ``@authenticated``
redirects it to ``/login?next=<page>``. A WebSocket upgrade (``/he_study/ws`` ...) is answered before the
handshake: HTTP 403 when the Origin is not on the exact allow-list or there is no valid session, so a
half-open socket never exists. ``BasicAuth`` reads our own signed session cookie; ``OAuth`` wraps
Panel's OAuth provider (the login flow is the identity provider's) with the same WebSocket rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from bokeh.server.auth_provider import AuthProvider
from panel.auth import OAuthProvider
from tornado.web import HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

from app.auth.login import LOGIN_PATH, LOGOUT_PATH, LoginContext, LoginHandler, LogoutHandler
from app.auth.origins import origin_allowed
from app.auth.session import read_session

__all__ = ["BasicAuth", "OAuth", "guard_websocket"]


def guard_websocket(handler: RequestHandler, user: str | None, origins: Sequence[str]) -> None:
    """Refuse a WebSocket upgrade with HTTP 403 unless its Origin is allowed and ``user`` is logged in.

    Raises:
        HTTPError: 403, with the reason in the status line (never the secret details).
    """
    if not isinstance(handler, WebSocketHandler):
        return
    if not origin_allowed(handler.request.headers.get("Origin"), origins):
        raise HTTPError(403, reason="WebSocket origin not allowed")
    if not user:
        raise HTTPError(403, reason="login required")


class BasicAuth(AuthProvider):
    """Users file + login page + signed session cookie (``hepml serve --auth basic``).

    Args:
        context: users file, failure counter and session length shared with the login page.
        origins: the exact ``host:port`` allow-list for WebSocket upgrades.
    """

    def __init__(self, context: LoginContext, origins: Sequence[str]):
        self.context = context
        self.origins = list(origins)
        super().__init__()

    @property
    def get_user_async(self):
        async def get_user(handler: RequestHandler) -> str | None:
            name = read_session(handler, self.context.session_hours)
            # A cookie of a user since removed from the users file no longer opens anything.
            user = name if name and self.context.users.get(name) is not None else None
            guard_websocket(handler, user, self.origins)
            return user

        return get_user

    @property
    def login_url(self) -> str:
        return LOGIN_PATH

    @property
    def logout_url(self) -> str:
        return LOGOUT_PATH

    @property
    def endpoints(self) -> list[tuple]:
        # (pattern, handler, initialize kwargs): Bokeh prefixes and registers these as they are.
        return [(LOGIN_PATH, LoginHandler, {"context": self.context}),
                (LOGOUT_PATH, LogoutHandler, {"context": self.context})]


class OAuth(OAuthProvider):
    """Panel's OAuth provider (``pn.config.oauth_provider``) with the same WebSocket rules as BasicAuth.

    Args:
        origins: the exact ``host:port`` allow-list for WebSocket upgrades.
        **params: Panel's ``OAuthProvider`` arguments (login/logout endpoints, templates).
    """

    def __init__(self, origins: Sequence[str], **params):
        self.origins = list(origins)
        super().__init__(**params)

    @property
    def get_user_async(self):
        panel_get_user = super().get_user_async

        async def get_user(handler: RequestHandler) -> str | None:
            if isinstance(handler, WebSocketHandler):
                # Checked before Panel looks at tokens, so a foreign page learns nothing.
                guard_websocket(handler, "-", self.origins)
            user = await panel_get_user(handler)
            guard_websocket(handler, user, self.origins)
            return user

        return get_user
