// `npm run fuzz`: thousands of malformed requests against the chat's page, stream, action and static
// endpoints (seeded, replayable), then a health check, a chat round trip and a count of the live tabs
// (refused and forged requests must allocate none). Exits 1 on any finding.
//   npm run fuzz -- --seed 42 --count 10000
//   npm run fuzz -- --seed 42 --case 1234 --case 77     (replay single cases)
import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { formatReport, runFuzz } from "./fuzz/run.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    count: { type: "string" },
    concurrency: { type: "string" },
    timeout: { type: "string" },
    case: { type: "string", multiple: true },
    help: { type: "boolean" },
  },
});
if (values.help) {
  process.stdout.write(
    "Usage: npm run fuzz -- [--seed N] [--count N (default 10000)] [--concurrency N (32)] [--timeout ms (5000)] [--case I ...]\n",
  );
  process.exit(0);
}
const int = (v: string | undefined, name: string, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`fuzz: --${name} must be a non-negative integer, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};
const seed = int(values.seed, "seed", randomInt(0, 2 ** 31));
const count = int(values.count, "count", 10_000);
const only = values.case?.flatMap((s) => s.split(",")).map((s) => int(s, "case", 0));
const concurrency = int(values.concurrency, "concurrency", 32);
const timeoutMs = int(values.timeout, "timeout", 5000);

console.log(
  `fuzz: seed ${seed}, count ${only ? only.length : count}, concurrency ${concurrency} — replay with: npm run fuzz -- --seed ${seed} --count ${count}`,
);
const report = await runFuzz({
  seed,
  count,
  concurrency,
  timeoutMs,
  ...(only ? { only } : {}),
  log: (l) => console.log(l),
});
console.log(formatReport(report));
process.exit(report.findings.length > 0 ? 1 : 0);
