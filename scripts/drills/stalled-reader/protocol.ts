// What the stalled-reader drill and its server process exchange over the IPC channel.
import type { AppStats } from "../../../src/server/app.ts";

export type ServerRequest = { type: "stats"; id: number };

export type ServerReply =
  | { type: "ready"; url: string; pid: number }
  | {
      type: "stats";
      id: number;
      stats: AppStats;
      rss: number;
      heapUsed: number;
      /** process.cpuUsage(): user + system µs since start. */
      cpuMicros: number;
    };
