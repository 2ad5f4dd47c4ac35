// Where a drill's chat keeps its messages: a temp data dir for the embedded engine, or a fresh
// nats-server for NATS. Shared by the drills that run the chat CLI on either engine.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatProcessOptions } from "../../harness/chat-process.ts";
import type { EngineName } from "../../harness/cli.ts";
import { type NatsServer, startNatsServer } from "../../harness/nats-server.ts";

export interface ChatStorage {
  /** The chat CLI's flags for it (`dataDir` or `nats`). */
  where: Pick<ChatProcessOptions, "dataDir" | "nats">;
  /** The nats-server (NATS only): a drill can pause it, so the chat dies between a send and its ack. */
  nats?: NatsServer;
  /** Stops the nats-server or removes the data dir. Idempotent; also done at process exit. */
  close(): Promise<void>;
}

// A drill interrupted before close() still leaves no data dir behind (nats-server cleans up after itself).
const liveDirs = new Set<string>();
process.once("exit", () => {
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
});

export async function chatStorage(engine: EngineName, dirPrefix: string): Promise<ChatStorage> {
  if (engine === "nats") {
    const nats = await startNatsServer();
    return { where: { nats: nats.url }, nats, close: () => nats.stop().catch(() => {}) };
  }
  const dataDir = mkdtempSync(join(tmpdir(), dirPrefix));
  liveDirs.add(dataDir);
  return {
    where: { dataDir },
    async close() {
      rmSync(dataDir, { recursive: true, force: true });
      liveDirs.delete(dataDir);
    },
  };
}
