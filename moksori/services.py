"""Throwaway local PostgreSQL, Redis and nginx on loopback, from the Debian binaries.

Tests, ``benchmarks/cluster.py`` and anyone trying a multi-instance set-up on one machine start
these in a temporary folder and stop them afterwards; nothing is installed or left running.
PostgreSQL refuses to run as root, so when we are root its folder is handed to the ``postgres``
user (created by Debian's ``postgresql`` package) and its programs run as that user.

``services_required()`` is true when the environment says the services must be there (CI sets
``MOKSORI_REQUIRE_SERVICES=1``): callers then fail instead of skipping when one is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self


class ServiceUnavailable(RuntimeError):
    """A service's programs are not installed (or it would not start); the message says which."""


def services_required() -> bool:
    """Whether a missing service is an error rather than a reason to skip (set in CI)."""
    return os.environ.get("MOKSORI_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[Any] | None = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"process exited with status {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listened on 127.0.0.1:{port} within {timeout_s:.0f} s")


def _stop(process: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Service:
    """A temporary folder and one child process; a context manager."""

    name = "service"

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix=f"moksori-{self.name}-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - every service defines it
        raise NotImplementedError

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        log = self.root / f"{self.name}.log"
        if not log.is_file():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def postgres_bin_dir() -> Path:
    """The folder holding initdb and postgres: $MOKSORI_PG_BIN, else the newest Debian one."""
    candidates = [os.environ.get("MOKSORI_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    raise ServiceUnavailable("PostgreSQL server programs not found (apt-get install postgresql, or set MOKSORI_PG_BIN)")


class LocalPostgres(_Service):
    """A fresh PostgreSQL cluster (user ``moksori``, trust auth on loopback only, fsync off)."""

    name = "postgres"
    user = "moksori"

    def start(self) -> None:
        bin_dir = postgres_bin_dir()
        run_as = self._run_as()
        data = self.root / "data"
        if run_as is not None:
            os.chown(self.root, run_as.pw_uid, run_as.pw_gid)
        kwargs: dict[str, Any] = {} if run_as is None else {"user": run_as.pw_uid, "group": run_as.pw_gid}
        initdb = subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, cwd=self.root, **kwargs,
        )
        if initdb.returncode != 0:
            raise ServiceUnavailable(f"initdb failed: {initdb.stderr.strip()[-500:]}")
        self.port = free_port()
        options = {
            "listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": str(self.root),
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "max_connections": "200", "shared_buffers": "32MB",
        }
        args: list[Any] = [bin_dir / "postgres", "-D", data]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        with open(self.root / "postgres.log", "wb") as log:
            if run_as is not None:
                os.chown(self.root / "postgres.log", run_as.pw_uid, run_as.pw_gid)
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **kwargs)
        try:
            self._wait_ready(30)
        except ServiceUnavailable as error:
            raise ServiceUnavailable(f"{error}\n{self.log_tail()}") from None

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # "fast" shutdown: disconnects clients, no waiting
        self.process = None
        super().stop()

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True) as c:
            c.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (a copy of ``template`` if given) and return its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(os.environ.get("MOKSORI_PG_USER", "postgres"))
        except KeyError:
            raise ServiceUnavailable(
                "PostgreSQL will not run as root and there is no 'postgres' user to run it as "
                "(apt-get install postgresql creates one; or set MOKSORI_PG_USER)"
            ) from None

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceUnavailable(f"postgres exited with status {self.process.returncode}")
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"postgres did not accept connections within {timeout_s:.0f} s") from None
                time.sleep(0.1)


class LocalRedis(_Service):
    """A redis-server on a free loopback port, without persistence."""

    name = "redis"

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(server).is_file():
            raise ServiceUnavailable("redis-server not found (apt-get install redis-server)")
        self.port = free_port()
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.root), "--logfile", str(self.root / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 15, self.process)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size {max_body};
    upstream moksori {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://moksori;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            proxy_buffering off;
        }}
    }}
}}
"""


class LocalNginx(_Service):
    """nginx balancing round-robin over ``upstreams`` (loopback ports) on a free port."""

    name = "nginx"

    def __init__(self, upstreams: list[int], root: Path | None = None, max_body: str = "64m") -> None:
        super().__init__(root)
        self.upstreams = upstreams
        self.max_body = max_body

    def config(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in self.upstreams)
        user = "user root;" if os.geteuid() == 0 else ""  # workers keep our user: the temp folders are ours
        return NGINX_CONF.format(root=self.root, port=self.port, servers=servers, max_body=self.max_body, user=user)

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).is_file():
            raise ServiceUnavailable("nginx not found (apt-get install nginx)")
        self.port = free_port()
        conf = self.root / "nginx.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.root), "-e", str(self.root / "nginx.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, 15, self.process)
        except ServiceUnavailable as error:
            raise ServiceUnavailable(f"{error}\n{self.log_tail()}") from None

    def stop(self) -> None:
        _stop(self.process, signal.SIGQUIT)  # graceful: finish open requests
        self.process = None
        super().stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
