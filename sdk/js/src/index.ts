/**
 * @samplit/js — the Samplit SDK for browsers and Node ≥ 18.
 *
 * Design rules, in order:
 *  1. Never break the page. Server trouble (slow, down, 5xx, the experiment
 *     not running) is never thrown: `assign` resolves with a fallback and the
 *     SDK logs once. Only programming errors (a missing experiment key, a
 *     non-string unit id) throw, synchronously, as TypeError.
 *  2. Sticky and cheap. An assignment is cached (localStorage in browsers,
 *     memory in Node), keyed by base URL, experiment and unit, so a repeat
 *     costs no request.
 *  3. Events are never counted twice and never silently lost. Each gets an
 *     idempotency key when queued; the queue is persisted (localStorage) and
 *     sent in batches on an interval, when the page is hidden, on `flush()`
 *     and `close()`; network errors, 408, 429 and 5xx are retried with
 *     backoff and the same keys, so a retry of a batch the server already
 *     stored counts as a duplicate, not again.
 */

/** Where an assignment came from. */
export type Source = "server" | "cache" | "fallback";

/**
 * Why the server gave a unit no variant: its attributes do not match the
 * experiment's targeting (nothing was stored), it falls in another
 * experiment's range of the layer, or it is outside the traffic share.
 */
export type Reason = "not_targeted" | "layer" | "traffic";

/** The variant a unit sees. `variant` is null when it sees none; `reason` (from the server or the cache) then says why. */
export interface Assignment<P = unknown> {
  variant: string | null;
  payload: P | null;
  source: Source;
  reason?: Reason;
}

/** A caller's fallback for an experiment: a variant key, or a variant with its payload. */
export type Default = string | null | { variant: string | null; payload?: unknown };

/** The part of the Web Storage API the SDK uses (window.localStorage fits). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  key?(index: number): string | null;
  readonly length?: number;
}

export interface SamplitOptions {
  /** The server, e.g. "https://samplit.example.com". */
  baseUrl: string;
  /** An API key; in a web page an `assign` key whose allowed_origins list the page's origin. */
  key: string;
  /** How long `assign` and `progress` wait for the server before falling back (default 1000 ms). */
  timeoutMs?: number;
  /** Fallbacks by experiment key (and by "funnel/step" for funnel steps). */
  defaults?: Record<string, Default>;
  /** How often queued events are sent (default 1000 ms). */
  flushIntervalMs?: number;
  /** How long a cached assignment is trusted (default 24 h). */
  cacheTtlMs?: number;
  /** Where assignments and the event queue persist: localStorage in browsers by default, none in Node; null for none. */
  storage?: StorageLike | null;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Receives the SDK's log lines (default console.warn). */
  logger?: (message: string) => void;
  /** The most events kept while the server is unreachable; older ones are dropped first (default 10000). */
  maxQueue?: number;
}

/** One queued request: its path, its body, and whether it is sent alone (progress) or batched. */
interface Item {
  p: string;
  b: Record<string, unknown>;
  s?: 1;
}

interface Reply {
  status: number;
  body: any;
  retryAfter: number;
}

const BATCH = 1000;
// Browsers refuse keepalive requests whose bodies in flight exceed 64 KiB.
const KEEPALIVE_BYTES = 60000;
const PREFIX = "samplit:";

// Instances whose queues are sent when Node's event loop empties.
const live = new Set<Samplit>();
let exitHook = false;

const g: any = typeof globalThis !== "undefined" ? globalThis : {};

function need(v: unknown, what: string): void {
  if (typeof v !== "string" || v === "") throw new TypeError(`samplit: ${what} must be a non-empty string`);
}

function randomId(): string {
  const a = new Uint8Array(8);
  if (g.crypto && g.crypto.getRandomValues) g.crypto.getRandomValues(a);
  else for (let i = 0; i < 8; i++) a[i] = Math.floor(Math.random() * 256);
  let s = Date.now().toString(36);
  for (let i = 0; i < 8; i++) s += a[i].toString(16).padStart(2, "0");
  return s;
}

function defaultStorage(): StorageLike | null {
  try {
    const s = g.localStorage as StorageLike | undefined;
    if (!s) return null;
    s.setItem(PREFIX + "t", "1");
    s.removeItem(PREFIX + "t");
    return s;
  } catch {
    return null; // disabled, or Safari private mode
  }
}

/** The Samplit client. One per base URL and key; it is cheap to keep for the page's life. */
export class Samplit {
  private readonly base: string;
  private readonly key: string;
  private readonly timeout: number;
  private readonly defaults: Record<string, Default>;
  private readonly ttl: number;
  private readonly store: StorageLike | null;
  private readonly mem = new Map<string, string>();
  private readonly f: typeof fetch;
  private readonly log: (m: string) => void;
  private readonly maxQueue: number;
  private readonly id = randomId();
  private readonly qKey: string;
  private readonly logged = new Set<string>();
  private readonly inflight = new Map<string, Promise<Assignment<any>>>();
  private q: Item[] = [];
  private seq = 0;
  private failures = 0;
  private retryAt = 0;
  private running?: Promise<void>;
  private timer: any;
  private closed = false;
  private readonly onHide: () => void;

  constructor(options: SamplitOptions) {
    if (!options || typeof options !== "object") throw new TypeError("samplit: options are required");
    need(options.baseUrl, "baseUrl");
    need(options.key, "key");
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.key = options.key;
    this.timeout = options.timeoutMs ?? 1000;
    this.defaults = options.defaults || {};
    this.ttl = options.cacheTtlMs ?? 864e5;
    this.store = options.storage !== undefined ? options.storage : defaultStorage();
    this.f = options.fetch || g.fetch.bind(g);
    this.log = options.logger || ((m) => g.console && g.console.warn("[samplit] " + m));
    this.maxQueue = options.maxQueue ?? 10000;
    this.qKey = PREFIX + "q:" + this.base + ":" + this.id;
    this.adopt();

    this.timer = setInterval(() => {
      if (this.q.length && Date.now() >= this.retryAt) void this.flush();
    }, options.flushIntervalMs ?? 1000);
    // In Node the timer must not keep the process alive; events still
    // queued when the event loop empties are sent then (beforeExit).
    if (this.timer && this.timer.unref) this.timer.unref();
    this.onHide = () => {
      if (!g.document || g.document.visibilityState === "hidden") void this.send(true);
    };
    if (g.addEventListener) g.addEventListener("pagehide", this.onHide);
    if (g.document && g.document.addEventListener) g.document.addEventListener("visibilitychange", this.onHide);
    live.add(this);
    if (!exitHook && g.process && g.process.once) {
      exitHook = true;
      g.process.once("beforeExit", () => live.forEach((s) => s.q.length && s.flush()));
    }
  }

  /**
   * The unit's variant of the experiment: from the cache, else from the
   * server (waiting at most timeoutMs), else the fallback: the caller's
   * default for the experiment, else its control when the SDK has seen it,
   * else `variant: null`. Never rejects on server trouble.
   */
  assign<P = unknown>(experiment: string, unitId: string, options?: { attributes?: Record<string, unknown> }): Promise<Assignment<P>> {
    need(experiment, "experiment");
    need(unitId, "unitId");
    const body: Record<string, unknown> = { unit_id: unitId };
    const attrs = options && options.attributes;
    if (attrs) body.attributes = attrs;
    return this.ask<P>("a:" + experiment + "|" + unitId, this.path("experiments", experiment, "assign"), body, experiment, !attrs);
  }

  /**
   * Records a conversion (binary metric) or a value (continuous metric) of
   * an assigned unit. Queued and sent in a batch; `idempotencyKey` (for
   * example an order id) makes repeats count once, and one is made when not
   * given. `metric` names one of the experiment's secondary or guardrail
   * metrics (default: the primary one); each metric has its own keys.
   */
  track(experiment: string, unitId: string, options?: { value?: number; idempotencyKey?: string; metric?: string }): void {
    need(experiment, "experiment");
    need(unitId, "unitId");
    const b: Record<string, unknown> = { unit_id: unitId };
    if (options && options.metric !== undefined) {
      need(options.metric, "metric");
      b.metric = options.metric;
    }
    this.event(this.path("experiments", experiment, "events"), b, options && options.value, options && options.idempotencyKey);
  }

  /**
   * Says that the unit reached the funnel's step and returns its variant
   * there (from the cache, the server or the fallback, as for assign). When
   * the server cannot be reached the step is queued and reported later:
   * reaching a step is idempotent on the server.
   */
  progress<P = unknown>(funnel: string, unitId: string, step: string): Promise<Assignment<P>> {
    need(funnel, "funnel");
    need(unitId, "unitId");
    need(step, "step");
    return this.ask<P>("f:" + funnel + "|" + step + "|" + unitId, this.path("funnels", funnel, "progress"),
      { unit_id: unitId, step }, funnel + "/" + step, true, true);
  }

  /** Records a campaign event (delivered, open, click, conversion with value, ...) of a recipient. Queued like track. */
  campaignEvent(campaign: string, recipient: string, type: string, options?: { value?: number; idempotencyKey?: string }): void {
    need(campaign, "campaign");
    need(recipient, "recipient");
    need(type, "type");
    this.event(this.path("campaigns", campaign, "events"), { recipient, type }, options && options.value, options && options.idempotencyKey);
  }

  /** Sends every queued event now. Resolves when done or when the server failed (the events stay queued); never rejects. */
  flush(): Promise<void> {
    return this.send(false);
  }

  /** Stops the timers and sends what is queued. Events tracked after close are kept (persisted) but not sent by this instance. */
  close(): Promise<void> {
    this.closed = true;
    live.delete(this);
    clearInterval(this.timer);
    if (g.removeEventListener) g.removeEventListener("pagehide", this.onHide);
    if (g.document && g.document.removeEventListener) g.document.removeEventListener("visibilitychange", this.onHide);
    return this.send(false);
  }

  /** How many events wait to be sent. */
  get pending(): number {
    return this.q.length;
  }

  private path(kind: string, ref: string, action: string): string {
    return "/v1/" + kind + "/" + encodeURIComponent(ref) + "/" + action;
  }

  private event(p: string, b: Record<string, unknown>, value: unknown, idem: unknown): void {
    if (value !== undefined) {
      if (typeof value !== "number" || !isFinite(value)) throw new TypeError("samplit: value must be a finite number");
      b.value = value;
    }
    if (idem !== undefined) need(idem, "idempotencyKey");
    b.idempotency_key = idem || this.id + "." + (this.seq++).toString(36);
    this.push({ p, b });
  }

  private push(item: Item): void {
    this.q.push(item);
    if (this.q.length > this.maxQueue) {
      this.q.splice(0, this.q.length - this.maxQueue);
      this.once("drop", "the event queue is full; the oldest events were dropped");
    }
    this.save();
    if (this.q.length >= BATCH && !this.closed) void this.flush();
  }

  private async ask<P>(ck: string, path: string, body: Record<string, unknown>, fb: string, cacheNull: boolean, queue?: boolean): Promise<Assignment<P>> {
    const hit = this.get(ck);
    if (hit) return hit.r ? { variant: hit.v, payload: hit.p, source: "cache", reason: hit.r } : { variant: hit.v, payload: hit.p, source: "cache" };
    let p = this.inflight.get(ck);
    if (!p) {
      p = this.fetchAssignment<P>(ck, path, body, fb, cacheNull, queue);
      this.inflight.set(ck, p);
      p.then(() => this.inflight.delete(ck));
    }
    return p;
  }

  private async fetchAssignment<P>(ck: string, path: string, body: Record<string, unknown>, fb: string, cacheNull: boolean, queue?: boolean): Promise<Assignment<P>> {
    let why: string;
    try {
      const r = await this.post(path, body, false, this.timeout);
      if (r.status === 200 && r.body && "variant" in r.body) {
        const v = r.body.variant == null ? null : String(r.body.variant);
        const pl = r.body.payload === undefined ? null : r.body.payload;
        const why = v === null && typeof r.body.reason === "string" ? (r.body.reason as Reason) : undefined;
        // A unit sent with attributes is not cached without a variant: its
        // attributes may match the targeting next time.
        if (v !== null || cacheNull) this.set(ck, why ? { v, p: pl, t: Date.now() + this.ttl, r: why } : { v, p: pl, t: Date.now() + this.ttl });
        if (r.body.control) this.set("c:" + fb, { v: r.body.control.variant, p: r.body.control.payload });
        this.failures = 0;
        return why ? { variant: v, payload: pl, source: "server", reason: why } : { variant: v, payload: pl, source: "server" };
      }
      why = "HTTP " + r.status + (r.body && r.body.detail ? ": " + r.body.detail : "");
      if (queue && retryable(r.status)) this.push({ p: path, b: body, s: 1 });
    } catch (e) {
      why = String((e as any) && (e as any).name === "AbortError" ? "timed out after " + this.timeout + " ms" : e);
      if (queue) this.push({ p: path, b: body, s: 1 });
    }
    this.once("a:" + fb, fb + ": falling back (" + why + ")");
    return this.fallback<P>(fb);
  }

  private fallback<P>(name: string): Assignment<P> {
    const d = this.defaults[name];
    if (d !== undefined) {
      return typeof d === "object" && d !== null
        ? { variant: d.variant, payload: (d.payload ?? null) as P, source: "fallback" }
        : { variant: d, payload: null, source: "fallback" };
    }
    const c = this.get("c:" + name);
    return c ? { variant: c.v, payload: c.p, source: "fallback" } : { variant: null, payload: null, source: "fallback" };
  }

  /** Sends the queue, batch by batch, until it is empty or the server fails. */
  private send(keepalive: boolean): Promise<void> {
    if (this.running) return this.running;
    const run = async () => {
      let budget = KEEPALIVE_BYTES;
      // Each round sends one batch and removes it (or stops): bounded by
      // the queue's length when the flush began, plus batches queued
      // meanwhile at most once more.
      for (let rounds = this.q.length * 2 + 2; this.q.length && rounds > 0; rounds--) {
        const first = this.q[0];
        let batch = first.s ? [first] : this.q.filter((it) => !it.s && it.p === first.p).slice(0, BATCH);
        const body = () => (first.s ? first.b : { events: batch.map((it) => it.b) });
        let payload = body();
        if (keepalive) {
          // A page being hidden may be gone before an answer: send what fits
          // the keepalive limit (halving the batch; the rest is persisted
          // and sent later).
          let size = JSON.stringify(payload).length;
          while (size > budget && batch.length > 1) {
            batch = batch.slice(0, batch.length >> 1);
            payload = body();
            size = JSON.stringify(payload).length;
          }
          budget -= size;
          if (budget < 0) break;
        }
        let r: Reply;
        try {
          r = await this.post(first.p, payload, keepalive, 10000);
        } catch (e) {
          this.backoff(0, "network error: " + e);
          return;
        }
        if (retryable(r.status)) {
          this.backoff(r.retryAfter, "HTTP " + r.status);
          return;
        }
        this.failures = 0;
        this.retryAt = 0;
        if (r.status >= 300) this.once("s" + r.status, "events dropped: HTTP " + r.status + (r.body && r.body.detail ? ": " + r.body.detail : ""));
        else if (r.body && r.body.rejected && r.body.rejected.length) this.once("rej", r.body.rejected.length + " events rejected, e.g.: " + r.body.rejected[0].error);
        this.q = this.q.filter((it) => batch.indexOf(it) < 0);
        this.save();
      }
    };
    this.running = run().finally(() => (this.running = undefined));
    return this.running;
  }

  private backoff(retryAfterS: number, why: string): void {
    this.failures++;
    const d = Math.min(30000, 250 * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.retryAt = Date.now() + Math.max(d, retryAfterS * 1000);
    this.once("b", "sending events failed (" + why + "); retrying with backoff");
  }

  private async post(path: string, body: unknown, keepalive: boolean, timeout: number): Promise<Reply> {
    const ac = typeof AbortController !== "undefined" ? new AbortController() : undefined;
    const t = setTimeout(() => ac && ac.abort(), timeout);
    try {
      const res = await this.f(this.base + path, {
        method: "POST",
        headers: { Authorization: "Bearer " + this.key, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        keepalive,
        signal: ac && ac.signal,
      });
      let json: any = null;
      try {
        json = await res.json();
      } catch {
        // no body (or not JSON): the status says enough
      }
      return { status: res.status, body: json, retryAfter: Number(res.headers.get("Retry-After")) || 0 };
    } finally {
      clearTimeout(t);
    }
  }

  private once(k: string, m: string): void {
    if (!this.logged.has(k)) {
      this.logged.add(k);
      this.log(m);
    }
  }

  // The cache: memory first, then storage (which may throw: quota, privacy modes).
  private get(k: string): { v: string | null; p: any; t?: number; r?: Reason } | undefined {
    const key = PREFIX + k + "@" + this.base;
    let raw = this.mem.get(key);
    if (raw === undefined && this.store) {
      try {
        raw = this.store.getItem(key) ?? undefined;
      } catch {
        // unreadable storage: memory only
      }
    }
    if (raw === undefined) return undefined;
    try {
      const e = JSON.parse(raw);
      if (e.t && e.t < Date.now()) {
        this.mem.delete(key);
        this.write(key, null);
        return undefined;
      }
      this.mem.set(key, raw);
      return e;
    } catch {
      return undefined;
    }
  }

  private set(k: string, e: object): void {
    const key = PREFIX + k + "@" + this.base;
    const raw = JSON.stringify(e);
    this.mem.set(key, raw);
    this.write(key, raw);
  }

  private write(key: string, raw: string | null): void {
    if (!this.store) return;
    try {
      if (raw === null) this.store.removeItem(key);
      else this.store.setItem(key, raw);
    } catch {
      this.once("st", "storage is full or unavailable; keeping data in memory");
    }
  }

  private save(): void {
    this.write(this.qKey, this.q.length ? JSON.stringify(this.q) : null);
  }

  /** Takes over the queues that earlier pages (or instances) of this base URL left unsent. */
  private adopt(): void {
    const s = this.store;
    if (!s || !s.key || s.length === undefined) return;
    const mine = PREFIX + "q:" + this.base + ":";
    const found: string[] = [];
    try {
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i);
        if (k && k.indexOf(mine) === 0) found.push(k);
      }
      for (const k of found) {
        const items = JSON.parse(s.getItem(k) || "[]");
        if (Array.isArray(items)) this.q.push(...items);
        s.removeItem(k);
      }
    } catch {
      // a corrupt queue is dropped rather than breaking the page
    }
    if (this.q.length) this.save();
  }
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export default Samplit;
