// `npm run fuzz`: thousands of malformed requests against the chat's page, stream, action and static
// endpoints (seeded, replayable), then a health check, a chat round trip and a count of the live tabs
// (refused and forged requests must allocate none). Exits 1 on any finding.
//   npm run fuzz -- --seed 42 --count 10000
//   npm run fuzz -- --seed 42 --case 1234 --case 77     (replay single cases)
import { randomInt } from "node:crypto";
import { defineCommand, runMain } from "../harness/cli.ts";
import { formatReport, runFuzz } from "./fuzz/run.ts";

const ANY = Number.MAX_SAFE_INTEGER;

/**
 * `--case` may be given more than once (and each may list several, comma-separated): one `--case` with
 * all of them, for a parser that keeps one value per flag.
 */
function joinCases(argv: readonly string[]): string[] {
  const cases: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--case" && i + 1 < argv.length) cases.push(argv[++i]!);
    else if (arg.startsWith("--case=")) cases.push(arg.slice("--case=".length));
    else rest.push(arg);
  }
  return cases.length > 0 ? [...rest, "--case", cases.join(",")] : rest;
}

const cli = defineCommand(
  {
    script: "fuzz",
    file: "scripts/fuzz.ts",
    title: "fuzz — malformed requests against the chat's endpoints, then its health, a round trip and its live tabs",
    about: `Sends thousands of malformed requests (seeded, replayable) to the chat's page, stream, action and static
endpoints on the embedded engine; every one must get its expected 4xx (with a reason) or a valid 2xx.
Afterwards the server must be healthy, carry a chat message end to end and hold no tab or session that
a refused or forged request made. Exits 1 on any finding.`,
    flags: {
      seed: {
        type: "optional-int",
        help: "the run's seed (default: a random one, printed for the replay)",
        min: 0,
        max: ANY,
      },
      count: { type: "int", help: "requests (cases 0 to count-1)", default: 10_000, min: 0, max: ANY },
      concurrency: { type: "int", help: "requests in flight at once", default: 32, min: 0, max: ANY },
      timeout: { type: "int", arg: "ms", help: "per-request timeout", default: 5000, min: 0, max: ANY },
      case: {
        type: "string",
        arg: "i,…",
        help: "replay only these cases (comma-separated; --case may be repeated)",
      },
    },
    footer: `Replay a run or single cases of it:
  npm run fuzz -- --seed 42 --count 10000
  npm run fuzz -- --seed 42 --case 1234 --case 77`,
  },
  joinCases(process.argv.slice(2)),
);

/** The --case list as case indexes; undefined without --case. */
function caseList(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const out = raw.split(",").map(Number);
  const bad = raw.split(",").filter((s, i) => !Number.isInteger(out[i]) || out[i]! < 0 || s.trim() === "");
  if (bad.length > 0) {
    process.stderr.write(`--case must list non-negative integers, got ${JSON.stringify(raw)}\n\n${cli.help}`);
    process.exit(2);
  }
  return out;
}

async function main(): Promise<number> {
  const { count, concurrency, timeout } = cli.values;
  const seed = cli.values.seed ?? randomInt(0, 2 ** 31);
  const only = caseList(cli.values.case);
  console.log(
    `fuzz: seed ${seed}, count ${only ? only.length : count}, concurrency ${concurrency} — replay with: npm run fuzz -- --seed ${seed} --count ${count}`,
  );
  const report = await runFuzz({
    seed,
    count,
    concurrency,
    timeoutMs: timeout,
    ...(only ? { only } : {}),
    log: (l) => console.log(l),
  });
  console.log(formatReport(report));
  const pass = report.findings.length === 0;
  cli.writeJson({ pass, ...report });
  return pass ? 0 : 1;
}

runMain(main);
