"""Notifications: decisions posted to webhooks with a Slack-compatible JSON body.

The controller calls :meth:`Notifier.notify` from its tick loop; the call only
puts the message on a bounded queue and returns at once. A daemon thread
posts each message to every configured URL with retries and exponential
backoff. A webhook that is slow, down, or answers an error never blocks or
breaks the loop: failures and messages dropped because the queue was full
are counted (:attr:`Notifier.stats`), not raised.

Example
-------
>>> body = slack_body("churn", "promote", ["challenger better: p=0.003"], {"version": "7"})
>>> body["text"]
'[autopilot] churn: promote'
>>> body["blocks"][1]["text"]["text"]
'• challenger better: p=0.003'
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from autopilot.journal import jsonable

__all__ = ["NotifierStats", "Notifier", "slack_body"]

log = logging.getLogger(__name__)

_EMOJI = {
    "promote": ":rocket:",
    "rollback": ":rewind:",
    "retrain": ":gear:",
    "alert": ":rotating_light:",
    "halt": ":octagonal_sign:",
    "detected": ":mag:",
}


def slack_body(
    model: str,
    action: str,
    reasons: Iterable[str] = (),
    numbers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Slack incoming-webhook body: a plain ``text`` fallback plus ``blocks``.

    Any receiver that only reads ``text`` (Mattermost, Discord's Slack mode,
    a plain log collector) still gets a useful one-liner.
    """
    reasons = [str(r) for r in reasons]
    title = f"[autopilot] {model}: {action}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{_EMOJI.get(action, ':robot_face:')} *{title}*"},
        }
    ]
    if reasons:
        lines = "\n".join(f"• {r}" for r in reasons)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines}})
    if numbers:
        fields = [
            {"type": "mrkdwn", "text": f"*{k}*: {v}"}
            for k, v in list(jsonable(dict(numbers)).items())[:10]  # Slack allows 10 fields
        ]
        blocks.append({"type": "section", "fields": fields})
    return {"text": title, "blocks": blocks}


@dataclass(frozen=True)
class NotifierStats:
    """Counters since start: delivered posts, failed posts (after all retries), dropped messages."""

    sent: int
    failed: int
    dropped: int
    queued: int


class Notifier:
    """Post messages to webhooks from a background thread.

    Parameters
    ----------
    urls
        Webhook URLs; with none, :meth:`notify` is a no-op that returns False.
    timeout_s
        Per-request timeout.
    max_retries
        Extra attempts after the first failure (so ``max_retries + 1`` in all).
    backoff_s
        First retry delay; doubles each retry.
    queue_size
        Messages waiting beyond this are dropped (and counted).
    sleep
        Injected for tests; ``time.sleep`` by default.
    """

    def __init__(
        self,
        urls: Iterable[str] = (),
        *,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        queue_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls = tuple(urls)
        for u in self.urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {u!r} must start with http:// or https://")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self._sleep = sleep
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._sent = self._failed = self._dropped = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        if self.urls:
            self._thread = threading.Thread(target=self._run, name="autopilot-notify", daemon=True)
            self._thread.start()

    # -------------------------------------------------------------------- public

    def notify(
        self,
        model: str,
        action: str,
        reasons: Iterable[str] = (),
        numbers: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue a message for every webhook; False when there are none or the queue is full."""
        return self.send(slack_body(model, action, reasons, numbers))

    def send(self, body: dict[str, Any]) -> bool:
        """Queue a ready-made JSON body."""
        if not self.urls or self._closed:
            return False
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            with self._lock:
                self._dropped += 1
            log.warning("notification queue full; message dropped")
            return False
        return True

    @property
    def stats(self) -> NotifierStats:
        with self._lock:
            return NotifierStats(self._sent, self._failed, self._dropped, self._queue.qsize())

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued message was attempted; True if it finished in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return self._queue.unfinished_tasks == 0

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting messages, deliver what is queued within ``timeout_s``, then stop."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                return
            self._thread.join(timeout_s)

    # ------------------------------------------------------------------ internal

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                body = self._queue.get()
                try:
                    if body is None:
                        return
                    for url in self.urls:
                        ok = self._post(client, url, body)
                        with self._lock:
                            if ok:
                                self._sent += 1
                            else:
                                self._failed += 1
                except Exception:  # noqa: BLE001 - the thread must survive anything
                    log.exception("notifier thread error")
                finally:
                    self._queue.task_done()

    def _post(self, client: httpx.Client, url: str, body: dict[str, Any]) -> bool:
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                resp = client.post(url, json=body)
                if resp.status_code < 400:
                    return True
                # 4xx other than 429 will not get better by retrying.
                if 400 <= resp.status_code < 500 and resp.status_code != 429:
                    log.warning("webhook %s refused the message: HTTP %s", url, resp.status_code)
                    return False
                log.info("webhook %s answered HTTP %s (attempt %d)", url, resp.status_code,
                         attempt + 1)
            except httpx.HTTPError as exc:
                log.info("webhook %s failed: %s (attempt %d)", url, exc, attempt + 1)
            if attempt < self.max_retries:
                self._sleep(delay)
                delay *= 2
        log.warning("webhook %s failed after %d attempts", url, self.max_retries + 1)
        return False
