// Starting a node:http server as a promise: resolves once it listens, rejects with the listen error
// (a port in use) instead of leaving it as an unhandled 'error' event.
import type { Server } from "node:http";

export function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
