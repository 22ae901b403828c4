"""The exact WebSocket Origin allow-list: a page from another site must not drive a reviewer's session.

Browsers send the page's origin with every WebSocket upgrade and attach the site's cookies whatever
page opened it, so a logged-in colleague visiting a hostile page would otherwise hand that page a live
session (cross-site WebSocket hijacking). Entries are ``HOST[:PORT]`` and compare exactly: no
wildcards, no prefix or suffix matching (Bokeh's own matcher accepted ``host.evil`` for ``host`` before
3.8.2, CVE-2026-21883). An entry without a port accepts the scheme's default port (80 or 443).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from hepml_core.exceptions import ConfigError

__all__ = ["check_origin_entry", "default_origins", "origin_allowed", "bokeh_origins", "LOOPBACK"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_ENTRY = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")
_DEFAULT_PORT = {"http": 80, "https": 443}


def check_origin_entry(entry: str) -> str:
    """Return ``entry`` lower-cased if it is ``HOST[:PORT]``, else raise ConfigError saying what is accepted."""
    value = (entry or "").strip().lower()
    if not _ENTRY.fullmatch(value):
        raise ConfigError(f"--allow-origin {entry!r} is not accepted; give HOST or HOST:PORT as the browser "
                          "shows it (e.g. review.example.org or review.example.org:5006), without "
                          "http://, paths or wildcards")
    return value


def default_origins(address: str, port: int) -> list[str]:
    """The server's own ``host:port`` names for ``address`` (the default allow-list)."""
    local = [f"localhost:{port}", f"127.0.0.1:{port}"]
    if address in LOOPBACK:
        return local
    if address in ("0.0.0.0", "::", ""):
        names = {socket.gethostname().lower(), socket.getfqdn().lower()}
        return sorted(f"{name}:{port}" for name in names if name) + local
    return [f"{address.lower()}:{port}"]


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Whether an ``Origin`` header value names an allowed ``host:port`` (a missing Origin is refused)."""
    if not origin:
        return False
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in _DEFAULT_PORT or not parts.hostname or parts.path not in ("", "/"):
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = _DEFAULT_PORT[parts.scheme]
    candidates = {f"{host}:{port or default}"}
    if port in (None, default):
        candidates.add(host)
    return any(entry in candidates for entry in allowed)


def bokeh_origins(allowed: Iterable[str]) -> list[str]:
    """The allow-list in the form Bokeh's own check needs (it reads a port-less Origin as port 80).

    Bokeh's check runs after ours and only has to let through what ours already accepted, so each entry
    is also given without its port.
    """
    out: list[str] = []
    for entry in allowed:
        host = entry.rsplit(":", 1)[0] if not entry.endswith("]") and ":" in entry.lstrip("[") else entry
        for value in (entry, host):
            if value not in out:
                out.append(value)
    return out
