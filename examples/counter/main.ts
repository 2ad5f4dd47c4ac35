// `npm run example:counter`: runs the example app.
import { parseArgs } from "node:util";
import { createCounterApp } from "./app.tsx";

const HELP = `Usage: npm run example:counter -- [options]

Runs the via-ts example app (a counter and a live feed shared by every tab).

Options:
  --port <n>   port to listen on (env PORT, default 7331)
  --host <h>   interface to bind (env HOST, default 127.0.0.1)
  --help       show this help
`;

const { values } = parseArgs({
  options: { port: { type: "string" }, host: { type: "string" }, help: { type: "boolean" } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const port = Number(values.port ?? process.env.PORT ?? 7331);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid port ${JSON.stringify(values.port ?? process.env.PORT)}\n`);
  process.exit(2);
}
const app = createCounterApp();
const { url } = await app.listen(port, values.host ?? process.env.HOST ?? "127.0.0.1");
app.logger.info({ url }, `via-ts example listening on ${url}`);
