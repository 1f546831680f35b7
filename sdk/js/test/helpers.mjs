// Test helpers: a real `samplit serve` on 127.0.0.1 and a proxy that fails
// on purpose. Every wait is bounded.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request } from "node:http";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ADMIN = "sk_sdktestadmin_" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond every 20 ms until it is truthy or timeoutMs passed. */
export async function waitFor(cond, timeoutMs = 10000, what = "condition") {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await cond();
    if (v) return v;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A samplit server with its own SQLite file; stop() and start() keep the port and the data. */
export class Server {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "samplit-sdk-srv-"));
    this.log = "";
  }

  async start() {
    this.port ??= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const bin = process.env.SAMPLIT_BIN;
    if (!bin) throw new Error("SAMPLIT_BIN is not set: run the tests with `npm test`");
    this.proc = spawn(bin, ["serve", "--addr", `127.0.0.1:${this.port}`, "--db", join(this.dir, "s.db"), "--log-level", "warn"], {
      env: { ...process.env, SAMPLIT_BOOTSTRAP_KEY: ADMIN },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.proc.stderr.on("data", (d) => (this.log += d));
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.exited = exited;
    await waitFor(async () => {
      try {
        return (await fetch(this.url + "/healthz")).ok;
      } catch {
        return false;
      }
    }, 20000, "samplit to answer /healthz");
    return this;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    let timer;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer);
    if (this.proc.exitCode === null) {
      this.proc.kill("SIGKILL");
      await this.exited;
    }
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Calls the API with the admin key (or another) and returns {status, body}. */
  async api(method, path, body, key = ADMIN) {
    const res = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async must(status, method, path, body, key) {
    const r = await this.api(method, path, body, key);
    if (r.status !== status) throw new Error(`${method} ${path}: ${r.status}, want ${status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async experiment(key, { metric = "binary", start = true } = {}) {
    return this.must(201, "POST", "/v1/experiments", {
      key, metric, start,
      variants: [{ key: "control", control: true, payload: { color: "grey" } }, { key: "green", payload: { color: "green" } }],
    });
  }

  async results(key) {
    return this.must(200, "GET", `/v1/experiments/${key}/results`);
  }

  /** Sums of the experiment's counts over its variants. */
  async counts(key) {
    const r = await this.results(key);
    let units = 0, conversions = 0, sum = 0;
    for (const v of r.variants) {
      units += v.units;
      conversions += v.conversions;
      sum += v.sum;
    }
    return { units, conversions, sum };
  }

  async newKey(scope, allowed_origins) {
    return (await this.must(201, "POST", "/v1/keys", { scope, allowed_origins })).key;
  }
}

/**
 * A proxy in front of a server that follows a script, one action per
 * request: "pass", "drop" (forward, let the server answer, then cut the
 * connection: the client never learns it succeeded), a status code such as
 * 503 or 429 (answered without forwarding), or {delay: ms}. After the script
 * it passes. It counts the requests it saw by path.
 */
export class Proxy {
  constructor(target) {
    this.target = new URL(target);
    this.script = [];
    this.seen = [];
  }

  async start() {
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => this.handle(req, res, Buffer.concat(chunks)));
    });
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  handle(req, res, body) {
    const action = this.script.length ? this.script.shift() : "pass";
    this.seen.push({ path: req.url, action, body: body.toString() });
    if (typeof action === "number") {
      res.writeHead(action, { "Content-Type": "application/problem+json", ...(action === 429 ? { "Retry-After": "1" } : {}) });
      res.end(JSON.stringify({ title: "injected", status: action }));
      return;
    }
    const forward = () => {
      const up = request({ host: this.target.hostname, port: this.target.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
        const out = [];
        ur.on("data", (c) => out.push(c));
        ur.on("end", () => {
          if (action === "drop") {
            req.socket.destroy();
            return;
          }
          res.writeHead(ur.statusCode, ur.headers);
          res.end(Buffer.concat(out));
        });
      });
      up.on("error", () => req.socket.destroy());
      up.end(body);
    };
    if (action && action.delay) setTimeout(forward, action.delay);
    else forward();
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(r));
  }
}

/** A Web Storage stand-in (what localStorage offers), to test persistence in Node. */
export class MemoryStorage {
  constructor() {
    this.m = new Map();
  }
  get length() {
    return this.m.size;
  }
  key(i) {
    return [...this.m.keys()][i] ?? null;
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}
