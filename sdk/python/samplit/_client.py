"""The Samplit client.

Rules, in order (the same as the JavaScript SDK's):

1. Never break the caller on server trouble. A slow, unreachable or failing
   server, or an experiment that is not running, makes ``assign`` return a
   fallback (``source == "fallback"``) and log once; only programming errors
   (an empty experiment key, a unit id that is not a string) raise, as
   ``TypeError`` or ``ValueError``.
2. Sticky and cheap: assignments are cached in memory, keyed by base URL,
   experiment and unit, so a repeat costs no request.
3. Events are never counted twice and never silently dropped while the
   server is away: each gets an idempotency key when queued; a background
   thread sends them in batches of at most 1000 every ``flush_interval``
   seconds, and retries network errors, 408, 429 and 5xx with backoff and
   the same keys.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple, Union

Source = Literal["server", "cache", "fallback"]
"""Where an assignment came from."""

Default = Union[str, None, Mapping[str, Any]]
"""A fallback for an experiment: a variant key, or ``{"variant": ..., "payload": ...}``."""

BATCH = 1000
_CACHE_MAX = 100_000
_log = logging.getLogger("samplit")


Reason = Literal["not_targeted", "layer", "traffic"]
"""Why the server gave a unit no variant: its attributes do not match the
experiment's targeting (nothing was stored), it falls in another experiment's
range of the layer, or it is outside the traffic share."""


@dataclass(frozen=True)
class Assignment:
    """The variant a unit sees; ``variant`` is None when it sees none, and
    ``reason`` (from the server or the cache) then says why."""

    variant: Optional[str]
    payload: Any
    source: Source
    reason: Optional[Reason] = None


@dataclass
class _Item:
    path: str
    body: Dict[str, Any]
    single: bool = False


class _Reply:
    def __init__(self, status: int, body: Any, retry_after: float) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after


def _need(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"samplit: {what} must be a string, not {type(value).__name__}")
    if value == "":
        raise ValueError(f"samplit: {what} must not be empty")


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class Samplit:
    """A Samplit client: one per server and key, safe to share between threads.

    ``timeout`` bounds ``assign`` and ``progress`` (seconds, default 1).
    ``defaults`` maps experiment keys (and ``"funnel/step"``) to fallbacks.
    Use it as a context manager, or call :meth:`close`, so that queued events
    are sent before the program ends (an ``atexit`` hook also tries).
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 1.0,
        defaults: Optional[Mapping[str, Default]] = None,
        flush_interval: float = 1.0,
        cache_ttl: float = 86400.0,
        max_queue: int = 10_000,
        send_timeout: float = 10.0,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        _need(base_url, "base_url")
        _need(key, "key")
        self._base = base_url.rstrip("/")
        self._key = key
        self._timeout = timeout
        self._defaults: Dict[str, Default] = dict(defaults or {})
        self._interval = flush_interval
        self._ttl = cache_ttl
        self._max_queue = max_queue
        self._send_timeout = send_timeout
        self._log = logger or _log
        self._id = f"{int(time.time() * 1000):x}{os.urandom(8).hex()}"
        self._seq = 0
        self._lock = threading.Lock()  # guards the queue, the caches and the counters
        self._send_lock = threading.Lock()  # one sender at a time
        self._wake = threading.Condition(self._lock)
        self._queue: List[_Item] = []
        self._cache: Dict[str, Tuple[Optional[str], Any, float, Optional[str]]] = {}
        self._controls: Dict[str, Tuple[str, Any]] = {}
        self._logged: set = set()
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._thread = threading.Thread(target=self._run, name="samplit-events", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())  # type: ignore[union-attr]

    # -- the public surface -------------------------------------------------

    def assign(self, experiment: str, unit_id: str, attributes: Optional[Mapping[str, Any]] = None) -> Assignment:
        """Returns the unit's variant: cached, else from the server, else the fallback.

        The fallback is the caller's default for the experiment, else its
        control when the client has seen it, else ``variant=None``.
        """
        _need(experiment, "experiment")
        _need(unit_id, "unit_id")
        body: Dict[str, Any] = {"unit_id": unit_id}
        if attributes:
            body["attributes"] = dict(attributes)
        return self._ask(f"a|{experiment}|{unit_id}", self._path("experiments", experiment, "assign"), body,
                         experiment, cache_null=not attributes, queue=False)

    def track(self, experiment: str, unit_id: str, value: Optional[float] = None,
              idempotency_key: Optional[str] = None, metric: Optional[str] = None) -> None:
        """Queues a conversion (binary metric) or a value (continuous metric) of an assigned unit.

        ``metric`` names one of the experiment's secondary or guardrail
        metrics (default: the primary one); each metric has its own
        idempotency keys.
        """
        _need(experiment, "experiment")
        _need(unit_id, "unit_id")
        body: Dict[str, Any] = {"unit_id": unit_id}
        if metric is not None:
            _need(metric, "metric")
            body["metric"] = metric
        self._event(self._path("experiments", experiment, "events"), body, value, idempotency_key)

    def progress(self, funnel: str, unit_id: str, step: str) -> Assignment:
        """Says the unit reached the funnel's step and returns its variant there.

        When the server cannot be reached the fallback is returned (the
        default for ``"funnel/step"``, else ``variant=None``) and the step is
        queued and reported later: reaching a step is idempotent.
        """
        _need(funnel, "funnel")
        _need(unit_id, "unit_id")
        _need(step, "step")
        return self._ask(f"f|{funnel}|{step}|{unit_id}", self._path("funnels", funnel, "progress"),
                         {"unit_id": unit_id, "step": step}, f"{funnel}/{step}", cache_null=True, queue=True)

    def campaign_event(self, campaign: str, recipient: str, type: str, value: Optional[float] = None,
                       idempotency_key: Optional[str] = None) -> None:
        """Queues a campaign event (``delivered``, ``open``, ``click``, ``conversion`` with a value, ...)."""
        _need(campaign, "campaign")
        _need(recipient, "recipient")
        _need(type, "type")
        self._event(self._path("campaigns", campaign, "events"), {"recipient": recipient, "type": type},
                    value, idempotency_key)

    def flush(self) -> bool:
        """Sends every queued event now; returns True when the queue is empty.

        It never raises on server trouble: what could not be sent stays
        queued for the background thread's next attempt.
        """
        self._send()
        with self._lock:
            return not self._queue

    def close(self) -> None:
        """Sends what is queued and stops the background thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=self._send_timeout + 1)
        self._send()

    @property
    def pending(self) -> int:
        """How many events wait to be sent."""
        with self._lock:
            return len(self._queue)

    def __enter__(self) -> "Samplit":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- assignments --------------------------------------------------------

    def _path(self, kind: str, ref: str, action: str) -> str:
        return f"/v1/{kind}/{urllib.parse.quote(ref, safe='')}/{action}"

    def _ask(self, ck: str, path: str, body: Dict[str, Any], name: str, *, cache_null: bool, queue: bool) -> Assignment:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(ck)
        if hit is not None and hit[2] > now:
            return Assignment(hit[0], hit[1], "cache", hit[3])
        try:
            r = self._post(path, body, self._timeout)
        except Exception as e:  # noqa: BLE001 - any transport failure is a fallback
            if queue:
                self._push(_Item(path, body, single=True))
            return self._fallback(name, f"{type(e).__name__}: {e}")
        if r.status == 200 and isinstance(r.body, dict) and "variant" in r.body:
            variant = r.body.get("variant")
            payload = r.body.get("payload")
            reason = r.body.get("reason") if variant is None and isinstance(r.body.get("reason"), str) else None
            with self._lock:
                # A unit sent with attributes is not cached without a variant:
                # its attributes may match the targeting next time.
                if variant is not None or cache_null:
                    if len(self._cache) >= _CACHE_MAX:
                        self._cache.clear()
                    self._cache[ck] = (variant, payload, time.monotonic() + self._ttl, reason)
                control = r.body.get("control")
                if isinstance(control, dict) and isinstance(control.get("variant"), str):
                    self._controls[name] = (control["variant"], control.get("payload"))
            return Assignment(variant, payload, "server", reason)
        if queue and _retryable(r.status):
            self._push(_Item(path, body, single=True))
        detail = r.body.get("detail") if isinstance(r.body, dict) else None
        return self._fallback(name, f"HTTP {r.status}" + (f": {detail}" if detail else ""))

    def _fallback(self, name: str, why: str) -> Assignment:
        self._once("a|" + name, "%s: falling back (%s)", name, why)
        if name in self._defaults:
            d = self._defaults[name]
            if isinstance(d, Mapping):
                return Assignment(d.get("variant"), d.get("payload"), "fallback")
            return Assignment(d, None, "fallback")
        with self._lock:
            c = self._controls.get(name)
        if c is not None:
            return Assignment(c[0], c[1], "fallback")
        return Assignment(None, None, "fallback")

    # -- events -------------------------------------------------------------

    def _event(self, path: str, body: Dict[str, Any], value: Optional[float], idem: Optional[str]) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError("samplit: value must be a finite number")
            body["value"] = value
        if idem is not None:
            _need(idem, "idempotency_key")
        with self._lock:
            if idem is None:
                idem = f"{self._id}.{self._seq:x}"
                self._seq += 1
            body["idempotency_key"] = idem
        self._push(_Item(path, body))

    def _push(self, item: _Item) -> None:
        with self._lock:
            self._queue.append(item)
            if len(self._queue) > self._max_queue:
                del self._queue[: len(self._queue) - self._max_queue]
                self._once_locked("drop", "the event queue is full; the oldest events were dropped")
            if len(self._queue) >= BATCH:
                self._wake.notify_all()

    def _run(self) -> None:
        # The background sender: it wakes every flush_interval (or when a
        # full batch is queued) until close() and sends when not backing off.
        while True:
            with self._lock:
                if self._closed:
                    return
                self._wake.wait(self._interval)
                if self._closed:
                    return
                due = bool(self._queue) and time.monotonic() >= self._retry_at
            if due:
                self._send()

    def _send(self) -> None:
        with self._send_lock:
            with self._lock:
                rounds = len(self._queue) * 2 + 2
            while rounds > 0:  # each round removes one batch or stops: bounded
                rounds -= 1
                with self._lock:
                    if not self._queue:
                        return
                    first = self._queue[0]
                    if first.single:
                        batch = [first]
                    else:
                        batch = [it for it in self._queue if not it.single and it.path == first.path][:BATCH]
                payload = first.body if first.single else {"events": [it.body for it in batch]}
                try:
                    r = self._post(first.path, payload, self._send_timeout)
                except Exception as e:  # noqa: BLE001
                    self._backoff(0, f"{type(e).__name__}: {e}")
                    return
                if _retryable(r.status):
                    self._backoff(r.retry_after, f"HTTP {r.status}")
                    return
                with self._lock:
                    self._failures = 0
                    self._retry_at = 0.0
                    ids = {id(it) for it in batch}
                    self._queue = [it for it in self._queue if id(it) not in ids]
                if r.status >= 300:
                    detail = r.body.get("detail") if isinstance(r.body, dict) else None
                    self._once(f"s{r.status}", "events dropped: HTTP %d%s", r.status, f": {detail}" if detail else "")
                elif isinstance(r.body, dict) and r.body.get("rejected"):
                    rej = r.body["rejected"]
                    self._once("rej", "%d events rejected, e.g.: %s", len(rej), rej[0].get("error"))

    def _backoff(self, retry_after: float, why: str) -> None:
        with self._lock:
            self._failures += 1
            delay = min(30.0, 0.25 * 2 ** self._failures) * (0.5 + random.random() / 2)
            self._retry_at = time.monotonic() + max(delay, retry_after)
            self._once_locked("b", "sending events failed (%s); retrying with backoff", why)

    # -- HTTP ---------------------------------------------------------------

    def _post(self, path: str, body: Any, timeout: float) -> _Reply:
        req = urllib.request.Request(
            self._base + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json",
                     "User-Agent": "samplit-python/0.1.0"},
        )
        try:
            with self._opener.open(req, timeout=timeout) as res:
                return _Reply(res.status, _json(res.read()), 0.0)
        except urllib.error.HTTPError as e:  # a status >= 400: an answer, not a transport failure
            try:
                raw = e.read()
            finally:
                e.close()
            try:
                retry_after = float(e.headers.get("Retry-After") or 0)
            except ValueError:
                retry_after = 0.0
            return _Reply(e.code, _json(raw), retry_after)

    # -- logging ------------------------------------------------------------

    def _once(self, key: str, msg: str, *args: object) -> None:
        with self._lock:
            self._once_locked(key, msg, *args)

    def _once_locked(self, key: str, msg: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self._log.warning(msg, *args)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
