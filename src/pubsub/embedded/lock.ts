// Exclusive ownership of a data directory. The embedded engine keeps counters and the subject router in
// memory, so two engines on one directory would hand out the same seqs even though SQLite itself would
// not corrupt. A lock file holding the owner's PID, created with O_EXCL, refuses the second one; a lock
// left by a process that died (kill -9, OOM, power loss) is detected by its dead PID and taken over.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DataDirLockedError } from "../errors.ts";

export const LOCK_FILE = "via.lock";

/** Lock files this process holds, so a lock carrying our own PID can tell "open twice here" from "left by a
 * previous process that had the same PID" (common in containers, where the app is often PID 1). */
const held = new Set<string>();

export interface DataDirLock {
  readonly path: string;
  /** Deletes the lock file if it is still ours. Idempotent. */
  release(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user; only ESRCH means gone.
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
  // A killed process whose parent has not reaped it yet is a zombie: it answers signal 0 but will never
  // release anything. Linux only; elsewhere we assume alive (the safe side).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
  } catch {
    // no /proc: keep "alive"
  }
  return true;
}

type Holder = { kind: "missing" } | { kind: "pid"; pid: number } | { kind: "garbage"; ageMs: number };

function readHolder(path: string): Holder {
  let text: string;
  let ageMs: number;
  try {
    text = readFileSync(path, "utf8");
    ageMs = Date.now() - statSync(path).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw err;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (Number.isSafeInteger(pid) && pid > 0 && String(pid) === text.trim()) return { kind: "pid", pid };
  return { kind: "garbage", ageMs };
}

/** Creates path exclusively with our PID; false if it already exists. */
function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Is the holder stale (its process is gone)? Garbage content counts once it is old enough that no live
 * process can still be between creating the file and writing its PID. */
function isStale(path: string, h: Holder): boolean {
  if (h.kind === "missing") return true;
  if (h.kind === "garbage") return h.ageMs > 2000;
  if (h.pid === process.pid) return !held.has(path);
  return !isAlive(h.pid);
}

/**
 * Takes the lock on dir (which must exist) or throws DataDirLockedError naming the directory and the
 * holder's PID. A stale lock is replaced under a second, short-lived exclusive file so that two processes
 * starting at once after a crash cannot both "take over" (one would delete the other's fresh lock).
 */
export async function acquireDataDirLock(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE);
  const takeover = `${path}.takeover`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (tryCreate(path)) return ownedLock(path);

    const holder = readHolder(path);
    if (holder.kind === "pid" && !isStale(path, holder)) {
      const msg =
        holder.pid === process.pid
          ? `data dir ${dir} is already open in this process (PID ${holder.pid}, lock file ${path}); open it once and share the engine.`
          : `data dir ${dir} is locked by process ${holder.pid} (lock file ${path}). Only one engine may use a data dir: stop that process, or delete the lock file if it is not running.`;
      throw new DataDirLockedError(msg);
    }
    if (holder.kind === "garbage" && !isStale(path, holder)) {
      await sleep(50); // someone is between creating the file and writing its PID
      continue;
    }

    // Stale: replace it, but only while holding the takeover file.
    if (!tryCreate(takeover)) {
      const t = readHolder(takeover);
      if (isStale(takeover, t)) unlinkQuiet(takeover);
      else await sleep(20);
      continue;
    }
    try {
      const again = readHolder(path);
      const same =
        again.kind === "missing" ||
        (again.kind === holder.kind && (again.kind !== "pid" || (holder.kind === "pid" && again.pid === holder.pid)));
      if (same && isStale(path, again)) {
        unlinkQuiet(path);
        if (tryCreate(path)) return ownedLock(path);
      }
    } finally {
      unlinkQuiet(takeover);
    }
  }
  throw new DataDirLockedError(`data dir ${dir}: could not take the lock file ${path} (contended)`);
}

function ownedLock(path: string): DataDirLock {
  held.add(path);
  // Best effort on a normal exit without close(): the next start would take over the stale lock
  // anyway, but a clean exit should not leave one behind.
  const onExit = () => release();
  process.once("exit", onExit);
  let released = false;
  function release(): void {
    if (released) return;
    released = true;
    process.removeListener("exit", onExit);
    held.delete(path);
    try {
      const h = readHolder(path);
      if (h.kind === "pid" && h.pid === process.pid) unlinkQuiet(path);
    } catch {
      // the directory may be gone already (tests remove temp dirs); nothing to release then
    }
  }
  return { path, release };
}
