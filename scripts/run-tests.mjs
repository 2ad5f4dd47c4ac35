#!/usr/bin/env node
// Runs every test file under test/ with node's built-in runner.
// Why a script: on Node 20 `node --test` neither expands globs nor picks up .ts files,
// so a bare `node --test` would silently run zero tests. We list the files ourselves,
// refuse to run if none are found, and close with a plain "N passed, N failed, N skipped" line.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
// Optional filters: `npm test -- unit http` runs only files whose path contains one of the words.
const filters = args.filter((a) => !a.startsWith("-"));
// Two tiers. The fast one (`npm test`, a few minutes): unit, HTTP, the embedded engine, the chat on it,
// the browser tests. The full one (`npm run test:all`, and CI) adds what needs NATS (a server, a
// cluster), the drills, the quick benchmark and the package install: the files below, and the NATS
// tests inside the other files (harness/nats-server.ts skips them in the fast tier).
const all = args.includes("--all");
const FULL_TIER_ONLY = [
  /^test\/drills\//,
  /^test\/bench\//,
  /^test\/package\//,
  /^test\/pubsub\/.*(nats|crash-drill)/,
  /^test\/chat\/(multi-instance|external-client)\./,
];

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.test\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

const files = walk(join(root, "test"))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .filter((f) => all || filters.length > 0 || !FULL_TIER_ONLY.some((re) => re.test(f)))
  .sort();

if (files.length === 0) {
  console.error("run-tests: no test files matched; refusing to report success on zero tests");
  process.exit(1);
}
// A filter names files on purpose: they run whole, NATS tests included, in either tier.
const tier = all || filters.length > 0 ? "all" : "fast";
console.log(
  `run-tests: ${files.length} test files (${tier === "fast" ? "fast tier; npm run test:all for everything" : "full tier"})`,
);

const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=./scripts/summary-reporter.mjs",
    "--test-reporter-destination=stdout",
    ...files,
  ],
  {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, VIA_LOG_LEVEL: process.env.VIA_LOG_LEVEL ?? "silent", VIA_TEST_TIER: tier },
  },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
