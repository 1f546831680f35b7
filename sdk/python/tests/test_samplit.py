"""The Python SDK against a real `samplit serve` on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import logging
import time
import unittest

from samplit import Assignment, Samplit

from .helpers import ADMIN, Proxy, Server, cleanup_binary, free_port, wait_for

srv: Server
_n = itertools.count(1)


def fresh(prefix: str) -> str:
    return f"{prefix}-{next(_n)}"


def setUpModule() -> None:
    global srv
    srv = Server().start()


def tearDownModule() -> None:
    srv.close()
    cleanup_binary()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class SDKTest(unittest.TestCase):
    def setUp(self) -> None:
        self.logs = Captured()
        self.logger = logging.getLogger(f"samplit.test.{self.id()}")
        self.logger.addHandler(self.logs)
        self.logger.propagate = False
        self.clients: list = []

    def tearDown(self) -> None:
        for c in self.clients:
            c.close()

    def sdk(self, base_url: str = "", **kw: object) -> Samplit:
        kw.setdefault("flush_interval", 60.0)
        c = Samplit(base_url or srv.url, kw.pop("key", ADMIN), logger=self.logger, **kw)  # type: ignore[arg-type]
        self.clients.append(c)
        return c

    def test_assign_server_then_cache(self) -> None:
        exp = fresh("assign")
        srv.experiment(exp)
        s = self.sdk()
        a = s.assign(exp, "u1")
        self.assertEqual(a.source, "server")
        self.assertIn(a.variant, ("control", "green"))
        self.assertEqual(a.payload, {"color": "grey" if a.variant == "control" else "green"})
        self.assertEqual(s.assign(exp, "u1"), Assignment(a.variant, a.payload, "cache"))
        self.assertEqual(self.sdk().assign(exp, "u1"), Assignment(a.variant, a.payload, "server"), "sticky on the server")
        self.assertEqual(srv.counts(exp)["units"], 1)

    def test_assign_with_attributes_not_targeted(self) -> None:
        exp = fresh("targeted")
        srv.must(201, "POST", "/v1/experiments", {
            "key": exp, "metric": "binary", "start": True,
            "variants": [{"key": "control"}, {"key": "green"}],
            "targeting": {"all": [{"attribute": "country", "op": "in", "values": ["ES", "MX"]}]}})
        s = self.sdk()
        self.assertEqual(s.assign(exp, "fr", {"country": "FR"}), Assignment(None, None, "server", "not_targeted"))
        # Not cached: the same unit, now matching, asks the server and gets in.
        inside = s.assign(exp, "fr", {"country": "ES", "age": 30, "beta": True})
        self.assertEqual(inside.source, "server")
        self.assertIn(inside.variant, ("control", "green"))
        self.assertIsNone(inside.reason)
        self.assertEqual(srv.counts(exp)["units"], 1)

    def test_cache_expires(self) -> None:
        exp = fresh("ttl")
        srv.experiment(exp)
        s = self.sdk(cache_ttl=0.2)
        s.assign(exp, "u1")
        self.assertEqual(s.assign(exp, "u1").source, "cache")
        time.sleep(0.25)
        self.assertEqual(s.assign(exp, "u1").source, "server")

    def test_fallbacks(self) -> None:
        exp = fresh("fallback")
        srv.experiment(exp)
        s = self.sdk(defaults={"with-default": "green", "with-payload": {"variant": "b", "payload": {"x": 1}}})
        self.assertEqual(s.assign("nope", "u1"), Assignment(None, None, "fallback"))
        self.assertEqual(s.assign("with-default", "u1"), Assignment("green", None, "fallback"))
        self.assertEqual(s.assign("with-payload", "u1"), Assignment("b", {"x": 1}, "fallback"))
        self.assertEqual(s.assign(exp, "u1").source, "server")
        srv.must(200, "POST", f"/v1/experiments/{exp}/pause")
        self.assertEqual(s.assign(exp, "u2"), Assignment("control", {"color": "grey"}, "fallback"))
        s.assign(exp, "u3")
        mine = [line for line in self.logs.lines if line.startswith(exp)]
        self.assertEqual(len(mine), 1, self.logs.lines)
        self.assertIn("409", mine[0])

    def test_programming_errors_raise(self) -> None:
        s = self.sdk()
        with self.assertRaises(ValueError):
            s.assign("", "u1")
        with self.assertRaises(TypeError):
            s.assign("e", 42)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            s.track("e", "u", value=float("nan"))
        with self.assertRaises(TypeError):
            s.track("e", "u", value="1")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            s.campaign_event("c", "r", "")
        with self.assertRaises(ValueError):
            Samplit("", "k")
        bad = self.sdk(key="sk_nonsense")
        self.assertEqual(bad.assign("x", "u1").source, "fallback")

    def test_stopped_or_slow_server_falls_back_within_the_timeout(self) -> None:
        down = self.sdk(f"http://127.0.0.1:{free_port()}", timeout=0.3, defaults={"e": "control"})
        t0 = time.monotonic()
        self.assertEqual(down.assign("e", "u1"), Assignment("control", None, "fallback"))
        self.assertLess(time.monotonic() - t0, 0.7)

        exp = fresh("slow")
        srv.experiment(exp)
        proxy = Proxy(srv.url)
        self.addCleanup(proxy.close)
        proxy.script = [("delay", 1.5)]
        slow = self.sdk(proxy.url, timeout=0.3)
        t0 = time.monotonic()
        self.assertEqual(slow.assign(exp, "u1").source, "fallback")
        took = time.monotonic() - t0
        self.assertTrue(0.28 <= took < 0.7, f"fell back after {took:.3f} s (the proxy waits 1.5 s)")

    def test_track_batched_and_idempotent(self) -> None:
        exp = fresh("track")
        srv.experiment(exp)
        s = self.sdk()
        for i in range(30):
            s.assign(exp, f"u{i}")
        for i in range(30):
            s.track(exp, f"u{i}")
        s.track(exp, "never-assigned")
        self.assertEqual(s.pending, 31)
        self.assertTrue(s.flush())
        self.assertEqual(srv.counts(exp), {"units": 30, "conversions": 30, "sum": 30})
        self.assertTrue(any("1 events rejected" in line for line in self.logs.lines), self.logs.lines)

        rev = fresh("revenue")
        srv.experiment(rev, metric="continuous")
        s.assign(rev, "buyer")
        s.track(rev, "buyer", value=12.5, idempotency_key="order-9")
        s.track(rev, "buyer", value=12.5, idempotency_key="order-9")
        s.track(rev, "buyer", value=2)
        s.flush()
        self.assertEqual(srv.counts(rev)["sum"], 14.5)

    def test_track_metric(self) -> None:
        exp = fresh("metrics")
        srv.must(201, "POST", "/v1/experiments", {
            "key": exp, "metric": "binary", "start": True,
            "variants": [{"key": "control", "control": True}, {"key": "green"}],
            "metrics": [{"key": "revenue", "type": "continuous"},
                        {"key": "refunds", "type": "binary", "role": "guardrail", "direction": "decrease",
                         "max_degradation": 0.1}]})
        s = self.sdk()
        s.assign(exp, "buyer")
        s.track(exp, "buyer", idempotency_key="order-1")
        s.track(exp, "buyer", value=12.5, idempotency_key="order-1", metric="revenue")  # its own keys
        s.track(exp, "buyer", value=12.5, idempotency_key="order-1", metric="revenue")
        s.track(exp, "buyer", metric="refunds")
        with self.assertRaises(ValueError):
            s.track(exp, "buyer", metric="")
        self.assertTrue(s.flush())
        r = srv.must(200, "GET", f"/v1/experiments/{exp}/results")
        self.assertEqual(sum(v["conversions"] for v in r["variants"]), 1)
        self.assertEqual(sum(v["sum"] for v in r["metrics"]["revenue"]["variants"]), 12.5)
        self.assertEqual(sum(v["sum"] for v in r["metrics"]["refunds"]["variants"]), 1)
        self.assertTrue(all(v["guardrail"] == "ok" for v in r["metrics"]["refunds"]["variants"]))

    def test_batches_of_at_most_1000(self) -> None:
        exp = fresh("big")
        srv.experiment(exp, metric="continuous")
        units = [f"u{i}" for i in range(1000)]
        srv.must(200, "POST", f"/v1/experiments/{exp}/assign", {"unit_ids": units})
        proxy = Proxy(srv.url)
        self.addCleanup(proxy.close)
        s = self.sdk(proxy.url)
        for i in range(2500):
            s.track(exp, units[i % 1000], value=1)
        wait_for(lambda: s.flush(), 30, "the queue to empty")
        sizes = [len(json.loads(r["body"])["events"]) for r in proxy.seen]
        self.assertTrue(all(n <= 1000 for n in sizes), sizes)
        self.assertEqual(sum(sizes), 2500)
        self.assertEqual(srv.counts(exp)["sum"], 2500)

    def test_background_thread_retries_with_the_same_keys(self) -> None:
        exp = fresh("retry")
        # Continuous values without caller keys: only the SDK's own idempotency keys keep
        # a retried batch from adding its values twice (a binary unit converts once anyway).
        srv.experiment(exp, metric="continuous")
        proxy = Proxy(srv.url)
        self.addCleanup(proxy.close)
        s = self.sdk(proxy.url, flush_interval=0.02)
        for i in range(5):
            s.assign(exp, f"u{i}")
        with proxy.lock:
            proxy.script = ["drop", 503, 429]
            proxy.seen.clear()
        for i in range(5):
            s.track(exp, f"u{i}", value=2)
        wait_for(lambda: s.pending == 0, 15, "the retries to deliver")
        sends = [r for r in proxy.seen if r["path"].endswith("/events")]
        self.assertEqual([r["action"] for r in sends], ["drop", 503, 429, "pass"])
        self.assertTrue(all(r["body"] == sends[0]["body"] for r in sends), "every retry sends the same events and keys")
        self.assertEqual(srv.counts(exp)["sum"], 10, "the lost answer's events count once")
        _, again = srv.api("POST", f"/v1/experiments/{exp}/events", json.loads(sends[0]["body"]))
        self.assertEqual(again["duplicates"], 5)

        with proxy.lock:
            proxy.script = [422]
            proxy.seen.clear()
        s.track(exp, "u1")
        wait_for(lambda: s.pending == 0, 5, "the 422 batch to be dropped")
        time.sleep(0.1)
        self.assertEqual(len(proxy.seen), 1, "a 422 is not retried")
        self.assertTrue(any("events dropped: HTTP 422" in line for line in self.logs.lines), self.logs.lines)

    def test_outage_events_delivered_exactly_once(self) -> None:
        exp = fresh("outage")
        srv.experiment(exp)
        s = self.sdk(timeout=0.5)
        for i in range(10):
            s.assign(exp, f"u{i}")
        srv.stop()
        try:
            t0 = time.monotonic()
            self.assertEqual(s.assign(exp, "new-unit"), Assignment("control", {"color": "grey"}, "fallback"))
            self.assertLess(time.monotonic() - t0, 0.9)
            self.assertEqual(s.assign(exp, "u3").source, "cache")
            for i in range(10):
                s.track(exp, f"u{i}")
            self.assertFalse(s.flush())
            self.assertEqual(s.pending, 10)
        finally:
            srv.start()
        self.assertTrue(s.flush())
        self.assertTrue(s.flush())
        self.assertEqual(srv.counts(exp), {"units": 10, "conversions": 10, "sum": 10})

    def test_progress(self) -> None:
        funnel = fresh("funnel")
        srv.must(201, "POST", "/v1/funnels", {"key": funnel, "start": True, "steps": [
            {"key": "landing", "variants": [{"key": "a", "payload": {"hero": 1}}, {"key": "b", "payload": {"hero": 2}}]},
            {"key": "signup"}]})
        s = self.sdk()
        p = s.progress(funnel, "u1", "landing")
        self.assertEqual(p.source, "server")
        self.assertIn(p.variant, ("a", "b"))
        self.assertEqual(s.progress(funnel, "u1", "landing"), Assignment(p.variant, p.payload, "cache"))
        self.assertEqual(s.progress(funnel, "u1", "signup"), Assignment(None, None, "server"))
        r = srv.must(200, "GET", f"/v1/funnels/{funnel}/results")
        self.assertEqual((r["total_units"], r["conversions"]), (1, 1))

        proxy = Proxy(srv.url)
        self.addCleanup(proxy.close)
        proxy.script = [503]
        q = self.sdk(proxy.url, defaults={f"{funnel}/landing": "a"})
        self.assertEqual(q.progress(funnel, "u2", "landing"), Assignment("a", None, "fallback"))
        self.assertEqual(q.pending, 1)
        self.assertTrue(q.flush())
        step = srv.must(200, "POST", f"/v1/funnels/{funnel}/progress", {"unit_id": "u2", "step": "landing"})
        self.assertFalse(step["new"], "the queued step was reported")

    def test_campaign_event(self) -> None:
        campaign = fresh("camp")
        srv.must(201, "POST", "/v1/campaigns", {
            "key": campaign, "channel": "email", "objective": "open", "audience_size": 100, "start": True,
            "variants": [{"key": "s1"}, {"key": "s2"}]})
        srv.must(200, "POST", f"/v1/campaigns/{campaign}/sends", {"recipients": ["r1", "r2"]})
        s = self.sdk()
        s.campaign_event(campaign, "r1", "open")
        s.campaign_event(campaign, "r2", "conversion", value=30, idempotency_key="order-r2")
        s.campaign_event(campaign, "r2", "conversion", value=30, idempotency_key="order-r2")
        self.assertTrue(s.flush())
        r = srv.must(200, "GET", f"/v1/campaigns/{campaign}/results")
        total = {f: sum(v[f] for v in r["variants"]) for f in ("opens", "conversions", "value")}
        self.assertEqual(total, {"opens": 1, "conversions": 1, "value": 30})

    def test_close_sends_and_context_manager(self) -> None:
        exp = fresh("close")
        srv.experiment(exp)
        with Samplit(srv.url, ADMIN, flush_interval=60, logger=self.logger) as s:
            s.assign(exp, "u1")
            s.track(exp, "u1")
        self.assertEqual(s.pending, 0)
        self.assertFalse(s._thread.is_alive())
        s.close()  # twice is fine
        self.assertEqual(srv.counts(exp)["conversions"], 1)

    def test_background_thread_sends_on_its_interval(self) -> None:
        exp = fresh("interval")
        srv.experiment(exp)
        s = self.sdk(flush_interval=0.05)
        s.assign(exp, "u1")
        s.track(exp, "u1")
        wait_for(lambda: s.pending == 0, 5, "the background send")
        self.assertEqual(srv.counts(exp)["conversions"], 1)

    def test_latency(self) -> None:
        exp = fresh("latency")
        srv.experiment(exp)
        s = self.sdk()
        server, cache = [], []
        for i in range(200):
            t0 = time.perf_counter()
            self.assertEqual(s.assign(exp, f"u{i}").source, "server")
            server.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            self.assertEqual(s.assign(exp, f"u{i}").source, "cache")
            cache.append(time.perf_counter() - t0)

        def q(xs: list, p: float) -> float:
            return sorted(xs)[int(p * (len(xs) - 1))] * 1000

        print(f"\nassign from the server: median {q(server, 0.5):.3f} ms, p95 {q(server, 0.95):.3f} ms;"
              f" from the cache: median {q(cache, 0.5):.4f} ms, p95 {q(cache, 0.95):.4f} ms")


if __name__ == "__main__":
    unittest.main()
