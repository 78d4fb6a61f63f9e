"""Webhook notifications against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from autopilot.notify import Notifier, slack_body


class _Server:
    """A local webhook receiver: answers the scripted status codes in turn, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                outer.attempts += 1
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.bodies.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def test_delivers_slack_body(server: _Server) -> None:
    n = Notifier([server.url], sleep=lambda s: None)
    assert n.notify("churn", "rollback", ["error rate 0.4 > 0.05"], {"version": 3})
    assert n.flush(10)
    n.close()
    assert len(server.bodies) == 1
    body = server.bodies[0]
    assert body["text"] == "[autopilot] churn: rollback"
    assert "error rate 0.4 > 0.05" in json.dumps(body["blocks"])
    assert n.stats.sent == 1 and n.stats.failed == 0


def test_retries_with_backoff_then_succeeds(server: _Server) -> None:
    server.statuses = [503, 500]
    delays: list[float] = []
    n = Notifier([server.url], max_retries=3, backoff_s=0.25, sleep=delays.append)
    n.notify("m", "promote")
    assert n.flush(10)
    n.close()
    assert server.attempts == 3
    assert delays == [0.25, 0.5]
    assert n.stats.sent == 1 and n.stats.failed == 0


def test_failing_webhook_is_counted_not_raised(server: _Server) -> None:
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    n = Notifier([dead, server.url], max_retries=1, sleep=lambda s: None, timeout_s=1.0)
    for i in range(3):
        assert n.notify("m", "retrain", [f"tick {i}"])
    assert n.flush(20)
    n.close()
    assert n.stats.failed == 3
    assert n.stats.sent == 3
    assert len(server.bodies) == 3


def test_client_error_not_retried(server: _Server) -> None:
    server.statuses = [400]
    n = Notifier([server.url], max_retries=3, sleep=lambda s: None)
    n.notify("m", "alert")
    assert n.flush(10)
    n.close()
    assert server.attempts == 1
    assert n.stats.failed == 1


def test_bounded_queue_drops_and_counts() -> None:
    gate = threading.Event()
    # A sleep that blocks the worker on its first retry keeps the queue from draining.
    n = Notifier(["http://127.0.0.1:9/x"], max_retries=1, queue_size=2,
                 sleep=lambda s: gate.wait(10), timeout_s=1.0)
    results = [n.notify("m", "retrain") for _ in range(10)]
    assert results.count(False) >= 7
    assert n.stats.dropped == results.count(False)
    gate.set()
    n.flush(20)
    n.close()


def test_no_urls_is_noop_and_bad_url_named() -> None:
    assert Notifier().notify("m", "promote") is False
    with pytest.raises(ValueError, match="ftp://x"):
        Notifier(["ftp://x"])


def test_slack_body_numbers_capped() -> None:
    body = slack_body("m", "promote", [], {f"k{i}": i for i in range(15)})
    assert len(body["blocks"][-1]["fields"]) == 10
