// Flag parsing and report headers shared by the bench, drill and demo scripts.
import { cpus } from "node:os";
import { type ParseArgsConfig, parseArgs } from "node:util";

/** An integer flag within [min, max]; a bad value exits with status 2 and says why. */
export function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

export type EngineName = "embedded" | "nats";

/** `--engine embedded | nats | both` as the list of engines to run; a bad value exits with status 2. */
export function engineOption(raw: string | undefined, fallback: "embedded" | "nats" | "both"): EngineName[] {
  const value = raw ?? fallback;
  if (value === "both") return ["embedded", "nats"];
  if (value === "embedded" || value === "nats") return [value];
  process.stderr.write(`--engine must be embedded, nats or both, got ${JSON.stringify(value)}\n`);
  process.exit(2);
}

/** How the script was started, as a person would type it again: `npm run <script> -- …` or `tsx <file> …`. */
export function commandLine(npmScript: string, file: string): string {
  const args = process.argv.slice(2).join(" ");
  if (process.env.npm_lifecycle_event === npmScript) return `npm run ${npmScript}${args ? ` -- ${args}` : ""}`;
  return `tsx ${file}${args ? ` ${args}` : ""}`;
}

/** The lines every drill report starts with: what it is, the command, node and CPU. */
export function header(title: string, npmScript: string, file: string): string[] {
  const cpu = cpus();
  return [
    title,
    `command: ${commandLine(npmScript, file)}`,
    `node ${process.version}; CPU: ${cpu[0]?.model.trim()} × ${cpu.length} cores`,
  ];
}

/** Children and temp dirs are removed by the exit handlers of the harness and the drills; this makes ^C an exit. */
export function exitOnSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));
}

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/**
 * parseArgs with the scripts' conventions: `--help` prints `help` and exits 0; an unknown or malformed
 * flag prints the reason and `help` to stderr and exits 2 (not a stack trace).
 */
export function parseFlags<O extends FlagOptions>(
  help: string,
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"] {
  let parsed: { values: Record<string, unknown> };
  try {
    parsed = parseArgs({ options: { ...options, help: { type: "boolean" } }, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${help}`);
    process.exit(2);
  }
  if (parsed.values.help === true) {
    process.stdout.write(help);
    process.exit(0);
  }
  return parsed.values as ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"];
}
