"""The users file of a served app: names, roles and argon2 password hashes, never plaintext.

A users file is JSON (``.json``) or YAML (``.yaml``/``.yml``)::

    {"users": {"alice": {"role": "analyst", "hash": "$argon2id$v=19$m=65536,t=3,p=4$..."}}}

It is written by ``hepml users add/remove`` atomically (temp file in the same folder, then
``os.replace``) with mode 0600, because a hash is still worth guarding from offline guessing. An entry
may omit ``hash`` (an OAuth user who only needs a role); an entry with a ``password`` key or a hash that
is not argon2 is refused on load, so a plaintext password can never slip in by hand-editing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hepml_core.exceptions import ConfigError, InputFileError

from app.auth.roles import ROLES

__all__ = ["User", "UsersFile", "hash_password", "check_name", "check_role", "load_users",
           "save_users", "add_user", "remove_user"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_HASHER = PasswordHasher()
_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class User:
    """One entry of the users file."""

    name: str
    role: str
    hash: str | None = None


@cache
def _dummy_hash() -> str:
    # Verified against when the user name is unknown, so a wrong name costs as long as a wrong password
    # (response times do not tell which names exist).
    return _HASHER.hash("hepml-no-such-user")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; the parameters are stored in the hash).

    Raises:
        ConfigError: an empty password.
    """
    if not password:
        raise ConfigError("refusing an empty password; type a real one")
    return _HASHER.hash(password)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid user name, else raise ConfigError saying what is accepted."""
    if not _NAME.fullmatch(name or ""):
        raise ConfigError(f"user name {name!r} is not accepted; use 1-64 letters, digits and . _ @ + - "
                          "(starting with a letter or digit)")
    return name


def check_role(role: str) -> str:
    """Return ``role`` if it is one of ROLES, else raise ConfigError listing them."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r} is not accepted; use one of: {', '.join(ROLES)}")
    return role


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"users file {path} must end in .json, .yaml or .yml (that sets its format)")
    return suffix


def load_users(path: str | os.PathLike) -> dict[str, User]:
    """Read a users file.

    Returns:
        ``{name: User}``.

    Raises:
        InputFileError: the file is missing or not valid JSON/YAML.
        ConfigError: a bad name, role, plaintext password or non-argon2 hash (the message names the user).
    """
    path = Path(path).expanduser()
    suffix = _suffix(path)
    if not path.is_file():
        raise InputFileError(f"users file {path} not found; create it with: hepml users add NAME --users {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise InputFileError(f"users file {path} is not valid {suffix[1:].upper()}: {err}".splitlines()[0]) from err
    data = data or {}
    entries = data.get("users", {}) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"users file {path} must hold a mapping 'users: {{name: {{role, hash}}}}'")
    users = {}
    for name, entry in entries.items():
        users[str(name)] = _parse_entry(path, str(name), entry)
    return users


def _parse_entry(path: Path, name: str, entry) -> User:
    where = f"users file {path}, user {name!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with 'role' and 'hash'")
    if "password" in entry:
        raise ConfigError(f"{where} holds a plaintext password; remove it and set one with: "
                          f"hepml users add {name} --users {path} --force")
    unknown = sorted(set(entry) - {"role", "hash"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: role, hash")
    try:
        check_name(name)
        role = check_role(str(entry.get("role", "")))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    pw_hash = entry.get("hash")
    if pw_hash is not None and not (isinstance(pw_hash, str) and pw_hash.startswith("$argon2")):
        raise ConfigError(f"{where}: 'hash' is not an argon2 hash; set the password again with: "
                          f"hepml users add {name} --users {path} --force")
    return User(name, role, pw_hash)


def save_users(path: str | os.PathLike, users: dict[str, User]) -> Path:
    """Write ``users`` atomically with mode 0600 (temp file in the same folder, then ``os.replace``).

    Raises:
        InputFileError: the folder does not exist or the file cannot be written.
    """
    path = Path(path).expanduser()
    suffix = _suffix(path)
    entries = {}
    for user in sorted(users.values(), key=lambda u: u.name):
        entries[user.name] = {"role": user.role} | ({"hash": user.hash} if user.hash else {})
    data = {"users": entries}
    text = json.dumps(data, indent=2) + "\n" if suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
    if not path.parent.is_dir():
        raise InputFileError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    # mkstemp creates the file with mode 0600 and it keeps that mode through os.replace.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise InputFileError(f"cannot write users file {path} ({err.strerror or err})") from err
        raise
    return path


def add_user(path: str | os.PathLike, name: str, password: str, role: str = "analyst", *,
             force: bool = False) -> User:
    """Add (or with ``force`` replace) a user in the users file, creating the file if needed.

    Raises:
        ConfigError: bad name or role, empty password, or an existing user without ``force``.
    """
    path = Path(path).expanduser()
    check_name(name)
    check_role(role)
    users = load_users(path) if path.exists() else {}
    if name in users and not force:
        raise ConfigError(f"user {name!r} already exists in {path}; add --force to replace the password and role")
    user = User(name, role, hash_password(password))
    users[name] = user
    save_users(path, users)
    return user


def remove_user(path: str | os.PathLike, name: str) -> None:
    """Remove a user from the users file.

    Raises:
        MissingKeyError: no such user (the message lists the closest names).
    """
    from hepml_core.exceptions import MissingKeyError

    users = load_users(path)
    if name not in users:
        raise MissingKeyError("user", name, f"users file {Path(path)}", users)
    del users[name]
    save_users(path, users)


class UsersFile:
    """The users file as the running server sees it: re-read whenever it changes on disk.

    ``hepml users remove bob`` on a running server takes effect at bob's next request (his cookie no
    longer names a known user), without a restart.

    Args:
        path: the users file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.users()  # fail at start-up, not at the first login

    def users(self) -> dict[str, User]:
        """``{name: User}``, re-read if the file's mtime or size changed (a bad edit keeps the last good copy)."""
        try:
            st = self.path.stat()
        except OSError:
            return self._users
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._users = load_users(self.path)
                except (ConfigError, InputFileError):
                    if self._stamp is None:
                        raise
                self._stamp = stamp
            return self._users

    def get(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        return self.users().get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` matches the stored hash, else None (same cost for unknown names)."""
        user = self.get(name)
        pw_hash = user.hash if user is not None and user.hash else _dummy_hash()
        try:
            ok = _HASHER.verify(pw_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        return user if ok and user is not None and user.hash else None
