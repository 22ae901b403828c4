"""``hepml users add/list/remove`` and the access checks of ``hepml serve``, run as a user runs them."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.auth.users import UsersFile, load_users
from hepml_cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _hepml(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hepml_cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_add_list_remove_with_password_on_stdin(tmp_path):
    users = tmp_path / "team.yaml"
    done = _hepml("users", "add", "alice", "--users", str(users), "--password-stdin", stdin="correct horse\n")
    assert done.returncode == 0, done.stderr
    assert "added alice (analyst)" in done.stderr
    assert _hepml("users", "add", "bob", "--users", str(users), "--role", "reviewer", "--password-stdin",
                  stdin="battery staple\n").returncode == 0
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert "correct horse" not in users.read_text() and "battery" not in users.read_text()
    assert UsersFile(users).verify("alice", "correct horse") is not None  # the newline is not part of it

    listed = _hepml("users", "list", "--users", str(users))
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["alice\tanalyst\tpassword set",
                                                                   "bob\treviewer\tpassword set"]
    assert "$argon2" not in listed.stdout

    removed = _hepml("users", "remove", "bob", "--users", str(users))
    assert removed.returncode == 0 and set(load_users(users)) == {"alice"}


def test_replacing_a_user_needs_force_and_empty_passwords_are_refused(tmp_path, capsys):
    users = tmp_path / "team.json"
    assert _hepml("users", "add", "alice", "--users", str(users), "--password-stdin", stdin="one\n").returncode == 0
    again = _hepml("users", "add", "alice", "--users", str(users), "--password-stdin", stdin="two\n")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"hepml users: error: user 'alice' already exists in {users}; add --force to replace the password and role"]
    assert UsersFile(users).verify("alice", "one") is not None

    forced = _hepml("users", "add", "alice", "--users", str(users), "--role", "reviewer", "--force",
                    "--password-stdin", stdin="two\n")
    assert forced.returncode == 0 and load_users(users)["alice"].role == "reviewer"
    assert UsersFile(users).verify("alice", "two") is not None

    empty = _hepml("users", "add", "carol", "--users", str(users), "--password-stdin", stdin="\n")
    assert empty.returncode == 2 and "empty password" in empty.stderr and "carol" not in load_users(users)

    assert main(["users", "remove", "alicia", "--users", str(users)]) == 2
    assert "closest: 'alice'" in capsys.readouterr().err
    assert main(["users", "list", "--users", str(tmp_path / "none.json")]) == 2
    assert "hepml users add NAME" in capsys.readouterr().err


def _run_in_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ``hepml`` on a pseudo-terminal (getpass reads the controlling terminal) and type ``answers``."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "hepml_cli", *args],
                  {**os.environ, "PYTHONPATH": str(ROOT)})
    output, pending, deadline = b"", list(answers), time.time() + 120
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if pending and chunk.endswith(b": "):  # a fresh prompt (getpass has turned echo off)
            os.write(fd, (pending.pop(0) + "\n").encode())
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_add_prompts_twice_without_echo_and_refuses_a_mismatch(tmp_path):
    users = tmp_path / "team.json"
    code, out = _run_in_terminal(["users", "add", "dora", "--users", str(users)], ["first-pw", "second-pw"])
    assert code == 2 and "the two passwords differ" in out and not users.exists()
    code, out = _run_in_terminal(["users", "add", "dora", "--users", str(users)], ["same-pw", "same-pw"])
    assert code == 0, out
    assert "password for dora:" in out and "again:" in out and "same-pw" not in out  # not echoed
    assert UsersFile(users).verify("dora", "same-pw") is not None


def test_serve_refuses_to_share_without_auth_and_auth_without_a_secret(tmp_path, capsys, monkeypatch):
    assert main(["serve", "--address", "0.0.0.0", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hepml serve: error: --address 0.0.0.0 without --auth") and "\n" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything was set up

    users = tmp_path / "team.json"
    assert _hepml("users", "add", "alice", "--users", str(users), "--password-stdin", stdin="pw\n").returncode == 0
    monkeypatch.delenv("HEPML_COOKIE_SECRET", raising=False)
    assert main(["serve", "--auth", "basic", "--users", str(users), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "HEPML_COOKIE_SECRET" in err and "secrets.token_urlsafe(32)" in err and "\n" not in err
    assert main(["serve", "--auth", "basic", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "--auth basic needs --users FILE" in capsys.readouterr().err
    assert main(["serve", "--auth", "basic", "--users", str(users), "--allow-origin", "https://x.org"]) == 2
    assert "--allow-origin 'https://x.org' is not accepted" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["users", "add", "--users", "x.json"], ["users", "remove", "--users", "x.json"]])
def test_add_and_remove_need_a_name(argv, capsys):
    assert main(argv) == 2
    assert "needs a user name" in capsys.readouterr().err
