"""A throwaway PostgreSQL cluster from Debian's binaries, on a loopback port, for the test run."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from atlas.devserver import free_port


def _bindir() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run `make test`, which installs it, "
                           "or set ATLAS_TEST_DATABASE_URL to a server of your own.")
    return Path(candidates[-1]).parent


class PostgresServer:
    """initdb + pg_ctl in a temporary directory; as root, the server runs as the postgres user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
        self.bindir = _bindir()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        """Create the cluster and a database named atlas, and start the server."""
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "atlas", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(self.directory / "log"), "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "atlas", "atlas")
        return self

    def url(self, database: str = "atlas") -> str:
        return f"postgresql+psycopg://atlas@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Another empty database on the same server; returns its URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "atlas", name)
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
