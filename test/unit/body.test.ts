import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readBody, requireJsonContentType } from "../../src/server/body.ts";
import { HttpError } from "../../src/server/http-error.ts";

// One real server for the file; each test installs the handler it needs.
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let server: Server;
let port: number;

before(async () => {
  server = createServer((req, res) => handler(req, res));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, "close");
});

function respondWith(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) {
    res.writeHead(err.status, { "content-type": "text/plain", ...err.headers });
    res.end(err.message);
  } else {
    res.writeHead(500);
    res.end(String(err));
  }
}

/** Installs a handler that reads the body with `maxBytes` and reports the outcome. */
function readingHandler(
  maxBytes: number,
  onRequest: (req: IncomingMessage) => void = () => {},
): Promise<Buffer | HttpError> {
  return new Promise((settle) => {
    handler = (req, res) => {
      onRequest(req);
      readBody(req, { maxBytes }).then(
        (buf) => {
          settle(buf);
          res.end(`got ${buf.length}`);
        },
        (err: HttpError) => {
          settle(err);
          respondWith(res, err);
        },
      );
    };
  });
}

interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

function send(body: Buffer | string | undefined, headers: Record<string, string | number> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", headers }, async (res) => {
      let text = "";
      res.setEncoding("utf8");
      for await (const chunk of res) text += chunk;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("body reader returns the whole body", async () => {
  const outcome = readingHandler(1024);
  const reply = await send("héllo wörld");
  assert.equal(reply.status, 200);
  const buf = await outcome;
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf.toString("utf8"), "héllo wörld");
});

test("body reader accepts a chunked body of exactly the cap", async () => {
  const outcome = readingHandler(100);
  const done = new Promise<Reply>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/" }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" }));
    });
    req.on("error", reject);
    req.write(Buffer.alloc(60, 1));
    req.end(Buffer.alloc(40, 2));
  });
  assert.equal((await done).status, 200);
  const buf = await outcome;
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf.length, 100);
});

test("body reader returns an empty buffer for an empty body", async () => {
  const outcome = readingHandler(10);
  await send(undefined);
  const buf = await outcome;
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf.length, 0);
});

test("a declared Content-Length over the cap is refused with 413 before the body is sent", async () => {
  const outcome = readingHandler(1000);
  const reply = await new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/", headers: { "content-length": 10_000_000 } },
      (res) => {
        res.setEncoding("utf8");
        let text = "";
        res.on("data", (c) => {
          text += c;
        });
        // 'close', not 'end': the server drops the connection right after answering, and the
        // response must be reported even if that races with the end of its body.
        res.on("close", () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
          req.destroy();
        });
      },
    );
    req.on("error", () => {}); // the server closes the connection with our body unsent
    req.on("close", () => reject(new Error("closed without a response")));
    // Send headers and a token of the body, never the rest: the answer must not wait for it.
    req.write("x");
  });
  assert.equal(reply.status, 413);
  assert.equal(reply.headers.connection, "close");
  assert.match(reply.body, /larger than 1000 bytes/);
  const err = await outcome;
  assert.ok(err instanceof HttpError);
  assert.equal(err.status, 413);
});

test("a streamed body over the cap is refused with 413 and the rest is not read", async () => {
  const maxBytes = 64 * 1024;
  let seen = 0;
  let seenAtRefusal = -1;
  let seenLater = -1;
  handler = (req, res) => {
    req.on("data", (chunk: Buffer) => {
      seen += chunk.length;
    });
    readBody(req, { maxBytes }).then(
      () => res.end("unexpectedly accepted"),
      async (err: unknown) => {
        seenAtRefusal = seen;
        // A negative check (nothing more is read), so a short fixed window: the client keeps sending
        // meanwhile, and nothing tells when a reader that wrongly kept reading would have read more.
        await sleep(150);
        seenLater = seen;
        respondWith(res, err);
      },
    );
  };

  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const reply = await new Promise<Reply>((resolve, reject) => {
    let answered = false;
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/" }, (res) => {
      // Resolve on the status line: the server closes the connection with our body half-sent, and
      // the reset may cut the response body short.
      answered = true;
      res.on("error", () => {});
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: "" });
    });
    req.on("error", (e) => {
      if (!answered) reject(e);
    });
    // Keep sending (chunked, no Content-Length) until the server answers or 8 MiB have gone out.
    let sent = 0;
    const pump = (): void => {
      while (!answered && sent < 8 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
  assert.equal(reply.status, 413);
  assert.ok(seenAtRefusal > maxBytes, "refused only once the cap was actually exceeded");
  assert.ok(seenAtRefusal <= maxBytes + 64 * 1024, `stopped right after the cap (saw ${seenAtRefusal})`);
  assert.equal(seenLater, seenAtRefusal, "nothing more was read while the client kept sending");
});

test("a client aborting mid-body gets a 400, not a hang", async () => {
  // Abort only once the server has read part of the body: a connection reset before it parsed the
  // request would never reach the handler at all.
  let nowReading = (_req: IncomingMessage): void => {};
  const reading = new Promise<void>((resolve) => {
    nowReading = (req) => req.once("data", () => resolve());
  });
  const outcome = readingHandler(1_000_000, nowReading);
  const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", headers: { "content-length": 1000 } });
  req.on("error", () => {});
  req.write(Buffer.alloc(100));
  await reading;
  req.destroy();
  const err = await outcome;
  assert.ok(err instanceof HttpError, `got ${String(err)}`);
  assert.equal(err.status, 400);
});

function withContentType(type: string | undefined): IncomingMessage {
  return { headers: type === undefined ? {} : { "content-type": type } } as IncomingMessage;
}

test("JSON content type is required, with an optional UTF-8 charset", () => {
  for (const ok of [
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
  ]) {
    assert.doesNotThrow(() => requireJsonContentType(withContentType(ok)), ok);
  }
  for (const bad of [
    undefined,
    "",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin1",
    "application/jsonp",
    "application/json-patch+json",
    "application/json; foo=bar",
  ]) {
    assert.throws(
      () => requireJsonContentType(withContentType(bad)),
      (err: unknown) => err instanceof HttpError && err.status === 415 && err.message.length > 0,
      String(bad),
    );
  }
});
