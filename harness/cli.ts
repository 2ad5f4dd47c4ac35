// The command line of every drill, benchmark and tool script: each flag is declared once (type,
// default, range, help) and the help text, the parser and the typed values all come from that one
// declaration, so they cannot disagree. Every command also takes --json <file> (its results as JSON,
// which tests and docs read instead of scraping the printed tables) and --help.

import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";

export interface IntFlag {
  type: "int";
  help: string;
  default: number;
  /** The default under --quick, where the command has one. */
  quick?: number;
  min: number;
  max: number;
  /** The value's name in the help (default "n"). */
  arg?: string;
}
export interface StringFlag {
  type: "string";
  help: string;
  default?: string;
  arg?: string;
}
export interface ChoiceFlag<C extends string = string> {
  type: "choice";
  help: string;
  choices: readonly C[];
  default: C;
  arg?: string;
}
export interface BooleanFlag {
  type: "boolean";
  help: string;
}
/** Several of `choices`, comma-separated (`--systems raw,nats`); the value keeps the order given. */
export interface ListFlag<C extends string = string> {
  type: "list";
  help: string;
  choices: readonly C[];
  /** The value when the flag is not given. */
  default: readonly C[];
  /** Also takes `all`: every choice, in the declared order. */
  all?: boolean;
  arg?: string;
}
/** An integer flag without a fixed default: undefined when not given (the help says what applies then). */
export interface OptionalIntFlag {
  type: "optional-int";
  help: string;
  min: number;
  max: number;
  arg?: string;
}
export type Flag = IntFlag | StringFlag | ChoiceFlag | BooleanFlag | ListFlag | OptionalIntFlag;

type ValueOf<F> = F extends ListFlag<infer C> ? C[] : F extends OptionalIntFlag ? number | undefined : ValueOfSingle<F>;

type ValueOfSingle<F> = F extends IntFlag
  ? number
  : F extends BooleanFlag
    ? boolean
    : F extends ChoiceFlag<infer C>
      ? C
      : F extends { type: "string"; default: string }
        ? string
        : string | undefined;

export type Values<F extends Record<string, Flag>> = { -readonly [K in keyof F]: ValueOf<F[K]> };

export interface CommandSpec<F extends Record<string, Flag>> {
  /** The npm script that runs it (`npm run <script> -- …`). */
  script: string;
  /** The file, from the repository root, for the report's command line when it runs without npm. */
  file: string;
  /** One line: what it is; the first line of the report. */
  title: string;
  /** The paragraphs under "Usage" in the help. */
  about: string;
  flags: F;
  /** Adds --quick, which switches int flags to their `quick` defaults. */
  quick?: string;
  /** Text after the options in the help. */
  footer?: string;
  /** The arguments after the options, as the usage line names them; without it none are taken. */
  positionals?: string;
}

export interface Command<F extends Record<string, Flag>> {
  values: Values<F>;
  quick: boolean;
  help: string;
  /** The lines a report starts with: the title, the command as typed, node and CPU. */
  header(): string[];
  /** The --json file, if one was given. */
  jsonFile: string | undefined;
  /** The arguments after the options (only for a command that declares `positionals`). */
  positionals: string[];
  /** Writes `results` (with the command and the machine) to the --json file, if one was given. */
  writeJson(results: unknown): void;
}

const HELP_WIDTH = 104;
const COLUMN = 22;

function flagLabel(name: string, flag: Flag): string {
  if (flag.type === "boolean") return `--${name}`;
  const arg =
    flag.arg ?? (flag.type === "int" || flag.type === "optional-int" ? "n" : flag.type === "string" ? "s" : "x");
  return `--${name} <${arg}>`;
}

function flagHelp(flag: Flag): string {
  if (flag.type === "int") {
    const quick = flag.quick === undefined || flag.quick === flag.default ? "" : `; --quick ${flag.quick}`;
    return `${flag.help} (default ${flag.default}${quick})`;
  }
  if (flag.type === "choice") return `${flag.choices.join(" | ")}: ${flag.help} (default ${flag.default})`;
  if (flag.type === "string" && flag.default !== undefined) return `${flag.help} (default ${flag.default})`;
  if (flag.type === "list") {
    return `comma-separated, of ${flag.choices.join(",")}${flag.all ? ", or all" : ""}: ${flag.help} (default ${flag.all && flag.default.length === flag.choices.length ? "all" : flag.default.join(",")})`;
  }
  return flag.help;
}

/** Words of `text` in lines of at most `width` characters, each line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${indent}`);
}

export function helpText<F extends Record<string, Flag>>(spec: CommandSpec<F>): string {
  const rows: Array<[string, string]> = Object.entries(spec.flags).map(([n, f]) => [flagLabel(n, f), flagHelp(f)]);
  if (spec.quick) rows.push(["--quick", spec.quick]);
  rows.push(["--json <file>", "also write the results as JSON to <file>"]);
  rows.push(["--help", "show this help"]);
  const pad = " ".repeat(COLUMN);
  const options = rows.map(([label, text]) => {
    const head = `  ${label}`;
    const body = wrap(text, HELP_WIDTH - COLUMN, pad);
    return head.length < COLUMN ? `${head.padEnd(COLUMN)}${body}` : `${head}\n${pad}${body}`;
  });
  return [
    `Usage: npm run ${spec.script} -- [options]${spec.positionals ? ` ${spec.positionals}` : ""}`,
    "",
    spec.about.trim(),
    "",
    "Options:",
    ...options,
    ...(spec.footer ? ["", spec.footer.trim()] : []),
    "",
  ].join("\n");
}

function usageError(message: string, help: string): never {
  process.stderr.write(`${message}\n\n${help}`);
  process.exit(2);
}

/**
 * Parses the command line by the declaration: `--help` prints the help and exits 0; an unknown
 * flag, a malformed value or one out of range prints the reason and the help and exits 2.
 */
export function defineCommand<const F extends Record<string, Flag>>(
  spec: CommandSpec<F>,
  argv: string[] = process.argv.slice(2),
): Command<F> {
  const help = helpText(spec);
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
    json: { type: "string" },
  };
  if (spec.quick) options.quick = { type: "boolean" };
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = { type: flag.type === "boolean" ? "boolean" : "string" };
  }
  let raw: Record<string, string | boolean | undefined>;
  let positionals: string[] = [];
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals !== undefined });
    raw = parsed.values;
    positionals = parsed.positionals;
  } catch (err) {
    usageError((err as Error).message, help);
  }
  if (raw.help === true) {
    process.stdout.write(help);
    process.exit(0);
  }
  const quick = raw.quick === true;
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    const given = raw[name];
    if (flag.type === "boolean") values[name] = given === true;
    else if (flag.type === "string") values[name] = (given as string | undefined) ?? flag.default;
    else if (flag.type === "choice") {
      const v = (given as string | undefined) ?? flag.default;
      if (!flag.choices.includes(v)) {
        usageError(`--${name} must be one of ${flag.choices.join(", ")}, got ${JSON.stringify(v)}`, help);
      }
      values[name] = v;
    } else if (flag.type === "list") {
      values[name] = given === undefined ? [...flag.default] : listValue(name, flag, given as string, help);
    } else if (flag.type === "optional-int") {
      values[name] = given === undefined ? undefined : intValue(name, flag, given as string, help);
    } else {
      const fallback = quick && flag.quick !== undefined ? flag.quick : flag.default;
      values[name] = given === undefined ? fallback : intValue(name, flag, given as string, help);
    }
  }
  const jsonFile = raw.json as string | undefined;
  const command = commandLine(spec.script, spec.file, argv);
  return {
    values: values as Values<F>,
    quick,
    help,
    jsonFile,
    positionals,
    header: () => {
      const cpu = cpus();
      return [
        spec.title,
        `command: ${command}`,
        `node ${process.version}; CPU: ${cpu[0]?.model.trim()} × ${cpu.length} cores`,
      ];
    },
    writeJson: (results) => {
      if (!jsonFile) return;
      const machine = { node: process.version, cpu: cpus()[0]?.model.trim(), cores: cpus().length };
      writeFileSync(
        jsonFile,
        `${JSON.stringify({ command, machine, at: new Date().toISOString(), results }, null, 2)}\n`,
      );
    },
  };
}

function intValue(name: string, flag: { min: number; max: number }, given: string, help: string): number {
  const n = Number(given);
  if (!Number.isInteger(n) || n < flag.min || n > flag.max) {
    usageError(`--${name} must be an integer in [${flag.min}, ${flag.max}], got ${JSON.stringify(given)}`, help);
  }
  return n;
}

function listValue(name: string, flag: ListFlag, given: string, help: string): string[] {
  const items = given.split(",").map((s) => s.trim());
  if (flag.all && items.includes("all")) return [...flag.choices];
  for (const item of items) {
    if (!flag.choices.includes(item)) {
      const takes = `${flag.choices.join(", ")}${flag.all ? " (or all)" : ""}`;
      usageError(`--${name} takes a list of ${takes}; got ${JSON.stringify(item)}`, help);
    }
  }
  return items;
}

/** How the script was started, as a person would type it again: `npm run <script> -- …` or `tsx <file> …`. */
export function commandLine(npmScript: string, file: string, argv: string[] = process.argv.slice(2)): string {
  const args = argv.join(" ");
  if (process.env.npm_lifecycle_event === npmScript) return `npm run ${npmScript}${args ? ` -- ${args}` : ""}`;
  return `tsx ${file}${args ? ` ${args}` : ""}`;
}

export type EngineName = "embedded" | "nats";

/** The engines an `--engine embedded | nats | both` choice names. */
export function enginesOf(choice: "embedded" | "nats" | "both"): EngineName[] {
  return choice === "both" ? ["embedded", "nats"] : [choice];
}

/** Runs a command's main: its number is the exit status; a throw prints the error and exits 1. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
