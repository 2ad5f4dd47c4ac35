// Public entry point of via-ts: the framework, the pub/sub engines and the small helpers an app
// needs. Apps (the chat included) import from here only.

export { raw } from "hono/html";
export { createLogger, type Logger } from "./log.ts";
export * as pubsub from "./pubsub/index.ts";
export { type OpenPubSubOptions, openPubSub, parseNatsUrls } from "./pubsub/index.ts";
export type {
  Delivery,
  PublishAck,
  PubSub,
  PubSubStatus,
  StreamConfig,
  StreamMessage,
  Unsubscribe,
} from "./pubsub/types.ts";
export { Action, type ActionFn, type TriggerOptions } from "./server/action.ts";
export {
  App,
  type AppOptions,
  type AppStats,
  type ClientLimitOptions,
  createApp,
  type ListenResult,
  type PageInit,
  type RateLimit,
  type ServerLimits,
} from "./server/app.ts";
export { Channel, type ChannelOptions } from "./server/channel.ts";
export { ActionError, type ActionOptions, Context } from "./server/context.ts";
export {
  Feed,
  type FeedOptions,
  FeedStream,
  type GapInfo,
  type ItemMeta,
  type JoinOptions,
  type ResetInfo,
} from "./server/feed.ts";
export { escapeHtml, renderHtml } from "./server/html.ts";
export { HttpError } from "./server/http-error.ts";
export type { TlsOptions } from "./server/listen.ts";
export type { AppMetrics, MetricsOptions } from "./server/metrics.ts";
export { RateLimiter, type RateLimiterOptions, TokenBucket, tooManyRequests } from "./server/rate-limit.ts";
export type { Session } from "./server/session.ts";
export { SessionDataError } from "./server/session-data.ts";
export type { SessionOptions } from "./server/session-store.ts";
export { type Json, Signal, type SignalOptions } from "./server/signal.ts";
export type { PatchMode } from "./server/sse/encoder.ts";
export { type InsertAt, Stream, type StreamOptions } from "./server/stream.ts";
export type { Html } from "./server/types.ts";
