// What a test, drill or benchmark leaves behind when it ends, however it ends: child processes are
// killed and temp dirs removed at process exit, and ^C or a kill becomes an exit so that this runs.
// One exit handler for the whole process, so every tool has the same guarantee and none repeats it.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Something that can be ended at once, synchronously (an exit handler cannot wait). */
export interface Killable {
  killNow(): void;
}

const liveChildren = new Set<ChildProcess | Killable>();
const liveDirs = new Set<string>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.once("exit", () => {
    for (const c of liveChildren) {
      try {
        if ("killNow" in c) c.killNow();
        else if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

/**
 * Kills `child` with SIGKILL if it is still alive when this process exits. A ChildProcess is
 * forgotten on its own exit; the returned function forgets it earlier (e.g. after a clean stop).
 */
export function killAtExit(child: ChildProcess | Killable): () => void {
  install();
  liveChildren.add(child);
  if (!("killNow" in child)) child.once("exit", () => liveChildren.delete(child));
  return () => liveChildren.delete(child);
}

/** A fresh temp dir under the OS temp dir, removed at exit unless `removeDir` removed it first. */
export function tempDir(prefix: string): string {
  install();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

/** Removes a dir made by `tempDir` now. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** Makes SIGINT, SIGTERM and SIGHUP an exit (status 130), so the exit handler cleans up. */
export function exitOnSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));
}

/** A pause in a drill's or benchmark's schedule. Tests poll for conditions instead (`until` in poll.ts). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
