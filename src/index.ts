// Public entry point of via-ts.

export { raw } from "hono/html";
export { createLogger, type Logger } from "./log.ts";
export * as pubsub from "./pubsub/index.ts";
export { type OpenPubSubOptions, openPubSub } from "./pubsub/index.ts";
export type { Delivery, PublishAck, PubSub, StreamConfig, StreamMessage } from "./pubsub/types.ts";
export { Action, type ActionFn, type TriggerOptions } from "./server/action.ts";
export {
  App,
  type AppOptions,
  type AppStats,
  createApp,
  type ListenResult,
  type PageInit,
  type RateLimit,
} from "./server/app.ts";
export { ActionError, Context, type Html } from "./server/context.ts";
export { HttpError } from "./server/http-error.ts";
export type { Session } from "./server/session.ts";
export { type Json, Signal, type SignalOptions } from "./server/signal.ts";
export type { PatchMode } from "./server/sse/encoder.ts";
