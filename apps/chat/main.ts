// `npm start`: the NATS chatroom, on the embedded engine by default or on NATS JetStream.
import { createLogger, openPubSub } from "via-ts";
import { createChat } from "./app.tsx";
import { type ChatOptions, HELP, OptionError, readOptions } from "./options.ts";

let options: ChatOptions | "help";
try {
  options = readOptions(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof OptionError)) throw err;
  process.stderr.write(`${err.message}\n\n${HELP}`);
  process.exit(2);
}
if (options === "help") {
  process.stdout.write(HELP);
  process.exit(0);
}
const { port, host, dataDir, natsUrls, replicas, rooms, sendRate, tls } = options;

const logger = createLogger();
let pubsub: Awaited<ReturnType<typeof openPubSub>>;
try {
  pubsub = await openPubSub(natsUrls.length > 0 ? { natsUrl: natsUrls, logger } : { dataDir, logger });
} catch (err) {
  logger.fatal({ err }, "could not open the pub/sub engine");
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exit(1);
}
const chat = await createChat({
  pubsub,
  logger,
  replicas,
  rooms,
  sendRate,
  app: options.app,
});
let url: string;
try {
  ({ url } = await chat.app.listen(port, host, { handleSignals: false, ...(tls ? { tls } : {}) }));
} catch (err) {
  // A port in use, or a certificate and key that do not parse or do not match.
  logger.fatal({ err }, "could not start the server");
  process.stderr.write(`error: ${(err as Error).message}\n`);
  await chat.close().catch(() => {});
  await pubsub.close().catch(() => {});
  process.exit(1);
}
const where = natsUrls.length > 0 ? `NATS JetStream at ${natsUrls.join(", ")}` : `embedded engine, data in ${dataDir}`;
const metricsOn = chat.app.metrics?.onAppPort ? { metrics: `${url}${chat.app.metrics.path}` } : {};
logger.info({ url, engine: pubsub.kind, ...metricsOn }, `NATS chatroom on ${url} (${where})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 8_000);
    force.unref();
    chat
      .close()
      .then(() => pubsub.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  });
}
