// In headless Chromium (Debian's chromium), a page served from
// http://127.0.0.1:A uses the SDK against the server on http://127.0.0.1:B.
// The page reports what it saw to its own origin (POST /report), so the
// test needs no browser-driving library: it starts chromium on the page's
// address and waits for the report.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Server } from "./helpers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const chromium = ["chromium", "chromium-browser"].find((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status === 0);
const skip = chromium ? false : "chromium is not installed (apt-get install chromium)";
if (!chromium && process.env.CI === "true") throw new Error("CI: chromium is not installed; .ci/run should have installed it");

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title></head><body>
<button id="buy">Buy</button>
<script type="module">
import { Samplit } from "/sdk.js";
const q = new URLSearchParams(location.search);
const exp = q.get("exp"), unit = q.get("unit"), mode = q.get("mode");
const report = (o) => fetch("/report", { method: "POST", body: JSON.stringify(o) });
const logs = [];
const samplit = new Samplit({ baseUrl: q.get("server"), key: q.get("key"), timeoutMs: 3000, flushIntervalMs: 60000, logger: (m) => logs.push(m) });
const pendingAtStart = samplit.pending;
const t0 = performance.now();
const a = await samplit.assign(exp, unit);                          // { variant, payload, source }
const serverMs = performance.now() - t0;
document.getElementById("buy").style.background = a.payload ? a.payload.color : "grey";
if (mode === "basic") {
  samplit.track(exp, unit, { idempotencyKey: "order-" + unit });     // the purchase
  await samplit.flush();
  const t1 = performance.now();
  const again = await samplit.assign(exp, unit);
  const cacheMs = performance.now() - t1;
  await report({ a, again, pending: samplit.pending, serverMs, cacheMs,
    cached: Object.keys(localStorage).filter((k) => k.startsWith("samplit:a:")).length });
} else if (mode === "outage") {
  // The server is down: the purchase is queued, persisted, and the page reloads.
  samplit.track(exp, unit, { idempotencyKey: "order-" + unit });
  await samplit.flush();
  await report({ a, pending: samplit.pending });
  location.replace(location.href.replace("mode=outage", "mode=reload"));
} else if (mode === "reload") {
  // The reloaded page took over the queue; the page is hidden, which sends it (fetch keepalive).
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
  document.dispatchEvent(new Event("visibilitychange"));
  for (let i = 0; i < 100 && samplit.pending; i++) await new Promise((r) => setTimeout(r, 50));
  await report({ a, pendingAtStart, pending: samplit.pending, logs });
}
</script></body></html>`;

const srv = new Server();
let site, siteURL;
let onReport = null; // the current visit's handler of POST /report

before(async () => {
  if (skip) return;
  await srv.start();
  const sdk = readFileSync(join(here, "..", "dist", "index.js"));
  site = createServer((req, res) => {
    if (req.url.startsWith("/page.html")) {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(page);
    } else if (req.url === "/sdk.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(sdk);
    } else if (req.url === "/report" && req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", async () => {
        await onReport?.(JSON.parse(body));
        res.end("ok");
      });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((r) => site.listen(0, "127.0.0.1", r));
  siteURL = `http://127.0.0.1:${site.address().port}`;
});

after(async () => {
  if (skip) return;
  site.close();
  await srv.close();
});

/**
 * Opens the page in a fresh headless Chromium and returns its first n
 * reports (fewer after 30 s). hook runs on each report before the page gets
 * its answer.
 */
async function visit(params, n = 1, hook = async () => {}) {
  const profile = mkdtempSync(join(tmpdir(), "samplit-chromium-"));
  const url = `${siteURL}/page.html?` + new URLSearchParams({ server: srv.url, mode: "basic", ...params });
  const reports = [];
  const done = new Promise((resolve) => {
    onReport = async (r) => {
      reports.push(r);
      await hook(r, reports.length);
      if (reports.length === n) resolve();
    };
  });
  const proc = spawn(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--user-data-dir=${profile}`, url], { stdio: "ignore", detached: true });
  let timer;
  try {
    await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 30000)))]);
    return reports;
  } finally {
    clearTimeout(timer);
    onReport = null;
    // chromium runs as a group of processes (browser, renderers, the
    // network service): end the whole group this test started.
    const exited = new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

test("a page on another origin assigns and converts with an assign key that allows its origin", { skip }, async (t) => {
  await srv.experiment("browser");
  const other = await srv.newKey("assign", ["http://127.0.0.1:1"]);
  const write = await srv.newKey("write");
  const allowed = await srv.newKey("assign", [siteURL]);

  // Refused: the key does not list the page's origin, or is a write key.
  for (const [name, key] of [["assign key for another origin", other], ["write key", write]]) {
    const [r] = await visit({ key, exp: "browser", unit: "visitor-" + name.length });
    assert.ok(r, `${name}: the page reported`);
    assert.deepEqual(r.a, { variant: null, payload: null, source: "fallback" }, name);
    assert.equal(r.pending, 1, `${name}: the purchase stays queued, never accepted`);
    assert.deepEqual(await srv.counts("browser"), { units: 0, conversions: 0, sum: 0 }, `${name}: the counts do not move`);
  }

  const [r] = await visit({ key: allowed, exp: "browser", unit: "visitor-1" });
  assert.ok(r, "the page reported");
  assert.equal(r.a.source, "server");
  assert.ok(r.a.variant === "control" || r.a.variant === "green", JSON.stringify(r.a));
  assert.deepEqual(r.again, { ...r.a, source: "cache" }, "the second assign comes from localStorage");
  assert.equal(r.cached, 1);
  assert.equal(r.pending, 0);
  assert.deepEqual(await srv.counts("browser"), { units: 1, conversions: 1, sum: 1 }, "the assignment and the purchase are counted");
  // The first assign includes the CORS preflight; the second reads localStorage.
  t.diagnostic(`in Chromium: first assign (preflight + server) ${r.serverMs.toFixed(1)} ms, from the cache ${r.cacheMs.toFixed(2)} ms`);
});

test("a purchase queued while the server is down survives a reload and is sent when the page is hidden", { skip }, async () => {
  await srv.experiment("reload");
  const key = await srv.newKey("assign", [siteURL]);
  await srv.stop();
  const reports = await visit({ key, exp: "reload", unit: "visitor-2", mode: "outage" }, 2, async (r, i) => {
    if (i === 1) await srv.start(); // the server comes back before the page reloads
  });
  assert.equal(reports.length, 2, "both pages reported: " + JSON.stringify(reports));
  const [down, back] = reports;
  assert.deepEqual(down.a, { variant: null, payload: null, source: "fallback" }, "a new visitor while the server is down");
  assert.equal(down.pending, 1, "the purchase waits in the queue");
  assert.equal(back.pendingAtStart, 1, "the reloaded page found the queue in localStorage");
  assert.equal(back.a.source, "server");
  assert.equal(back.pending, 0, "hiding the page sent it: " + JSON.stringify(back.logs));
  assert.deepEqual(await srv.counts("reload"), { units: 1, conversions: 1, sum: 1 });
});
