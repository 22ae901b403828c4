"""``hepml serve`` access options: checked once at start-up and turned into ``pn.serve`` arguments.

Without ``--auth`` the app is a single user's: it binds to the loopback interface only and a
non-loopback ``--address`` is refused. With ``--auth basic`` the users file and the cookie secret
(``$HEPML_COOKIE_SECRET``) are required; with ``--auth oauth`` the identity provider's client id and
secret come from ``$HEPML_OAUTH_KEY`` and ``$HEPML_OAUTH_SECRET``. Every problem is one line that says
which option or variable is wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hepml_core.exceptions import ConfigError

from app.auth.origins import LOOPBACK, bokeh_origins, check_origin_entry, default_origins
from app.auth.roles import ROLES

__all__ = ["AuthSettings", "AuthSetup", "add_auth_arguments", "auth_from_args", "check_address", "preflight",
           "configure_auth",
           "AUTH_MODES", "OAUTH_ENV"]

AUTH_MODES = ("none", "basic", "oauth")
OAUTH_ENV = ("HEPML_OAUTH_KEY", "HEPML_OAUTH_SECRET", "HEPML_OAUTH_ENCRYPTION_KEY")


@dataclass(frozen=True)
class AuthSettings:
    """Access options of one server.

    Args:
        mode: "none" (local, single user), "basic" (users file + login page) or "oauth".
        users: the users file (required for basic; optional roles by name for oauth).
        session_hours: how long a login lasts.
        allow_origins: exact ``host[:port]`` entries allowed to open WebSockets (empty: the server's own).
        oauth_provider: Panel's provider name for oauth (github, gitlab, google, azure, okta, generic...).
        oauth_default_role: role of an OAuth user not listed in ``users``.
        behind_proxy: the server sits behind a reverse proxy: take each client's address from the
            proxy's ``X-Real-Ip``/``X-Forwarded-For`` headers (Tornado's ``xheaders``), so failed sign-ins
            are counted per client, not per proxy. Only behind a proxy that sets them: a client that
            reaches the server directly could otherwise name any address.
    """

    mode: str = "none"
    users: Path | None = None
    session_hours: float = 12.0
    allow_origins: tuple[str, ...] = ()
    oauth_provider: str | None = None
    oauth_default_role: str = "analyst"
    behind_proxy: bool = False

    def __post_init__(self):
        if self.mode not in AUTH_MODES:
            raise ConfigError(f"--auth {self.mode!r} is not accepted; use one of: {', '.join(AUTH_MODES)}")
        if not self.session_hours > 0:
            raise ConfigError(f"--session-hours must be positive (got {self.session_hours})")
        if self.oauth_default_role not in ROLES:
            raise ConfigError(f"--oauth-default-role {self.oauth_default_role!r} is not accepted; "
                              f"use one of: {', '.join(ROLES)}")
        object.__setattr__(self, "allow_origins", tuple(check_origin_entry(o) for o in self.allow_origins))
        if self.mode == "basic" and self.users is None:
            raise ConfigError("--auth basic needs --users FILE; create one with: hepml users add NAME --users FILE")
        if self.mode == "oauth" and not self.oauth_provider:
            raise ConfigError("--auth oauth needs --oauth-provider NAME (e.g. github, gitlab, google, azure, okta)")
        if self.mode == "none" and (self.users is not None or self.oauth_provider or self.allow_origins
                                    or self.behind_proxy):
            raise ConfigError("--users, --oauth-provider, --allow-origin and --behind-proxy only apply with "
                              "--auth basic or --auth oauth; add --auth")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


@dataclass
class AuthSetup:
    """What ``configure_auth`` produced: extra ``pn.serve`` arguments and a note for the start line."""

    serve_kwargs: dict = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)
    note: str = ""


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--auth``, ``--users``, ``--session-hours``, ``--allow-origin`` and the OAuth options."""
    group = parser.add_argument_group("access (see README: Serving for a collaboration review)")
    group.add_argument("--auth", choices=AUTH_MODES, default="none",
                       help="require a login: basic (users file) or oauth (default: none, localhost only)")
    group.add_argument("--users", type=Path, default=None,
                       help="users file of hepml users add (JSON or YAML; with oauth: roles by name)")
    group.add_argument("--session-hours", type=float, default=12.0, help="how long a login lasts (default 12)")
    group.add_argument("--allow-origin", action="append", default=[], metavar="HOST[:PORT]",
                       help="a page origin allowed to open the app's WebSocket, exactly as the browser shows "
                            "it (repeatable; default: this server's own host:port)")
    group.add_argument("--behind-proxy", action="store_true",
                       help="a reverse proxy forwards to this server: read client addresses from its "
                            "X-Real-Ip/X-Forwarded-For headers (per-client sign-in limits); bind to "
                            "127.0.0.1 so nobody can reach the server past the proxy")
    group.add_argument("--oauth-provider", default=None, metavar="NAME",
                       help="Panel OAuth provider for --auth oauth (github, gitlab, google, azure, okta, ...)")
    group.add_argument("--oauth-default-role", choices=ROLES, default="analyst",
                       help="role of OAuth users not listed in --users (default analyst)")


def auth_from_args(args: argparse.Namespace) -> AuthSettings:
    """The AuthSettings of parsed ``add_auth_arguments`` options."""
    return AuthSettings(mode=args.auth, users=args.users, session_hours=args.session_hours,
                        allow_origins=tuple(args.allow_origin), oauth_provider=args.oauth_provider,
                        oauth_default_role=args.oauth_default_role,
                        behind_proxy=bool(getattr(args, "behind_proxy", False)))


def check_address(address: str, settings: AuthSettings) -> None:
    """Refuse a non-loopback ``--address`` without ``--auth`` (anyone on the network could train and read)."""
    if not settings.enabled and address not in LOOPBACK:
        raise ConfigError(f"--address {address} without --auth would let anyone on the network in; add "
                          "--auth basic --users FILE (README: Serving for a collaboration review) or keep "
                          "the default 127.0.0.1")


def preflight(settings: AuthSettings, address: str, environ=os.environ) -> None:
    """The start-up checks that need neither Panel nor a port: address, cookie secret, OAuth variables.

    ``hepml serve`` runs these before importing the app, so a mistake is reported at once.

    Raises:
        ConfigError: as ``configure_auth``.
    """
    check_address(address, settings)
    if not settings.enabled:
        return
    from app.auth.session import cookie_secret_from_env

    cookie_secret_from_env(environ)
    if settings.mode == "oauth":
        missing = [v for v in OAUTH_ENV[:2] if not environ.get(v)]
        if missing:
            raise ConfigError(f"--auth oauth needs ${' and $'.join(missing)}: the client id and secret that "
                              f"{settings.oauth_provider} issued for this app")
    if settings.users is not None:
        from app.auth.users import load_users

        load_users(settings.users)


def configure_auth(settings: AuthSettings, address: str, port: int, environ=os.environ) -> AuthSetup:
    """Check the environment, install the role policy and build the ``pn.serve`` arguments.

    Raises:
        ConfigError: a missing cookie secret or OAuth variable, a bad users file or provider name.
        InputFileError: the users file is missing or unreadable.
    """
    from app.auth.roles import RolePolicy, set_role_policy
    from app.auth.session import cookie_secret_from_env

    preflight(settings, address, environ)
    if not settings.enabled:
        set_role_policy(None)
        return AuthSetup(serve_kwargs={"websocket_origin": default_origins("127.0.0.1", port)},
                         origins=default_origins("127.0.0.1", port),
                         note=f"listening on {address} only, no sign-in (add --auth to share it)")
    secret = cookie_secret_from_env(environ)
    origins = list(settings.allow_origins) or default_origins(address, port)
    from app.auth.users import UsersFile

    users = UsersFile(settings.users) if settings.users is not None else None
    kwargs = {"cookie_secret": secret, "websocket_origin": bokeh_origins(origins)}
    if settings.behind_proxy:
        kwargs["use_xheaders"] = True  # request.remote_ip is then the proxy's X-Real-Ip / X-Forwarded-For
    if settings.mode == "basic":
        from app.auth.login import LoginContext
        from app.auth.provider import BasicAuth

        kwargs["auth_provider"] = BasicAuth(LoginContext(users, settings.session_hours), origins)
        set_role_policy(RolePolicy(users, default_role="reviewer"))
        note = f"sign-in required (users file {settings.users})"
    else:
        kwargs["auth_provider"] = _oauth_provider(settings, origins, secret, environ)
        set_role_policy(RolePolicy(users, default_role=settings.oauth_default_role))
        note = f"sign-in required via {settings.oauth_provider} OAuth"
    if settings.behind_proxy:
        note += "; client addresses from the proxy's X-Forwarded-For"
    return AuthSetup(serve_kwargs=kwargs, origins=origins, note=f"{note}; WebSocket origins: {', '.join(origins)}")


def _oauth_provider(settings: AuthSettings, origins: list[str], secret: str, environ):
    import panel as pn
    from panel.auth import AUTH_PROVIDERS

    from app.auth.provider import OAuth

    name = settings.oauth_provider
    if name not in AUTH_PROVIDERS:
        raise ConfigError(f"--oauth-provider {name!r} is not one of Panel's: {', '.join(sorted(AUTH_PROVIDERS))}")
    key, client_secret, encryption = (environ.get(v, "") for v in OAUTH_ENV)  # present: see preflight
    pn.config.oauth_provider = name
    pn.config.oauth_key = key
    pn.config.oauth_secret = client_secret
    pn.config.cookie_secret = secret
    pn.config.oauth_expiry = settings.session_hours / 24.0
    if encryption:
        _install_encryption(encryption)
    else:
        print("[hepml] warning: no $HEPML_OAUTH_ENCRYPTION_KEY: OAuth tokens sit in cookies unencrypted "
              "(set one to encrypt them; needs the cryptography package)", file=sys.stderr, flush=True)
    return OAuth(origins)


def _install_encryption(encryption: str) -> None:
    import panel as pn
    from panel.io.state import state

    make = 'python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
    try:
        raw = base64.urlsafe_b64decode(encryption.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"$HEPML_OAUTH_ENCRYPTION_KEY must be 32 url-safe base64-encoded bytes; make one with: {make}")
    try:
        from cryptography.fernet import Fernet
    except ImportError:
        raise ConfigError("$HEPML_OAUTH_ENCRYPTION_KEY needs the cryptography package: pip install cryptography "
                          "(or unset the variable)") from None
    pn.config.oauth_encryption_key = encryption.encode("ascii")
    state.encryption = Fernet(encryption.encode("ascii"))
