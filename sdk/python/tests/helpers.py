"""Test helpers: a real `samplit serve` on 127.0.0.1 (built once with go build)
and a proxy that fails on purpose. Every wait is bounded."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, List, Optional

ADMIN = "sk_sdktestadmin_" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
_bin_dir: Optional[str] = None
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binary() -> str:
    """The samplit binary: $SAMPLIT_BIN, else built once into a temporary directory."""
    global _bin_dir
    if os.environ.get("SAMPLIT_BIN"):
        return os.environ["SAMPLIT_BIN"]
    if _bin_dir is None:
        _bin_dir = tempfile.mkdtemp(prefix="samplit-sdk-py-")
        subprocess.run(["go", "build", "-o", os.path.join(_bin_dir, "samplit"), "./cmd/samplit"], cwd=REPO, check=True)
    return os.path.join(_bin_dir, "samplit")


def cleanup_binary() -> None:
    global _bin_dir
    if _bin_dir:
        shutil.rmtree(_bin_dir, ignore_errors=True)
        _bin_dir = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """A samplit server with its own SQLite file; stop() and start() keep the port and the data."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="samplit-sdk-py-srv-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        env = dict(os.environ, SAMPLIT_BOOTSTRAP_KEY=ADMIN)
        self.proc = subprocess.Popen(
            [binary(), "serve", "--addr", f"127.0.0.1:{self.port}", "--db", os.path.join(self.dir, "s.db"), "--log-level", "warn"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                with _opener.open(self.url + "/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(up, 20, "samplit to answer /healthz")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, method: str, path: str, body: Any = None, key: str = ADMIN) -> "tuple[int, Any]":
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        try:
            with _opener.open(req, timeout=10) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def must(self, status: int, method: str, path: str, body: Any = None, key: str = ADMIN) -> Any:
        got, out = self.api(method, path, body, key)
        if got != status:
            raise AssertionError(f"{method} {path}: {got}, want {status}: {out}")
        return out

    def experiment(self, key: str, metric: str = "binary") -> Any:
        return self.must(201, "POST", "/v1/experiments", {
            "key": key, "metric": metric, "start": True,
            "variants": [{"key": "control", "control": True, "payload": {"color": "grey"}},
                         {"key": "green", "payload": {"color": "green"}}]})

    def counts(self, key: str) -> "dict[str, float]":
        r = self.must(200, "GET", f"/v1/experiments/{key}/results")
        out = {"units": 0, "conversions": 0, "sum": 0.0}
        for v in r["variants"]:
            out["units"] += v["units"]
            out["conversions"] += v["conversions"]
            out["sum"] += v["sum"]
        return out


class Proxy:
    """Follows a script, one action per request: "pass", "drop" (forward, then cut
    the connection before answering), a status code (answered without
    forwarding), or ("delay", seconds). It records what it saw."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.script: List[Any] = []
        self.seen: List[dict] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    action = proxy.script.pop(0) if proxy.script else "pass"
                    proxy.seen.append({"path": self.path, "action": action, "body": body})
                if isinstance(action, int):
                    self.send_response(action)
                    self.send_header("Content-Type", "application/problem+json")
                    if action == 429:
                        self.send_header("Retry-After", "1")
                    out = json.dumps({"title": "injected", "status": action}).encode()
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if isinstance(action, tuple) and action[0] == "delay":
                    time.sleep(action[1])
                host, port = proxy.target.replace("http://", "").split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("POST", self.path, body=body, headers=headers)
                res = conn.getresponse()
                data = res.read()
                conn.close()
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(res.status)
                for k, v in res.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
