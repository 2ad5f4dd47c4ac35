// Where a drill's chat keeps its messages: a temp data dir for the embedded engine, or a fresh
// nats-server for NATS; and the chat CLI on it, as the drills that run it on either engine start it.
import { type ChatProcess, type ChatProcessOptions, startChatProcess } from "../../harness/chat-process.ts";
import { removeDir, tempDir } from "../../harness/cleanup.ts";
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

export async function chatStorage(engine: EngineName, dirPrefix: string): Promise<ChatStorage> {
  if (engine === "nats") {
    const nats = await startNatsServer();
    return { where: { nats: nats.url }, nats, close: () => nats.stop().catch(() => {}) };
  }
  const dataDir = tempDir(dirPrefix);
  return {
    where: { dataDir },
    async close() {
      removeDir(dataDir);
    },
  };
}

/** The chat CLI of a drill on its own storage, which it can kill and start again on the same port and data. */
export interface DrillChat {
  storage: ChatStorage;
  /** The chat process running now (restart() replaces it). */
  process: ChatProcess;
  /** Starts the chat again on the same port and storage (after a kill). */
  restart(): Promise<ChatProcess>;
  /** Kills the chat and releases its storage. Never throws. */
  close(): Promise<void>;
}

/**
 * The chat on fresh storage with one room, 10 sends/s per browser session and no per-address limits
 * (every tab of a drill comes from one address).
 */
export async function startDrillChat(engine: EngineName, dirPrefix: string, room: string): Promise<DrillChat> {
  const storage = await chatStorage(engine, dirPrefix);
  const spawnOpts: ChatProcessOptions = { sendRate: 10, rooms: [room], clientLimits: false, ...storage.where };
  let chat: ChatProcess;
  try {
    chat = await startChatProcess(spawnOpts);
  } catch (err) {
    await storage.close();
    throw err;
  }
  spawnOpts.port = chat.port;
  return {
    storage,
    get process() {
      return chat;
    },
    async restart() {
      chat = await startChatProcess(spawnOpts);
      return chat;
    },
    async close() {
      await chat.kill9().catch(() => {});
      await storage.close();
    },
  };
}
