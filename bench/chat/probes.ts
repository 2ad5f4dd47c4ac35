// What bench:chat reads about the processes under test, the same way for every system: memory, CPU
// time and write system calls from /proc/<pid>, the server's TCP connections from /proc/net, and the
// chat's own Prometheus metrics.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";

/** Resident set size of a process in bytes (VmRSS in /proc/<pid>/status); NaN if unreadable. */
export function readRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used so far, ms (from /proc/<pid>/stat; 100 ticks/s on Linux). */
export function readCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Write-family system calls a process has made so far (syscw in /proc/<pid>/io: write, writev…); NaN if unreadable. */
export function readWriteSyscalls(pid: number): number {
  try {
    const m = /^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU % of one core used by these processes between two readings. */
export class CpuMeter {
  private readonly start: number[];
  private readonly t0 = performance.now();
  constructor(private readonly pids: number[]) {
    this.start = pids.map(readCpuMs);
  }
  /** CPU ms the first process used since the start. */
  firstMs(): number {
    return readCpuMs(this.pids[0]!) - this.start[0]!;
  }
  /** The busiest process's share (a process is single-threaded JS, plus its helper threads). */
  maxPct(): number {
    const ms = performance.now() - this.t0;
    return Math.max(...this.pids.map((pid, i) => ((readCpuMs(pid) - this.start[i]!) / ms) * 100));
  }
}

/**
 * The server's end of each TCP connection on `port`: sockets in ESTABLISHED state whose local port it
 * is, from /proc/net/tcp and tcp6 (the whole network namespace; no other process uses this port).
 */
export function serverConnections(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      // "sl local_address rem_address st …": the state is field 4, 01 = ESTABLISHED.
      const f = line.trim().split(/\s+/);
      if (f[3] === "01" && f[1]?.endsWith(hex)) n++;
    }
  }
  return n;
}

/** The chat's Prometheus metrics (GET /metrics on its port, one connection, closed after): name → value. */
export function scrapeMetrics(port: number): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path: "/metrics", agent: false, headers: { Connection: "close" }, timeout: 10_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => {
          const out = new Map<string, number>();
          if (res.statusCode === 200) {
            for (const m of body.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
          }
          resolve(out);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(new Map()));
    req.end();
  });
}
