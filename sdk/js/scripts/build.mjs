// Builds dist/: type declarations (tsc, which also type-checks), the ESM
// and CJS modules (esbuild), and a minified ESM file whose gzipped size is
// the number README.md reports. `--size` prints only that.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, [join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { stdio: "inherit" });
const common = { entryPoints: ["src/index.ts"], bundle: true, target: "es2019", logLevel: "warning" };
await build({ ...common, format: "esm", outfile: "dist/index.js" });
await build({ ...common, format: "cjs", outfile: "dist/index.cjs", footer: { js: "module.exports = Object.assign(module.exports.default, module.exports);" } });
await build({ ...common, format: "esm", minify: true, outfile: "dist/index.min.js" });
const min = readFileSync("dist/index.min.js");
console.log(`@samplit/js: ${min.length} bytes minified, ${gzipSync(min, { level: 9 }).length} bytes minified+gzipped`);
