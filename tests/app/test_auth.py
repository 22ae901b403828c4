"""Access control of the served app: users file, rate limiter, origins, roles, and a real served app with --auth.

The served tests start ``python -m hepml_cli serve --auth basic`` in a subprocess on a free localhost
port (as a user would) and talk to it with raw tornado HTTP and WebSocket requests, without a browser:
unauthenticated pages redirect to the login page, WebSocket upgrades without a session or from another
origin get HTTP 403, too many failed logins get 429, and an expired or tampered cookie counts as nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urljoin

import pytest
import yaml
from processes import stop_process
from tornado.httpclient import HTTPClient, HTTPClientError, HTTPRequest
from tornado.web import create_signed_value
from tornado.websocket import websocket_connect

from app.auth.origins import bokeh_origins, check_origin_entry, default_origins, origin_allowed
from app.auth.ratelimit import LoginRateLimiter
from app.auth.roles import RolePolicy, can_train, current_role, set_role_policy
from app.auth.session import cookie_secret_from_env, safe_next
from app.auth.settings import AuthSettings, check_address, configure_auth
from app.auth.users import UsersFile, add_user, load_users, remove_user, save_users
from hepml_core.exceptions import ConfigError, InputFileError, MissingKeyError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-cookie-secret-" + "x" * 32
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "dora": "dora-pw-3"}


@pytest.fixture(autouse=True)
def _no_role_policy_left_behind():
    """The role policy is process-wide: a failing test must not leave other tests' pages read-only."""
    yield
    set_role_policy(None)


# ---------------------------------------------------------------- users file


def test_users_file_holds_argon2_hashes_only_and_is_private(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", "s3cret-pw", "analyst")
    add_user(path, "bob", "other-pw", "reviewer")
    text = path.read_text()
    assert "s3cret-pw" not in text and "other-pw" not in text
    users = load_users(path)
    assert {u.name: u.role for u in users.values()} == {"alice": "analyst", "bob": "reviewer"}
    assert all(u.hash.startswith("$argon2id$") for u in users.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind

    directory = UsersFile(path)
    assert directory.verify("alice", "s3cret-pw").name == "alice"
    assert directory.verify("alice", "wrong") is None
    assert directory.verify("nobody", "s3cret-pw") is None
    assert directory.verify("bob", "") is None


def test_users_file_in_yaml_round_trips_and_refuses_plaintext(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "carol", "pw-carol", "reviewer")
    assert yaml.safe_load(path.read_text())["users"]["carol"]["role"] == "reviewer"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    path.write_text("users:\n  eve:\n    role: analyst\n    password: hunter2\n")
    with pytest.raises(ConfigError, match="plaintext password"):
        load_users(path)
    path.write_text("users:\n  eve:\n    role: analyst\n    hash: hunter2\n")
    with pytest.raises(ConfigError, match="not an argon2 hash"):
        load_users(path)
    path.write_text("users:\n  eve:\n    role: admin\n")
    with pytest.raises(ConfigError, match="role 'admin' is not accepted"):
        load_users(path)
    with pytest.raises(InputFileError, match="hepml users add"):
        load_users(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match=".json, .yaml or .yml"):
        load_users(tmp_path / "users.txt")


def test_adding_needs_force_to_replace_and_refuses_empty_passwords(tmp_path):
    path = tmp_path / "users.json"
    first = add_user(path, "alice", "pw-one")
    with pytest.raises(ConfigError, match="already exists.*--force"):
        add_user(path, "alice", "pw-two")
    with pytest.raises(ConfigError, match="empty password"):
        add_user(path, "dave", "")
    with pytest.raises(ConfigError, match="user name"):
        add_user(path, "../etc", "pw")
    second = add_user(path, "alice", "pw-two", "reviewer", force=True)
    assert second.hash != first.hash and load_users(path)["alice"].role == "reviewer"
    with pytest.raises(MissingKeyError, match="alicee.*closest: 'alice'"):
        remove_user(path, "alicee")
    remove_user(path, "alice")
    assert load_users(path) == {}


def test_running_server_sees_a_removed_user_at_once(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", "pw-a")
    directory = UsersFile(path)
    assert directory.get("alice") is not None
    users = load_users(path)
    del users["alice"]
    save_users(path, users)
    assert directory.get("alice") is None


# ---------------------------------------------------------------- rate limiter, cookies, origins, settings


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_rate_limiter_counts_failures_per_user_in_a_sliding_window():
    clock = _Clock()
    limiter = LoginRateLimiter(max_per_user=5, max_per_address=10, window_s=300, clock=clock)
    for _ in range(4):
        limiter.failure("alice", "10.0.0.1")
        clock.now += 10
    assert limiter.retry_after("alice", "10.0.0.1") == 0
    limiter.failure("alice", "10.0.0.1")  # the fifth, at t=1040
    assert limiter.retry_after("alice", "10.0.0.2") == 1000 + 300 - clock.now  # first failure leaves at 1300
    assert limiter.retry_after("bob", "10.0.0.1") == 0  # another name from the same address is still fine
    clock.now = 1301
    assert limiter.retry_after("alice", "10.0.0.1") == 0
    limiter.success("alice")
    assert limiter.retry_after("alice", "10.0.0.1") == 0


def test_rate_limiter_counts_failures_per_client_address():
    clock = _Clock()
    limiter = LoginRateLimiter(max_per_user=5, max_per_address=10, window_s=300, clock=clock)
    for i in range(10):
        limiter.failure(f"guess{i}", "10.0.0.9")
    assert limiter.retry_after("alice", "10.0.0.9") == 300  # a fresh name from that address waits
    assert limiter.retry_after("alice", "10.0.0.1") == 0  # the same name from elsewhere does not
    limiter.success("alice")  # logging in to one's own account does not clear the address
    assert limiter.retry_after("carol", "10.0.0.9") == 300


def test_rate_limiter_memory_is_bounded():
    limiter = LoginRateLimiter(max_keys=50, clock=_Clock())
    for i in range(500):
        limiter.failure(f"name{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(limiter._failures) <= 50


def test_next_targets_stay_on_this_server():
    assert safe_next("/he_study?x=1") == "/he_study?x=1"
    for bad in ("//evil.example/x", "http://evil.example", "https:/x", "/\\evil.example", "he_study", "",
                None, "/ok\r\nSet-Cookie: a=b"):
        assert safe_next(bad) == "/", bad


def test_cookie_secret_comes_from_the_environment_with_a_how_to():
    with pytest.raises(ConfigError, match=r"HEPML_COOKIE_SECRET.*secrets.token_urlsafe\(32\)"):
        cookie_secret_from_env({})
    with pytest.raises(ConfigError, match="too short"):
        cookie_secret_from_env({"HEPML_COOKIE_SECRET": "short"})
    assert cookie_secret_from_env({"HEPML_COOKIE_SECRET": SECRET}) == SECRET


def test_origins_match_exactly():
    allowed = ["review.example.org", "localhost:5006"]
    assert origin_allowed("https://review.example.org", allowed)
    assert origin_allowed("http://review.example.org:80", allowed)
    assert origin_allowed("http://localhost:5006", allowed)
    for bad in ("https://review.example.org.evil.net", "https://evil.review.example.org", "http://localhost:5007",
                "https://review.example.org:8443", "null", "", None, "file://", "http://localhost:5006/x"):
        assert not origin_allowed(bad, allowed), bad
    assert check_origin_entry("Review.Example.org:5006") == "review.example.org:5006"
    for bad in ("http://x.org", "*.example.org", "x.org/path", "x.org:port"):
        with pytest.raises(ConfigError, match="--allow-origin"):
            check_origin_entry(bad)
    assert default_origins("127.0.0.1", 5006) == ["localhost:5006", "127.0.0.1:5006"]
    assert bokeh_origins(["a.org:443"]) == ["a.org:443", "a.org"]


def test_sharing_without_auth_is_refused_and_auth_needs_its_pieces(tmp_path):
    with pytest.raises(ConfigError, match="--address 0.0.0.0 without --auth"):
        check_address("0.0.0.0", AuthSettings())
    check_address("127.0.0.1", AuthSettings())
    with pytest.raises(ConfigError, match="--auth basic needs --users"):
        AuthSettings(mode="basic")
    with pytest.raises(ConfigError, match="only apply with --auth"):
        AuthSettings(users=tmp_path / "u.json")
    with pytest.raises(ConfigError, match="--oauth-provider"):
        AuthSettings(mode="oauth")
    users = tmp_path / "users.json"
    add_user(users, "alice", "pw")
    with pytest.raises(ConfigError, match="HEPML_COOKIE_SECRET"):
        configure_auth(AuthSettings(mode="basic", users=users), "0.0.0.0", 5006, environ={})
    with pytest.raises(ConfigError, match="HEPML_OAUTH_KEY and \\$HEPML_OAUTH_SECRET"):
        configure_auth(AuthSettings(mode="oauth", oauth_provider="github"), "127.0.0.1", 5006,
                       environ={"HEPML_COOKIE_SECRET": SECRET})
    with pytest.raises(ConfigError, match="not one of Panel's"):
        configure_auth(AuthSettings(mode="oauth", oauth_provider="myspace"), "127.0.0.1", 5006,
                       environ={"HEPML_COOKIE_SECRET": SECRET, "HEPML_OAUTH_KEY": "k", "HEPML_OAUTH_SECRET": "s"})


# ---------------------------------------------------------------- roles


def test_roles_no_auth_means_analyst_and_reviewers_cannot_retrain(tmp_path):
    from app.state.train_control import TrainControl
    from app.state.training import TrainingService

    set_role_policy(None)
    assert current_role() == "analyst" and can_train()
    users = tmp_path / "users.json"
    add_user(users, "rita", "pw", "reviewer")
    policy = RolePolicy(UsersFile(users), default_role="analyst")
    assert policy.role_of("rita") == "reviewer" and policy.role_of("oauth-user") == "analyst"
    assert policy.role_of(None) == "reviewer"

    service = TrainingService(tmp_path / "runs")
    asked = []

    def job_factory():
        asked.append("factory")
        raise ValueError("a reviewer's press must not even read the form")

    try:
        control = TrainControl(service, job_factory)
        set_role_policy(policy)  # outside a browser session nobody is logged in: least privilege
        assert current_role() == "reviewer" and not can_train()
        control.param.trigger("retrain")
        assert control.job is None and not asked and not control.running
        assert "read-only reviewer" in control.status.lower()
    finally:
        service.shutdown()


# ---------------------------------------------------------------- a real served app with --auth basic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A cookie-keeping HTTP client for one browser-like user (no redirects followed)."""

    def __init__(self, base: str, source: str | None = None):
        self.base, self.source, self.cookies = base, source, {}
        self.http = HTTPClient()

    def _request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = HTTPRequest(self.base + path, method=method, body=body, headers=headers, follow_redirects=False,
                              network_interface=self.source, request_timeout=60)
        response = self.http.fetch(request, raise_error=False)
        for line in response.headers.get_list("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel.value in ("", '""'):  # tornado clears a cookie by setting it empty and expired
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kw):
        return self._request("GET", path, **kw)

    def login(self, user: str, password: str, next_url: str = "/he_study"):
        page = self.get(f"/login?{urlencode({'next': next_url})}")
        assert page.code == 200, page.code
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
        body = urlencode({"_xsrf": xsrf, "username": user, "password": password, "next": next_url})
        return self._request("POST", "/login", body=body)


@contextlib.contextmanager
def _serving(runs_dir, folder, *extra: str):
    """``hepml serve --auth basic`` on ``runs_dir`` with users alice (analyst), bob (reviewer), dora."""
    users = folder / "users.json"
    add_user(users, "alice", PASSWORDS["alice"], "analyst")
    add_user(users, "bob", PASSWORDS["bob"], "reviewer")
    add_user(users, "dora", PASSWORDS["dora"], "analyst")
    port = _free_port()
    env = {**os.environ, "HEPML_COOKIE_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hepml_cli", "--quiet", "serve", "--auth", "basic", "--users",
                             str(users), "--port", str(port), "--runs-dir", str(runs_dir), *extra],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    client = Client(base)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if client.get("/login").code == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    else:
        proc.terminate()
    try:
        if proc.poll() is not None:
            pytest.fail("the app did not start:\n" + (folder / "server.log").read_text())
        yield {"base": base, "port": port, "users": users, "log": folder / "server.log"}
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def served(tiny_runs, tmp_path_factory):
    """``hepml serve --auth basic`` on the tiny runs folder, with users alice (analyst), bob (reviewer), dora."""
    with _serving(tiny_runs[0], tmp_path_factory.mktemp("auth")) as info:
        yield info


def test_start_line_says_sign_in_is_required(served):
    text = served["log"].read_text()
    assert "sign-in required" in text and f"127.0.0.1:{served['port']}" in text


def test_every_page_redirects_to_the_login_page_with_next(served):
    from app.pages._layout import PAGES

    client = Client(served["base"])
    for route in PAGES:
        response = client.get(f"/{route}")
        assert response.code == 302, (route, response.code)
        target = urljoin(f"{served['base']}/{route}", response.headers["Location"])
        assert target == f"{served['base']}/login?next=%2F{route}", route
    assert client.get("/he_study/autoload.js?bokeh-autoload-element=x").code == 302  # the embed route too
    assert client.get("/").headers["Location"] == "/he_study"  # and from there to the login page


def test_login_page_is_plain_escaped_html(served):
    client = Client(served["base"])
    page = client.get("/login?" + urlencode({"next": '/he_study"><script>alert(1)</script>'}))
    html = page.body.decode()
    assert page.code == 200 and "<h1>hepml</h1>" in html and "<script>" not in html
    assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]
    away = client.get("/login?" + urlencode({"next": "//evil.example/phish"})).body.decode()
    assert 'name="next" value="/he_study"' in away


def test_login_sets_a_signed_http_only_cookie_and_opens_the_page(served):
    client = Client(served["base"])
    response = client.login("alice", PASSWORDS["alice"], "/your_data")
    assert response.code == 302 and response.headers["Location"] == "/your_data"
    cookie = next(c for c in response.headers.get_list("Set-Cookie") if c.startswith("user="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "alice" not in cookie.split(";")[0]
    page = client.get("/he_study")
    assert page.code == 200 and b"bokeh" in page.body.lower()
    assert client.get("/login").code == 302  # already signed in: straight on
    client.get("/logout")
    assert "user" not in client.cookies and client.get("/he_study").code == 302


def test_wrong_password_or_missing_xsrf_token_is_refused(served):
    client = Client(served["base"])
    assert client.login("alice", "not-her-password").code == 401
    assert client.login("nobody", "whatever").code == 401
    assert "user" not in client.cookies
    forged = urlencode({"username": "alice", "password": PASSWORDS["alice"]})
    assert Client(served["base"])._request("POST", "/login", body=forged).code == 403  # cross-site post


def test_five_failed_logins_for_a_user_get_429_with_retry_after(served):
    client = Client(served["base"])
    for _ in range(5):
        assert client.login("dora", "guess").code == 401
    blocked = client.login("dora", PASSWORDS["dora"])  # even the right password waits now
    assert blocked.code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 300
    assert "Too many failed sign-ins" in blocked.body.decode() and "user" not in client.cookies
    assert Client(served["base"]).login("alice", PASSWORDS["alice"]).code == 302  # others are unaffected


def test_failed_logins_from_one_address_get_429(served):
    # From 127.0.0.2 (still loopback), so the address lock-out does not touch the other tests' 127.0.0.1.
    guesser = Client(served["base"], source="127.0.0.2")
    for i in range(10):
        assert guesser.login(f"guess{i}", "pw").code == 401
    blocked = guesser.login("alice", PASSWORDS["alice"])
    assert blocked.code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert Client(served["base"]).login("alice", PASSWORDS["alice"]).code == 302


def test_behind_a_proxy_failed_logins_count_per_forwarded_client(tiny_runs, tmp_path):
    # Every request comes from the proxy's address (127.0.0.1 here); the client is in X-Forwarded-For.
    with _serving(tiny_runs[0], tmp_path, "--behind-proxy") as proxied:
        assert "client addresses from the proxy's X-Forwarded-For" in proxied["log"].read_text()
        guesser = Client(proxied["base"])
        for i in range(10):
            assert _login_from(guesser, "203.0.113.5", f"guess{i}", "pw").code == 401
        assert _login_from(guesser, "203.0.113.5", "alice", PASSWORDS["alice"]).code == 429
        # another client behind the same proxy is not locked out by the first one's guesses
        assert _login_from(Client(proxied["base"]), "203.0.113.6", "alice", PASSWORDS["alice"]).code == 302
    assert "--behind-proxy only apply with" in str(pytest.raises(ConfigError, AuthSettings, behind_proxy=True).value)


def _login_from(client: Client, address: str, user: str, password: str):
    """``client.login`` as forwarded by a reverse proxy for a client at ``address``."""
    page = client._request("GET", "/login?next=/he_study", headers={"X-Forwarded-For": address})
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    body = urlencode({"_xsrf": xsrf, "username": user, "password": password, "next": "/he_study"})
    return client._request("POST", "/login", body=body, headers={"X-Forwarded-For": address})


async def _ws(url: str, origin: str | None, cookie: str | None, token: str = "none"):
    headers = {}
    if origin:
        headers["Origin"] = origin
    if cookie:
        headers["Cookie"] = cookie
    conn = await websocket_connect(HTTPRequest(url, headers=headers, request_timeout=30),
                                   subprotocols=["bokeh", token])
    conn.close()
    return 101


def _ws_status(served, origin: str | None, cookie: str | None = None, token: str = "none") -> int:
    url = f"ws://127.0.0.1:{served['port']}/he_study/ws"
    try:
        return asyncio.run(_ws(url, origin, cookie, token))
    except HTTPClientError as err:
        return err.code


def test_websocket_upgrades_need_a_session_and_an_allowed_origin(served):
    own = f"http://127.0.0.1:{served['port']}"
    assert _ws_status(served, own) == 403  # no cookie
    client = Client(served["base"])
    assert client.login("alice", PASSWORDS["alice"]).code == 302
    page = client.get("/he_study").body.decode()
    token = re.search(r'"token":"([^"]+)"', page).group(1)
    cookie = f"user={client.cookies['user']}"
    assert _ws_status(served, own, cookie, token) == 101  # the real thing connects
    for origin in (f"http://evil.example:{served['port']}", f"http://127.0.0.1:{served['port']}.evil.example",
                   f"http://localhost:{served['port'] + 1}", None):
        assert _ws_status(served, origin, cookie, token) == 403, origin


def test_expired_tampered_or_removed_users_cookies_count_as_signed_out(served):
    own = f"http://127.0.0.1:{served['port']}"
    old = create_signed_value(SECRET, "user", "alice", clock=lambda: time.time() - 13 * 3600).decode()
    fresh = create_signed_value(SECRET, "user", "alice").decode()
    tampered = fresh[:-1] + ("0" if fresh[-1] != "0" else "1")
    other_secret = create_signed_value("another-secret-" + "y" * 32, "user", "alice").decode()
    for value in (old, tampered, other_secret):
        client = Client(served["base"])
        client.cookies["user"] = value
        assert client.get("/he_study").code == 302, value
        assert _ws_status(served, own, f"user={value}") == 403
    signed_in = Client(served["base"])
    signed_in.cookies["user"] = fresh
    assert signed_in.get("/he_study").code == 200  # the forged-old one failed on age alone

    ghost = create_signed_value(SECRET, "user", "zed").decode()  # a name not (or no longer) in the file
    client = Client(served["base"])
    client.cookies["user"] = ghost
    assert client.get("/he_study").code == 302


def test_oauth_server_starts_and_sends_visitors_to_the_providers_login(tiny_runs, tmp_path):
    port = _free_port()
    env = {**os.environ, "HEPML_COOKIE_SECRET": SECRET, "HEPML_OAUTH_KEY": "client-id-123",
           "HEPML_OAUTH_SECRET": "client-secret-456", "PYTHONPATH": str(ROOT)}
    env.pop("HEPML_OAUTH_ENCRYPTION_KEY", None)
    log_path = tmp_path / "oauth.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hepml_cli", "--quiet", "serve", "--auth", "oauth",
                                 "--oauth-provider", "github", "--port", str(port), "--runs-dir", str(tiny_runs[0])],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            client = Client(f"http://127.0.0.1:{port}")
            deadline, first = time.time() + 90, None
            while time.time() < deadline and proc.poll() is None:
                try:
                    first = client.get("/he_study")
                    break
                except OSError:
                    time.sleep(0.3)
            assert first is not None, log_path.read_text()
            assert first.code == 302
            assert urljoin(client.base + "/he_study", first.headers["Location"]).startswith(
                f"{client.base}/login?next=%2Fhe_study")
            to_provider = client.get("/login?next=%2Fhe_study")
            assert to_provider.code == 302
            assert to_provider.headers["Location"].startswith("https://github.com/login/oauth/authorize?")
            assert "client_id=client-id-123" in to_provider.headers["Location"]
            assert _ws_status({"port": port}, f"http://127.0.0.1:{port}") == 403
        finally:
            stop_process(proc)
    assert "sign-in required via github OAuth" in log_path.read_text()


def test_users_file_json_shape(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", "pw")
    data = json.loads(path.read_text())
    assert set(data) == {"users"} and set(data["users"]["alice"]) == {"role", "hash"}
