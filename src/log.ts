// One logger for the whole process. Quiet in tests (the test runner sets VIA_LOG_LEVEL=silent),
// one JSON line per event otherwise.
import { type Logger, pino } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.VIA_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: undefined });
}

/** A logger that drops everything: the default for library pieces used without a logger. */
export const silentLogger: Logger = pino({ level: "silent" });
