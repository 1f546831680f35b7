// The SDK against a real `samplit serve` (built by test/run.mjs).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createRequire } from "node:module";

import { Samplit } from "../dist/index.js";
import { ADMIN, MemoryStorage, Proxy, Server, freePort, sleep, waitFor } from "./helpers.mjs";

const srv = new Server();
const logs = [];
const logger = (m) => logs.push(m);
let n = 0;
const fresh = (p) => `${p}-${++n}`;

before(async () => {
  await srv.start();
});
after(async () => {
  await srv.close();
});

function sdk(opts = {}) {
  return new Samplit({ baseUrl: srv.url, key: ADMIN, logger, flushIntervalMs: 60000, ...opts });
}

test("assign: from the server, then from the cache, sticky", async () => {
  const exp = fresh("assign");
  await srv.experiment(exp);
  const s = sdk();
  const a = await s.assign(exp, "u1");
  assert.equal(a.source, "server");
  assert.ok(a.variant === "control" || a.variant === "green");
  assert.deepEqual(a.payload, { color: a.variant === "control" ? "grey" : "green" });
  const b = await s.assign(exp, "u1");
  assert.deepEqual(b, { ...a, source: "cache" });
  // Another instance (no shared storage in Node) asks the server, which is sticky.
  const c = await sdk().assign(exp, "u1");
  assert.deepEqual(c, { ...a, source: "server" });
  // Concurrent calls for one unit make one request.
  const [x, y] = await Promise.all([s.assign(exp, "u2"), s.assign(exp, "u2")]);
  assert.deepEqual(x, y);
  assert.equal((await srv.counts(exp)).units, 2);
  await s.close();
});

test("assign: the cache is keyed by base URL, experiment and unit, and expires", async () => {
  const exp = fresh("cachekey");
  await srv.experiment(exp);
  const storage = new MemoryStorage();
  const s = sdk({ storage, cacheTtlMs: 200 });
  await s.assign(exp, "u1");
  assert.equal((await s.assign(exp, "u1")).source, "cache");
  // A reload (a new instance on the same storage) uses the stored entry.
  const reloaded = sdk({ storage });
  assert.equal((await reloaded.assign(exp, "u1")).source, "cache");
  // Another base URL for the same server does not share it.
  const other = new Samplit({ baseUrl: srv.url.replace("127.0.0.1", "127.0.0.1") + "/", key: ADMIN, storage, logger });
  assert.equal((await other.assign(exp, "u1")).source, "cache", "a trailing slash is the same base URL");
  const elsewhere = new Samplit({ baseUrl: `http://localhost:${srv.port}`, key: ADMIN, storage, logger });
  assert.equal((await elsewhere.assign(exp, "u1")).source, "server");
  await sleep(250);
  assert.equal((await s.assign(exp, "u1")).source, "server", "expired entries are asked again");
  for (const x of [s, reloaded, other, elsewhere]) await x.close();
});

test("assign: fallbacks — default, then the control when known, then null", async () => {
  const exp = fresh("fallback");
  await srv.experiment(exp);
  logs.length = 0;
  const s = sdk({ defaults: { "with-default": "green", "with-payload": { variant: "b", payload: { x: 1 } } } });
  assert.deepEqual(await s.assign("nope", "u1"), { variant: null, payload: null, source: "fallback" });
  assert.deepEqual(await s.assign("with-default", "u1"), { variant: "green", payload: null, source: "fallback" });
  assert.deepEqual(await s.assign("with-payload", "u1"), { variant: "b", payload: { x: 1 }, source: "fallback" });
  // The SDK learns the control from an answer; a paused experiment then
  // falls back to it.
  assert.equal((await s.assign(exp, "u1")).source, "server");
  await srv.must(200, "POST", `/v1/experiments/${exp}/pause`);
  assert.deepEqual(await s.assign(exp, "u2"), { variant: "control", payload: { color: "grey" }, source: "fallback" });
  await s.assign(exp, "u3");
  assert.equal(logs.filter((l) => l.startsWith(exp)).length, 1, "logged once per experiment: " + logs.join("\n"));
  assert.match(logs.find((l) => l.startsWith(exp)), /409/);
  await s.close();
});

test("assign: programming errors throw, server trouble never does", async () => {
  const s = sdk();
  assert.throws(() => s.assign("", "u1"), TypeError);
  assert.throws(() => s.assign("e", 42), TypeError);
  assert.throws(() => s.track("e", "u", { value: NaN }), TypeError);
  assert.throws(() => s.track("e", "u", { value: "1" }), TypeError);
  assert.throws(() => s.progress("f", "u"), TypeError);
  assert.throws(() => s.campaignEvent("c", "r"), TypeError);
  assert.throws(() => new Samplit({ baseUrl: "", key: "k" }), TypeError);
  // A revoked key, a malformed one: fallbacks.
  const bad = new Samplit({ baseUrl: srv.url, key: "sk_nonsense", logger });
  assert.equal((await bad.assign("x", "u1")).source, "fallback");
  await bad.close();
  await s.close();
});

test("assign: server stopped or slow → fallback within the timeout", async () => {
  const down = new Samplit({ baseUrl: `http://127.0.0.1:${await freePort()}`, key: ADMIN, logger, timeoutMs: 300, defaults: { e: "control" } });
  let t0 = performance.now();
  assert.deepEqual(await down.assign("e", "u1"), { variant: "control", payload: null, source: "fallback" });
  assert.ok(performance.now() - t0 < 300 + 400, "unreachable: within the timeout (and some slack for a busy machine)");

  const exp = fresh("slow");
  await srv.experiment(exp);
  const proxy = await new Proxy(srv.url).start();
  proxy.script = [{ delay: 1500 }];
  const slow = new Samplit({ baseUrl: proxy.url, key: ADMIN, logger, timeoutMs: 300 });
  t0 = performance.now();
  const a = await slow.assign(exp, "u1");
  const took = performance.now() - t0;
  assert.equal(a.source, "fallback");
  assert.ok(took >= 280 && took < 300 + 400, `slow (the proxy waits 1500 ms): fell back after ${took} ms`);
  await down.close();
  await slow.close();
  await proxy.close();
});

test("track: queued, batched, idempotent; counts checked on the server", async () => {
  const exp = fresh("track");
  await srv.experiment(exp);
  const s = sdk();
  for (let i = 0; i < 30; i++) await s.assign(exp, `u${i}`);
  for (let i = 0; i < 30; i++) s.track(exp, `u${i}`);
  s.track(exp, "u0", { idempotencyKey: "order-1" }); // a unit converts once anyway
  s.track(exp, "never-assigned");
  assert.equal(s.pending, 32);
  await s.flush();
  assert.equal(s.pending, 0);
  assert.deepEqual(await srv.counts(exp), { units: 30, conversions: 30, sum: 30 });
  assert.ok(logs.some((l) => /1 events rejected/.test(l)), "the rejected event is logged");

  // Continuous values add up; an idempotency key counts once however often it is sent.
  const rev = fresh("revenue");
  await srv.experiment(rev, { metric: "continuous" });
  await s.assign(rev, "buyer");
  s.track(rev, "buyer", { value: 12.5, idempotencyKey: "order-9" });
  s.track(rev, "buyer", { value: 12.5, idempotencyKey: "order-9" });
  s.track(rev, "buyer", { value: 2 });
  await s.flush();
  assert.equal((await srv.counts(rev)).sum, 14.5);
  await s.close();
});

test("track: events name their metric; each metric counts on its own", async () => {
  const exp = fresh("metrics");
  await srv.must(201, "POST", "/v1/experiments", {
    key: exp, metric: "binary", start: true,
    variants: [{ key: "control", control: true }, { key: "green" }],
    metrics: [{ key: "revenue", type: "continuous" },
              { key: "refunds", type: "binary", role: "guardrail", direction: "decrease", max_degradation: 0.1 }],
  });
  const s = sdk();
  await s.assign(exp, "buyer");
  s.track(exp, "buyer", { idempotencyKey: "order-1" });
  s.track(exp, "buyer", { metric: "revenue", value: 12.5, idempotencyKey: "order-1" }); // its own keys
  s.track(exp, "buyer", { metric: "revenue", value: 12.5, idempotencyKey: "order-1" });
  s.track(exp, "buyer", { metric: "refunds" });
  assert.throws(() => s.track(exp, "buyer", { metric: "" }), TypeError);
  await s.flush();
  const r = await srv.results(exp);
  const sum = (m) => r.metrics[m].variants.reduce((a, v) => a + v.sum, 0);
  assert.equal(r.variants.reduce((a, v) => a + v.conversions, 0), 1);
  assert.equal(sum("revenue"), 12.5);
  assert.equal(sum("refunds"), 1);
  assert.ok(r.metrics.refunds.variants.every((v) => v.guardrail === "ok"));
  await s.close();
});

test("track: over 1000 events go in several batches of at most 1000", async () => {
  const exp = fresh("big");
  await srv.experiment(exp, { metric: "continuous" });
  const s = sdk();
  const units = Array.from({ length: 1000 }, (_, i) => `u${i}`);
  await srv.must(200, "POST", `/v1/experiments/${exp}/assign`, { unit_ids: units });
  const proxy = await new Proxy(srv.url).start();
  const p = new Samplit({ baseUrl: proxy.url, key: ADMIN, logger, flushIntervalMs: 60000 });
  for (let i = 0; i < 2500; i++) p.track(exp, units[i % 1000], { value: 1 });
  await waitFor(async () => { await p.flush(); return p.pending === 0; }, 20000, "the queue to empty");
  const sizes = proxy.seen.map((r) => JSON.parse(r.body).events.length);
  assert.ok(sizes.every((n) => n <= 1000), `batch sizes ${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b, 0), 2500);
  assert.equal((await srv.counts(exp)).sum, 2500);
  await p.close();
  await s.close();
  await proxy.close();
});

test("retries: network errors, 429 and 5xx are retried with the same idempotency keys; 4xx are not", async () => {
  const exp = fresh("retry");
  // Continuous values without caller keys: only the SDK's own idempotency keys keep a
  // retried batch from adding its values twice (a binary unit converts once anyway).
  await srv.experiment(exp, { metric: "continuous" });
  const proxy = await new Proxy(srv.url).start();
  const s = new Samplit({ baseUrl: proxy.url, key: ADMIN, logger, flushIntervalMs: 20 });
  for (let i = 0; i < 5; i++) await s.assign(exp, `u${i}`);
  // The first send reaches the server but its answer is lost, then a 503, then a 429 (Retry-After: 1).
  proxy.script = ["drop", 503, 429];
  proxy.seen.length = 0;
  for (let i = 0; i < 5; i++) s.track(exp, `u${i}`, { value: 2 });
  await waitFor(() => s.pending === 0, 15000, "the retries to deliver");
  const sends = proxy.seen.filter((r) => r.path.endsWith("/events"));
  assert.deepEqual(sends.map((r) => r.action), ["drop", 503, 429, "pass"]);
  assert.ok(sends.every((r) => r.body === sends[0].body), "every retry sends the same events and keys");
  assert.equal((await srv.counts(exp)).sum, 10, "the lost answer's events are counted once");
  const last = await srv.api("POST", `/v1/experiments/${exp}/events`, JSON.parse(sends[0].body));
  assert.equal(last.body.duplicates, 5, "the server sees the keys as duplicates");

  // A 4xx other than 408/429 is not retried: the batch is dropped and logged.
  proxy.script = [422];
  proxy.seen.length = 0;
  s.track(exp, "u1");
  await waitFor(() => s.pending === 0, 5000, "the 422 batch to be dropped");
  await sleep(100);
  assert.equal(proxy.seen.length, 1);
  assert.ok(logs.some((l) => /events dropped: HTTP 422/.test(l)));
  await s.close();
  await proxy.close();
});

test("server stopped: assign falls back within the timeout; queued events are delivered exactly once when it is back", async () => {
  const exp = fresh("outage");
  await srv.experiment(exp, { metric: "continuous" });
  const storage = new MemoryStorage();
  const s = sdk({ storage, timeoutMs: 500 });
  for (let i = 0; i < 10; i++) await s.assign(exp, `u${i}`);
  await srv.stop();
  const t0 = performance.now();
  const a = await s.assign(exp, "new-unit");
  assert.ok(performance.now() - t0 < 500 + 400, "fallback within the timeout");
  assert.deepEqual(a, { variant: "control", payload: { color: "grey" }, source: "fallback" });
  assert.equal((await s.assign(exp, "u3")).source, "cache", "known units keep their variant");
  for (let i = 0; i < 10; i++) s.track(exp, `u${i}`, { value: 3 });
  await s.flush();
  assert.equal(s.pending, 10, "kept while the server is down");
  // The page reloads while the server is down: the queue survives in storage.
  const reloaded = sdk({ storage });
  assert.equal(reloaded.pending, 10);
  await srv.start();
  await reloaded.flush();
  assert.equal(reloaded.pending, 0);
  // The old instance still holds its copy and sends it too: idempotency keys make it count once.
  await s.flush();
  const c = await srv.counts(exp);
  assert.equal(c.units, 10);
  assert.equal(c.sum, 30, "each value counted once although two instances sent it");
  await s.close();
  await reloaded.close();
});

test("progress: the step's variant, cached; the last step converts", async () => {
  const funnel = fresh("funnel");
  await srv.must(201, "POST", "/v1/funnels", {
    key: funnel, start: true,
    steps: [{ key: "landing", variants: [{ key: "a", payload: { hero: 1 } }, { key: "b", payload: { hero: 2 } }] }, { key: "signup" }],
  });
  const s = sdk({ defaults: { [`${funnel}/landing`]: "a" } });
  const p = await s.progress(funnel, "u1", "landing");
  assert.equal(p.source, "server");
  assert.ok(p.variant === "a" || p.variant === "b");
  assert.deepEqual(await s.progress(funnel, "u1", "landing"), { ...p, source: "cache" });
  const last = await s.progress(funnel, "u1", "signup");
  assert.deepEqual(last, { variant: null, payload: null, source: "server" });
  const r = await srv.must(200, "GET", `/v1/funnels/${funnel}/results`);
  assert.equal(r.total_units, 1);
  assert.equal(r.conversions, 1, "reaching the last step is the conversion");

  // Server unreachable: fallback now, the step reported later.
  const proxy = await new Proxy(srv.url).start();
  proxy.script = [503];
  const q = new Samplit({ baseUrl: proxy.url, key: ADMIN, logger, flushIntervalMs: 60000, defaults: { [`${funnel}/landing`]: "a" } });
  assert.deepEqual(await q.progress(funnel, "u2", "landing"), { variant: "a", payload: null, source: "fallback" });
  assert.equal(q.pending, 1);
  await q.flush();
  assert.equal(q.pending, 0);
  const step = await srv.must(200, "POST", `/v1/funnels/${funnel}/progress`, { unit_id: "u2", step: "landing" });
  assert.equal(step.new, false, "the queued step was reported");
  await s.close();
  await q.close();
  await proxy.close();
});

test("campaignEvent: queued and counted once", async () => {
  const campaign = fresh("camp");
  await srv.must(201, "POST", "/v1/campaigns", {
    key: campaign, channel: "email", objective: "open", audience_size: 100, start: true,
    variants: [{ key: "s1", payload: { subject: "A" } }, { key: "s2", payload: { subject: "B" } }],
  });
  await srv.must(200, "POST", `/v1/campaigns/${campaign}/sends`, { recipients: ["r1", "r2"] });
  const s = sdk();
  s.campaignEvent(campaign, "r1", "open");
  s.campaignEvent(campaign, "r2", "conversion", { value: 30, idempotencyKey: "order-r2" });
  s.campaignEvent(campaign, "r2", "conversion", { value: 30, idempotencyKey: "order-r2" });
  await s.flush();
  assert.equal(s.pending, 0);
  const r = await srv.must(200, "GET", `/v1/campaigns/${campaign}/results`);
  const sum = (f) => r.variants.reduce((a, v) => a + v[f], 0);
  assert.deepEqual({ opens: sum("opens"), conversions: sum("conversions"), value: sum("value") }, { opens: 1, conversions: 1, value: 30 });
  await s.close();
});

test("close: sends what is queued; timers do not keep Node alive", async () => {
  const exp = fresh("close");
  await srv.experiment(exp);
  const s = sdk();
  await s.assign(exp, "u1");
  s.track(exp, "u1");
  await s.close();
  assert.equal(s.pending, 0);
  assert.equal((await srv.counts(exp)).conversions, 1);
});

test("CommonJS: require() gives the same class", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("../dist/index.cjs");
  assert.equal(typeof cjs, "function");
  assert.equal(typeof cjs.Samplit, "function");
  assert.equal(cjs.default, cjs.Samplit);
});

test("latency: assign from the cache and from the server", async (t) => {
  const exp = fresh("latency");
  await srv.experiment(exp);
  const s = sdk();
  const server = [];
  const cache = [];
  for (let i = 0; i < 200; i++) {
    let t0 = performance.now();
    assert.equal((await s.assign(exp, `u${i}`)).source, "server");
    server.push(performance.now() - t0);
    t0 = performance.now();
    assert.equal((await s.assign(exp, `u${i}`)).source, "cache");
    cache.push(performance.now() - t0);
  }
  const q = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];
  const line = (name, xs) => `${name}: median ${q(xs, 0.5).toFixed(3)} ms, p95 ${q(xs, 0.95).toFixed(3)} ms`;
  t.diagnostic(line("assign from the server", server));
  t.diagnostic(line("assign from the cache", cache));
  await s.close();
});

test("assign: attributes reach the targeting; a unit not targeted gets variant null with its reason, uncached", async () => {
  const exp = fresh("targeted");
  const r = await fetch(srv.url + "/v1/experiments", {
    method: "POST",
    headers: { Authorization: "Bearer " + ADMIN, "Content-Type": "application/json" },
    body: JSON.stringify({
      key: exp, metric: "binary", start: true,
      variants: [{ key: "control" }, { key: "green" }],
      targeting: { all: [{ attribute: "country", op: "in", values: ["ES", "MX"] }] },
    }),
  });
  assert.equal(r.status, 201);
  const s = sdk();
  const out = await s.assign(exp, "fr", { attributes: { country: "FR" } });
  assert.deepEqual(out, { variant: null, payload: null, source: "server", reason: "not_targeted" });
  // Not cached: the same unit, now matching, asks the server and gets in.
  const inside = await s.assign(exp, "fr", { attributes: { country: "ES" } });
  assert.equal(inside.source, "server");
  assert.ok(inside.variant === "control" || inside.variant === "green");
  assert.equal(inside.reason, undefined);
  assert.equal((await srv.counts(exp)).units, 1);
  await s.close();
});
