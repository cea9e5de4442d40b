"""A real HTTP server standing in for a Twilio-style SMS API on 127.0.0.1: records form posts, can fail on demand."""
from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class SmsServer:
    """`with SmsServer() as sms:` ... sms.url, sms.requests (every post), sms.delivered (the accepted ones).

    fail_next(n, status) answers the next n posts with that status (503 by default); refuse_next(...) the same
    with a 4xx and a Twilio-style error body.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.delivered: list[dict] = []
        self._failures: list[tuple[int, dict]] = []
        self._ids = itertools.count(1)
        self.stall = 0.0  # seconds to wait before answering (a provider slower than the client's timeout)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/2010-04-01/Accounts/AC123/Messages.json"

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        self._failures += [(status, {"message": "Service unavailable"})] * count

    def refuse_next(self, status: int = 400, message: str = "The 'To' number is not a valid phone number.") -> None:
        self._failures.append((status, {"code": 21211, "message": message}))

    def _answer(self, record: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(record)
            if self._failures:
                return self._failures.pop(0)
            sid = f"SM{next(self._ids):032d}"
            self.delivered.append({**record, "sid": sid})
            return 201, {"sid": sid, "status": "queued", "to": record["form"].get("To")}

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                time.sleep(outer.stall)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                auth = self.headers.get("Authorization", "")
                user = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else None
                record = {"path": self.path, "form": form, "auth": user, "headers": dict(self.headers)}
                status, body = outer._answer(record)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler

    def start(self) -> "SmsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
