// Builds the samplit binary once (go build), then runs every test file with
// node's test runner; the tests start the binary themselves on 127.0.0.1.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const dir = mkdtempSync(join(tmpdir(), "samplit-sdk-js-"));
let status = 1;
try {
  const bin = join(dir, "samplit");
  if (!process.env.SAMPLIT_BIN) {
    execFileSync("go", ["build", "-o", bin, "./cmd/samplit"], { cwd: repo, stdio: "inherit" });
  }
  const files = readdirSync(here).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join(here, f));
  const r = spawnSync(process.execPath, ["--test", ...files], {
    stdio: "inherit",
    env: { SAMPLIT_BIN: bin, ...process.env },
  });
  status = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
