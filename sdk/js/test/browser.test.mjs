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
const samplit = new Samplit({ baseUrl: q.get("server"), key: q.get("key"), timeoutMs: 3000 });
const exp = q.get("exp"), unit = q.get("unit");
const a = await samplit.assign(exp, unit);                          // { variant, payload, source }
document.getElementById("buy").style.background = a.payload ? a.payload.color : "grey";
samplit.track(exp, unit, { idempotencyKey: "order-" + unit });       // the purchase
await samplit.flush();
const again = await samplit.assign(exp, unit);
await fetch("/report", { method: "POST", body: JSON.stringify({ a, again, pending: samplit.pending,
  cached: Object.keys(localStorage).filter((k) => k.startsWith("samplit:a:")).length }) });
</script></body></html>`;

const srv = new Server();
let site, siteURL;
let waiting = null;

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
      req.on("end", () => {
        res.end("ok");
        waiting?.(JSON.parse(body));
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

/** Opens the page in a fresh headless Chromium and returns its report (or null after 30 s). */
async function visit(key, exp, unit) {
  const profile = mkdtempSync(join(tmpdir(), "samplit-chromium-"));
  const url = `${siteURL}/page.html?` + new URLSearchParams({ server: srv.url, key, exp, unit });
  const report = new Promise((resolve) => (waiting = resolve));
  const proc = spawn(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--user-data-dir=${profile}`, url], { stdio: "ignore", detached: true });
  let timer;
  try {
    return await Promise.race([report, new Promise((r) => (timer = setTimeout(r, 30000, null)))]);
  } finally {
    clearTimeout(timer);
    waiting = null;
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

test("a page on another origin assigns and converts with an assign key that allows its origin", { skip }, async () => {
  await srv.experiment("browser");
  const other = await srv.newKey("assign", ["http://127.0.0.1:1"]);
  const write = await srv.newKey("write");
  const allowed = await srv.newKey("assign", [siteURL]);

  // Refused: the key does not list the page's origin, or is a write key.
  for (const [name, key] of [["assign key for another origin", other], ["write key", write]]) {
    const r = await visit(key, "browser", "visitor-" + name.length);
    assert.ok(r, `${name}: the page reported`);
    assert.deepEqual(r.a, { variant: null, payload: null, source: "fallback" }, name);
    assert.equal(r.pending, 1, `${name}: the purchase stays queued, never accepted`);
    assert.deepEqual(await srv.counts("browser"), { units: 0, conversions: 0, sum: 0 }, `${name}: the counts do not move`);
  }

  const r = await visit(allowed, "browser", "visitor-1");
  assert.ok(r, "the page reported");
  assert.equal(r.a.source, "server");
  assert.ok(r.a.variant === "control" || r.a.variant === "green", JSON.stringify(r.a));
  assert.deepEqual(r.again, { ...r.a, source: "cache" }, "the second assign comes from localStorage");
  assert.equal(r.cached, 1);
  assert.equal(r.pending, 0);
  assert.deepEqual(await srv.counts("browser"), { units: 1, conversions: 1, sum: 1 }, "the assignment and the purchase are counted");
});
