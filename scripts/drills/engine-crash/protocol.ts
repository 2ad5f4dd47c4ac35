// What the crash drill's parent and its embedded-engine child exchange over the IPC channel, and the
// stream both sides use.
import type { StreamConfig } from "../../../src/pubsub/types.ts";

/** Default limits: unlimited messages, 2-minute duplicate window (longer than any drill run). */
export const DRILL_STREAM: StreamConfig = { name: "DRILL", subjects: ["drill.>"] };

export interface PublishRequest {
  id: number;
  subject: string;
  data: string;
  msgId: string;
}

export type PublishReply =
  | { id: number; ok: true; seq: number; duplicate: boolean }
  | { id: number; ok: false; error: string };
