"""A real HTTP server on 127.0.0.1 for the outgoing-HTTP tests (the http_request step, the action test endpoint)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    """Routes: /json, /echo, /status/<n>[?retry_after=s], /flaky (500 until the Nth call), /big, /slow,
    /redirect?to=, /loop, /signed (200 when the Standard Webhooks signature verifies with server.webhook_secret)."""

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json", **headers):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        server: LocalServer = self.server.owner
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        verified = _verify(server.webhook_secret, body, dict(self.headers))
        server.requests.append({"method": self.command, "path": url.path, "headers": dict(self.headers),
                                "body": body, "verified": verified})
        query = parse_qs(url.query)
        if url.path == "/json":
            self._answer(200, json.dumps({"hello": "world", "n": 1}).encode(), ETag='"v1"')
        elif url.path == "/echo":
            echo = {"method": self.command, "headers": dict(self.headers), "body": body.decode()}
            self._answer(200, json.dumps(echo).encode())
        elif url.path.startswith("/status/"):
            extra = {"Retry_After": query["retry_after"][0]} if "retry_after" in query else {}
            self._answer(int(url.path.rsplit("/", 1)[1]), b'{"error": "nope"}', **extra)
        elif url.path == "/signed":
            self._answer(200 if verified else 401, json.dumps({"verified": bool(verified)}).encode())
        elif url.path == "/flaky":
            server.flaky_calls += 1
            ok = server.flaky_calls >= server.flaky_ok_at
            self._answer(200 if ok else 500, b'{"ok": true}' if ok else b"upstream exploded")
        elif url.path == "/big":
            self._answer(200, b"x" * (200 * 1024), content_type="text/plain")
        elif url.path == "/slow":
            time.sleep(1.5)
            self._answer(200, b"{}")
        elif url.path == "/redirect":
            self._answer(int(query.get("status", ["302"])[0]), b"", Location=query["to"][0])
        elif url.path == "/loop":
            self._answer(302, b"", Location="/loop")
        else:
            self._answer(404, b'{"error": "no such route"}')

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def _verify(secret: str | None, body: bytes, headers: dict) -> bool | None:
    """Whether a signed request verifies with the standardwebhooks package (None: no secret or no signature)."""
    if not secret or not any(k.lower() == "webhook-signature" for k in headers):
        return None
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    except ValueError:  # the signature matched; the library then parses the body as JSON, and a GET has none
        return True
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that stops reading (the body cap, a timeout) is expected here


class LocalServer:
    """A real HTTP server on 127.0.0.1 (a free port) in a thread, recording each request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.flaky_calls, self.flaky_ok_at = 0, 2
        self.webhook_secret: str | None = None  # set it to check the signature of outgoing webhooks
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
