"""A private, throwaway PostgreSQL server for the tests (a helper module, not a test module).

:func:`postgres_server` runs ``initdb`` in a fresh temporary folder, starts the server on a Unix socket
inside that folder (no TCP port at all, so it can clash with nothing, and nothing outside this machine can
reach it) with trust authentication and ``fsync=off``, creates a database, and yields its SQLAlchemy URL::

    postgresql+psycopg2://neuralstudio@/neuralstudio_test?host=/tmp/nspg-XXXX&port=5432

On leaving the ``with`` block, even after a failed test, the server is stopped (``pg_ctl stop -m
immediate``) and the folder removed.  The server binaries are Debian's ``postgresql`` package (or any
PostgreSQL install): found with ``pg_config --bindir``, on PATH, or in ``/usr/lib/postgresql/*/bin``.

PostgreSQL refuses to run as root.  When the tests run as root, the server runs as the ``postgres`` user
(which the Debian package creates), in a folder that user owns; otherwise it runs as the current user.

Test modules use the fixtures by importing them (``tests/`` is on ``sys.path``, as for ``window_helpers``)::

    from postgres_server import postgres_url  # noqa: F401 - a pytest fixture

    def test_something(postgres_url):
        engine = sqlalchemy.create_engine(postgres_url)

``postgres_url`` is session-scoped: one server for the whole test session, however many modules import it.
``postgres_database_url`` gives each test its own, empty database on that server.  Without PostgreSQL both
skip, saying what to install, unless ``NEURALSTUDIO_REQUIRE_POSTGRES`` is set (``.ci/run`` sets it): then a
missing server fails the tests instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = "NEURALSTUDIO_REQUIRE_POSTGRES"
SUPERUSER = "neuralstudio"  # the server's superuser role (trust authentication: no password)
DATABASE = "neuralstudio_test"
PORT = 5432  # only names the socket file, in a folder of our own: no TCP port is opened
_SERVER_USER = "postgres"  # who runs the server when the tests run as root
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL
_INSTALL_HINT = (
    "the PostgreSQL server is not installed: install Debian's package with "
    "`apt-get install postgresql` (the tests start their own private server from its binaries; "
    "the system service is not needed)"
)


class PostgresNotInstalledError(RuntimeError):
    """No PostgreSQL server binaries here (or, as root, no unprivileged user to run them)."""


class PostgresStartError(RuntimeError):
    """The binaries are there but the private server did not start; the message holds its log."""


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail the tests rather than skip them (``NEURALSTUDIO_REQUIRE_POSTGRES``)."""
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def _has_server(bindir: str | os.PathLike[str]) -> bool:
    return all(os.access(os.path.join(bindir, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``; :class:`PostgresNotInstalledError` if none."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:  # Debian puts only pg_wrapper links on PATH, if anything: follow the link to the real folder
        candidates.append(os.path.dirname(os.path.realpath(initdb)))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if bindir and _has_server(bindir):
            return Path(bindir)
    raise PostgresNotInstalledError(_INSTALL_HINT)


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SERVER_USER)
    except KeyError:
        raise PostgresNotInstalledError(
            f"the tests run as root and PostgreSQL refuses to run as root, but there is no {_SERVER_USER!r} "
            "user to run it as: `apt-get install postgresql` creates it (or run the tests as a normal user)"
        ) from None


def _base_folder(account: pwd.struct_passwd | None) -> str:
    """Where the temporary folder goes: short enough for the socket path, and reachable by the server's user."""
    base = tempfile.gettempdir()
    longest = os.path.join(base, "nspg-" + "x" * 8, f".s.PGSQL.{PORT}.lock")
    if len(os.fsencode(longest)) > _SOCKET_PATH_MAX:
        return "/tmp"
    if account is not None:  # every folder above must let the postgres user through
        folder = Path(base).resolve()
        for parent in (folder, *folder.parents):
            if not parent.stat().st_mode & 0o001:
                return "/tmp"
    return base


def _run(cmd: list[str], account: pwd.struct_passwd | None, cwd: str, timeout: float) -> str:
    """Run a server command as the server's user; its output, or :class:`PostgresStartError` with it."""
    kwargs = {}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("PGDATA", None)
    if account is not None:
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise PostgresStartError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def _kill_leftover(datadir: Path) -> None:
    """Last resort when ``pg_ctl stop`` failed: kill the postmaster named in ``postmaster.pid``."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)  # its children exit on their own once they see the postmaster gone


def server_url(socket_dir: str | os.PathLike[str], database: str, *, port: int = PORT) -> str:
    """The SQLAlchemy URL of ``database`` on the server listening in ``socket_dir``."""
    return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={socket_dir}&port={port}"


def create_database(url: str, name: str) -> str:
    """Create the database ``name`` on the server of ``url``; the URL of the new database."""
    import sqlalchemy

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name!r}")
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_server(database: str = DATABASE) -> Iterator[str]:
    """Start a private PostgreSQL server with an empty ``database``; yield the database's SQLAlchemy URL.

    Raises :class:`PostgresNotInstalledError` (saying what to install) when there is no server to start, and
    :class:`PostgresStartError` (with the server's log) when it does not start.
    """
    bindir = find_bindir()
    account = _server_account()
    folder = Path(tempfile.mkdtemp(prefix="nspg-", dir=_base_folder(account)))
    datadir, log = folder / "data", folder / "server.log"
    started = False
    try:
        if account is not None:
            os.chown(folder, account.pw_uid, account.pw_gid)
        cwd = str(folder)  # the server's user may not be allowed into ours
        _run([str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
              "--no-locale", "--no-sync"], account, cwd, timeout=120)
        settings = {
            "listen_addresses": "''",  # Unix socket only: no TCP at all
            "unix_socket_directories": f"'{folder}'",
            "unix_socket_permissions": "0700",
            "port": str(PORT),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "logging_collector": "off",
        }
        with open(datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# tests/postgres_server.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        started = True  # from here on, pg_ctl stop in any case (a half-started server is stopped too)
        try:
            _run([str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-l", str(log), "-w", "-t", "60", "-s"],
                 account, cwd, timeout=90)
        except PostgresStartError as exc:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise PostgresStartError(f"{exc}\nserver log:\n{server_log}") from None
        create_database(server_url(folder, "postgres"), database)
        yield server_url(folder, database)
    finally:
        if started:
            try:
                _run([str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate", "-w", "-t", "30", "-s"],
                     account, str(folder), timeout=60)
            except (PostgresStartError, OSError, subprocess.SubprocessError):
                _kill_leftover(datadir)
                time.sleep(0.2)
        shutil.rmtree(folder, ignore_errors=True)


def start_or_skip(stack: contextlib.ExitStack) -> str:
    """Enter :func:`postgres_server` on ``stack``: its URL; skip the test if PostgreSQL is not installed.

    With ``NEURALSTUDIO_REQUIRE_POSTGRES`` set (as ``.ci/run`` sets it), fail the test instead of skipping.
    """
    try:
        return stack.enter_context(postgres_server())
    except PostgresNotInstalledError as exc:
        if postgres_required():
            pytest.fail(f"{REQUIRE_ENV} is set, but {exc}", pytrace=False)
        pytest.skip(str(exc))


# One server per test session, shared by every module that imports the fixture: pytest makes a separate
# session-scoped fixture of it in each importing module, so those share the server here and the last
# teardown stops it.
_shared: dict[str, object] = {"users": 0, "url": None, "stack": None}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of an empty database on a private PostgreSQL server, shared by the test session.

    Skips when PostgreSQL is not installed, failing instead when ``NEURALSTUDIO_REQUIRE_POSTGRES`` is set.
    """
    if _shared["users"] == 0:
        stack = contextlib.ExitStack()
        _shared.update(url=start_or_skip(stack), stack=stack)
    _shared["users"] = int(_shared["users"]) + 1
    try:
        yield str(_shared["url"])
    finally:
        _shared["users"] = int(_shared["users"]) - 1
        if _shared["users"] == 0:
            stack = _shared["stack"]
            _shared.update(url=None, stack=None)
            stack.close()  # type: ignore[union-attr]


@pytest.fixture
def postgres_database_url(postgres_url: str) -> str:
    """The SQLAlchemy URL of a new, empty database of this test's own on the session's server."""
    return create_database(postgres_url, f"test_{uuid.uuid4().hex[:16]}")
