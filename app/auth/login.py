"""The login and logout pages of ``hepml serve --auth basic``: plain HTML, no scripts.

The form is protected against cross-site posting by tornado's XSRF token (a cookie plus a hidden
field that must match). Password checks (argon2, deliberately slow) run on a worker thread so one
login never stalls the sessions on the event loop. Every failure answers the same "wrong user name
or password", and too many failures answer 429 with a Retry-After header (see ``ratelimit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tornado.escape import url_escape, xhtml_escape
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from app.auth.ratelimit import LoginRateLimiter
from app.auth.session import end_session, read_session, safe_next, start_session
from app.auth.users import UsersFile

__all__ = ["LoginContext", "LoginHandler", "LogoutHandler", "LOGIN_PATH", "LOGOUT_PATH", "render_login_page"]

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
_DEFAULT_NEXT = "/he_study"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hepml · sign in</title>
<style>
  body {{ margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         background: #f3f5f8; color: #1d2733;
         font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }}
  main {{ width: 340px; background: #fff; border-radius: 10px; padding: 32px 36px 28px;
          box-shadow: 0 2px 14px rgba(20, 40, 70, 0.12); border-top: 5px solid #0072B2; }}
  h1 {{ margin: 0; font-size: 30px; letter-spacing: 0.5px; color: #0072B2; }}
  .tagline {{ margin: 4px 0 22px; font-size: 13px; color: #5b6877; }}
  label {{ display: block; font-size: 13px; font-weight: 600; margin: 14px 0 5px; }}
  input[type=text], input[type=password] {{ box-sizing: border-box; width: 100%; padding: 9px 10px;
          font-size: 15px; border: 1px solid #c3ccd6; border-radius: 6px; }}
  input:focus {{ outline: 2px solid #0072B2; outline-offset: 0; border-color: #0072B2; }}
  button {{ margin-top: 22px; width: 100%; padding: 10px; font-size: 15px; font-weight: 600; color: #fff;
           background: #0072B2; border: 0; border-radius: 6px; cursor: pointer; }}
  button:hover {{ background: #005b8e; }}
  .note {{ margin: 0 0 6px; padding: 9px 11px; border-radius: 6px; font-size: 13px; }}
  .error {{ background: #fdecea; color: #8a1c12; }}
  .info {{ background: #e8f2fa; color: #0b4a73; }}
  footer {{ margin-top: 18px; font-size: 12px; color: #7a8694; }}
</style>
</head>
<body>
<main>
  <h1>hepml</h1>
  <p class="tagline">Machine-learning workbench · collaboration review</p>
  {notice}
  <form method="post" action="{action}" autocomplete="on">
    {xsrf}
    <input type="hidden" name="next" value="{next}">
    <label for="username">User name</label>
    <input type="text" id="username" name="username" value="{username}" autocomplete="username" required autofocus>
    <label for="password">Password</label>
    <input type="password" id="password" name="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>
  <footer>Access is by invitation. Ask the analysis contact for an account.</footer>
</main>
</body>
</html>
"""


@dataclass
class LoginContext:
    """What the login handlers need: the users file, the failure counter and the session length."""

    users: UsersFile
    session_hours: float = 12.0
    limiter: LoginRateLimiter = field(default_factory=LoginRateLimiter)


def render_login_page(action: str, xsrf_html: str, next_url: str, *, username: str = "", error: str = "",
                      info: str = "") -> str:
    """The login page's HTML; every value is escaped."""
    notice = ""
    if error:
        notice = f'<p class="note error" role="alert">{xhtml_escape(error)}</p>'
    elif info:
        notice = f'<p class="note info">{xhtml_escape(info)}</p>'
    return _PAGE.format(notice=notice, action=xhtml_escape(action), xsrf=xsrf_html, next=xhtml_escape(next_url),
                        username=xhtml_escape(username))


class _PageHandler(RequestHandler):
    def initialize(self, context: LoginContext) -> None:
        self.context = context

    def set_default_headers(self) -> None:
        # The login page is never framed (clickjacking) and runs no scripts.
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "same-origin")

    def _page(self, next_url: str, status: int = 200, **text) -> None:
        self.set_status(status)
        self.write(render_login_page(self.request.path, self.xsrf_form_html(), next_url, **text))


class LoginHandler(_PageHandler):
    """GET shows the form; POST checks the password and starts a session."""

    def get(self) -> None:
        next_url = safe_next(self.get_argument("next", None), _DEFAULT_NEXT)
        if read_session(self, self.context.session_hours) is not None:
            self.redirect(next_url)
            return
        info = "You are signed out." if self.get_argument("signed_out", None) else ""
        self._page(next_url, info=info)

    async def post(self) -> None:
        self.check_xsrf_cookie()
        username = self.get_body_argument("username", "").strip()
        password = self.get_body_argument("password", "")
        next_url = safe_next(self.get_body_argument("next", None), _DEFAULT_NEXT)
        address = self.request.remote_ip or "unknown"
        limiter = self.context.limiter
        wait = limiter.retry_after(username, address)
        if wait:
            self.set_header("Retry-After", str(wait))
            self._page(next_url, 429, username=username,
                       error=f"Too many failed sign-ins. Try again in {_minutes(wait)}.")
            return
        user = await IOLoop.current().run_in_executor(None, self.context.users.verify, username, password)
        if user is None:
            limiter.failure(username, address)
            self._page(next_url, 401, username=username, error="Wrong user name or password.")
            return
        limiter.success(username)
        start_session(self, user.name, self.context.session_hours)
        self.redirect(next_url)


class LogoutHandler(_PageHandler):
    """GET ends the session and shows the login page again."""

    def get(self) -> None:
        end_session(self)
        self.redirect(f"{LOGIN_PATH}?signed_out=1&next={url_escape(_DEFAULT_NEXT)}")


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"
