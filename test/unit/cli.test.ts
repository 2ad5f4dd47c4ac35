// defineCommand (harness/cli.ts): the help comes from the flag declaration, and a script given a bad
// command line exits 2 with the reason. The exits are a script's real behaviour, so those cases run a
// tiny script in a child process, with the declaration below.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { removeDir, tempDir } from "../../harness/cleanup.ts";
import { type CommandSpec, type Flag, helpText } from "../../harness/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = new URL("../../harness/cli.ts", import.meta.url).href;

const SPEC = {
  script: "demo:flags",
  file: "test/unit/cli.test.ts",
  title: "demo:flags — a declaration to test the parser with",
  about: "Parses its flags and prints them as JSON.",
  quick: "the short version",
  flags: {
    kills: { type: "int", help: "kill count", default: 6, quick: 3, min: 1, max: 30 },
    interval: { type: "int", arg: "ms", help: "pause between sends", default: 200, min: 100, max: 10_000 },
    engine: { type: "choice", choices: ["embedded", "nats", "both"], default: "both", help: "the engines" },
    room: { type: "string", default: "Go", help: "the room" },
    "kill-anytime": { type: "boolean", help: "kill at any moment" },
  },
  footer: "A footer line.",
} satisfies CommandSpec<Record<string, Flag>>;

/** Runs a script that declares SPEC and prints what defineCommand made of `args`. */
function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `
    const { defineCommand } = await import(${JSON.stringify(CLI)});
    const cli = defineCommand(${JSON.stringify(SPEC)}, process.argv.slice(1));
    cli.writeJson({ kills: cli.values.kills });
    process.stdout.write(JSON.stringify({ values: cli.values, quick: cli.quick }));
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, "--", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the help lists every declared flag with its default and quick default, then --quick, --json and --help", () => {
  const help = helpText(SPEC);
  assert.match(help, /^Usage: npm run demo:flags -- \[options\]\n\nParses its flags/);
  assert.match(help, /--kills <n> +kill count \(default 6; --quick 3\)/);
  assert.match(help, /--interval <ms> +pause between sends \(default 200\)/);
  assert.match(help, /--engine <x> +embedded \| nats \| both: the engines \(default both\)/);
  assert.match(help, /--room <s> +the room \(default Go\)/);
  assert.match(help, /--kill-anytime +kill at any moment/);
  assert.match(help, /--quick +the short version/);
  assert.match(help, /--json <file> +also write the results as JSON/);
  assert.match(help, /--help +show this help/);
  assert.match(help, /A footer line\.\n$/);
});

test("--help prints the help generated from the declaration and exits 0", () => {
  const r = run("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, helpText(SPEC));
});

test("values come from the declaration: defaults, --quick defaults, given values, booleans", () => {
  assert.deepEqual(JSON.parse(run().stdout), {
    values: { kills: 6, interval: 200, engine: "both", room: "Go", "kill-anytime": false },
    quick: false,
  });
  assert.deepEqual(JSON.parse(run("--quick").stdout).values.kills, 3);
  const given = run("--kills", "30", "--interval=100", "--engine", "nats", "--room", "Rust", "--kill-anytime");
  assert.equal(given.status, 0, given.stderr);
  assert.deepEqual(JSON.parse(given.stdout).values, {
    kills: 30,
    interval: 100,
    engine: "nats",
    room: "Rust",
    "kill-anytime": true,
  });
});

test("an out-of-range or malformed int exits 2 with the flag, its range and the value given", () => {
  for (const [value, shown] of [
    ["31", '"31"'],
    ["0", '"0"'],
    ["1.5", '"1.5"'],
    ["many", '"many"'],
  ]) {
    const r = run(`--kills=${value}`);
    assert.equal(r.status, 2, `--kills=${value}`);
    assert.equal(r.stdout, "");
    assert.ok(r.stderr.startsWith(`--kills must be an integer in [1, 30], got ${shown}\n`), r.stderr);
    assert.ok(r.stderr.includes(helpText(SPEC)), "the help follows the reason");
  }
});

test("an unknown flag exits 2 and names it", () => {
  const r = run("--kils", "3");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^Unknown option '--kils'/);
  assert.ok(r.stderr.includes("Usage: npm run demo:flags"), r.stderr);
});

test("a value that is not one of the choices exits 2 with the choices", () => {
  const r = run("--engine", "mars");
  assert.equal(r.status, 2);
  assert.ok(r.stderr.startsWith('--engine must be one of embedded, nats, both, got "mars"\n'), r.stderr);
});

test("--json <file> gets the results with the command line and the machine", () => {
  const dir = tempDir("via-cli-test-");
  try {
    const file = join(dir, "out.json");
    const r = run("--quick", "--json", file);
    assert.equal(r.status, 0, r.stderr);
    const written = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(written.results, { kills: 3 });
    assert.equal(written.command, `tsx test/unit/cli.test.ts --quick --json ${file}`);
    assert.equal(typeof written.machine.cores, "number");
  } finally {
    removeDir(dir);
  }
});
