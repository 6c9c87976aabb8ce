"""A scripted API on loopback (http.server in a thread): each test says how each request is answered."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest


@dataclass
class Seen:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: Dict[str, str] = field(default_factory=dict)
    #: Raw SSE text (the stream ends after it), instead of a JSON body.
    events: Optional[str] = None


Script = Callable[[Seen, int], Reply]


class FakeApi:
    def __init__(self) -> None:
        self.seen: List[Seen] = []
        self.script: Script = lambda req, n: Reply(404, problem(404, "not_found", req.path))
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                api.seen.append(req)
                reply = api.script(req, len(api.seen))
                if reply.events is not None:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(reply.events.encode())
                    self.close_connection = True
                    return
                raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                kind = "application/problem+json" if reply.status >= 400 else "application/json"
                self.send_header("Content-Type", reply.headers.pop("content-type", kind))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def problem(status: int, code: str, detail: str, errors: Optional[list] = None) -> Dict[str, Any]:
    body: Dict[str, Any] = {"type": f"https://reelgate.dev/problems/{code}", "title": code, "status": status, "detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    return body


def job(job_id: str, status: str, percent: int, **extra: Any) -> Dict[str, Any]:
    return {"id": job_id, "status": status, "model": "preview", "progress": {"percent": percent}, "attempts": 1, **extra}


def event(seq: int, kind: str, body: Dict[str, Any]) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(body)}\n\n"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    yield server
    server.close()
