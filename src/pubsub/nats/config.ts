// Mapping between our StreamConfig (ms, 0 = unlimited) and JetStream's (ns, -1 = unlimited), with the
// same validation the embedded engine applies, and the server-version quirks that concern stream configs.
import {
  DiscardPolicy,
  type StreamConfig as JsStreamConfig,
  type StreamInfo as JsStreamInfo,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { MsgHdrsImpl } from "@nats-io/transport-node";
import type { ResolvedStreamConfig, StreamInfo } from "../types.ts";

const NS_PER_MS = 1_000_000;

/**
 * JetStream's max_msg_size counts headers too, and every publish of ours carries a Nats-Msg-Id header.
 * Our maxMsgSize is about the payload only, so the engine checks the payload itself and gives the server
 * this much headroom for headers. info() subtracts it again so the config round-trips.
 */
export const MSG_SIZE_HEADER_ALLOWANCE = 4096;

const unlimited = (v: number) => (v > 0 ? v : -1);

export function toJsConfig(c: ResolvedStreamConfig): Partial<JsStreamConfig> & { name: string } {
  return {
    name: c.name,
    subjects: c.subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_msgs: unlimited(c.maxMsgs),
    max_msgs_per_subject: unlimited(c.maxMsgsPerSubject),
    max_age: c.maxAge * NS_PER_MS,
    max_bytes: unlimited(c.maxBytes),
    max_msg_size: c.maxMsgSize > 0 ? c.maxMsgSize + MSG_SIZE_HEADER_ALLOWANCE : -1,
    discard: c.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
    // Without this, discard "new" only applies to the stream-wide limits; ours applies to maxMsgsPerSubject too.
    discard_new_per_subject: c.discard === "new" && c.maxMsgsPerSubject > 0,
    duplicate_window: c.duplicateWindow * NS_PER_MS,
    num_replicas: c.replicas,
    // Direct get can be answered by any replica (also during a leader election).
    allow_direct: true,
  };
}

const limitOf = (v: number | undefined) => (v === undefined || v < 0 ? 0 : v);

export function fromJsConfig(c: JsStreamConfig): ResolvedStreamConfig {
  const mms = limitOf(c.max_msg_size);
  return {
    name: c.name,
    subjects: [...(c.subjects ?? [])],
    maxMsgs: limitOf(c.max_msgs),
    maxMsgsPerSubject: limitOf(c.max_msgs_per_subject),
    maxAge: Math.round(limitOf(c.max_age) / NS_PER_MS),
    maxBytes: limitOf(c.max_bytes),
    maxMsgSize: mms > MSG_SIZE_HEADER_ALLOWANCE ? mms - MSG_SIZE_HEADER_ALLOWANCE : mms,
    discard: c.discard === DiscardPolicy.New ? "new" : "old",
    duplicateWindow: Math.round(limitOf(c.duplicate_window) / NS_PER_MS),
    replicas: c.num_replicas || 1,
  };
}

export function fromJsInfo(si: JsStreamInfo): StreamInfo {
  const st = si.state;
  return {
    name: si.config.name,
    config: fromJsConfig(si.config),
    firstSeq: st.messages === 0 ? st.last_seq + 1 : st.first_seq,
    lastSeq: st.last_seq,
    messages: st.messages,
    bytes: st.bytes,
    subjects: { ...(st.subjects ?? {}) },
    // The creation timestamp changes when the stream is deleted and recreated.
    epoch: si.created,
  };
}

/**
 * Size the 2.9 file store accounts for one message (filestore.go fileStoreMsgSize: 22 bytes of record
 * header + 8 of hash, plus 4 for the header length when there are headers). Used to enforce
 * discard "new" + maxBytes on servers that get it wrong.
 */
export function fileStoreMsgSize(subject: string, hdrs: MsgHdrsImpl | undefined, payloadLen: number): number {
  const hdrLen = hdrs && hdrs.size() > 0 ? hdrs.encode().length + 4 : 0;
  return 30 + Buffer.byteLength(subject) + hdrLen + payloadLen;
}

/**
 * Servers before 2.10.5 (nats-server#4771, fixed by #4772) check discard "new" + max_bytes against the
 * payload only, then evict the oldest messages to make room: an acked publish silently costs older data.
 */
export function serverHasDiscardNewBytesBug(version: string | undefined): boolean {
  if (!version) return true;
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return true;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj !== 2) return maj < 2;
  if (min !== 10) return min < 10;
  return patch < 5;
}
