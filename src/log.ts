// One logger for the whole process. Quiet in tests (the test runner sets VIA_LOG_LEVEL=silent).
// One JSON line per event for log collectors, or, when a person is watching (stdout is a terminal),
// one readable line: time, level, message, then the fields. VIA_LOG_FORMAT=json|pretty chooses.
import { inspect } from "node:util";
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

export type LogFormat = "json" | "pretty";

export function createLogger(
  level: string = process.env.VIA_LOG_LEVEL ?? "info",
  format: LogFormat = defaultFormat(),
): Logger {
  const options = { level, base: undefined };
  return format === "pretty" ? pino(options, prettyDestination(process.stdout)) : pino(options);
}

/** A logger that drops everything: the default for library pieces used without a logger. */
export const silentLogger: Logger = pino({ level: "silent" });

function defaultFormat(): LogFormat {
  const chosen = process.env.VIA_LOG_FORMAT;
  if (chosen === "json" || chosen === "pretty") return chosen;
  return process.stdout.isTTY ? "pretty" : "json";
}

const LEVELS: Record<number, [string, string]> = {
  10: ["TRACE", "\x1b[90m"],
  20: ["DEBUG", "\x1b[36m"],
  30: ["INFO ", "\x1b[32m"],
  40: ["WARN ", "\x1b[33m"],
  50: ["ERROR", "\x1b[31m"],
  60: ["FATAL", "\x1b[41m"],
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

/**
 * Turns pino's JSON lines into "12:34:56.789 INFO  message key=value …", with an error's stack on
 * the lines below. Synchronous, in this thread: pino's transports run a worker, too much for a
 * terminal.
 */
export function prettyDestination(out: NodeJS.WritableStream, color = (out as { isTTY?: boolean }).isTTY === true) {
  const paint = (code: string, text: string) => (color ? `${code}${text}${RESET}` : text);
  return {
    write(line: string): void {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { level, time, msg, err, ...fields } = entry;
      const [name, code] = LEVELS[level as number] ?? [String(level).padEnd(5), ""];
      const at = new Date(typeof time === "number" ? time : Date.now()).toISOString().slice(11, 23);
      const pairs = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
      let text = `${paint(DIM, at)} ${paint(code, name)} ${msg ?? ""}${pairs.length ? ` ${paint(DIM, pairs.join(" "))}` : ""}\n`;
      if (err && typeof err === "object") {
        const e = err as { stack?: string; message?: string };
        text += `${(e.stack ?? e.message ?? inspect(err)).replace(/^/gm, "    ")}\n`;
      }
      out.write(text);
    },
  } satisfies DestinationStream;
}
