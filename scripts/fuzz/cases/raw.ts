// Raw socket cases: what node:http will not send (bad request lines and header bytes, Content-Length
// lies, absolute-form targets), and `raw`, which builds the bytes; host.ts writes its raw cases with it.
import type { Rng } from "../prng.ts";
import type { RawReq } from "../send.ts";
import { pickTab } from "./builders.ts";
import { expectForTarget } from "./expect.ts";
import type { Case, Fixture } from "./types.ts";

export function raw(parts: Array<string | Buffer>, opts: Partial<RawReq> = {}): RawReq {
  return {
    kind: "raw",
    bytes: Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p))),
    ...opts,
  };
}

export function rawCase(index: number, rng: Rng, fx: Fixture): Case {
  const host = `Host: 127.0.0.1:${fx.port}\r\n`;
  const { session, tab } = pickTab(rng, fx);
  const actionHead = (extra = ""): string =>
    `POST /_via/action/${tab.saveNick} HTTP/1.1\r\n${host}Via-Request: 1\r\nVia-Tab: ${tab.tab}\r\nCookie: ${session.cookie}\r\nContent-Type: application/json\r\n${extra}`;
  const validBody = JSON.stringify({ signals: { nick: "Raw" } });
  /** The action with its valid body, `extra` (header text and bytes, each line ended) before its Content-Length. */
  const validAction = (...extra: Array<string | Buffer>): RawReq =>
    raw([actionHead(), ...extra, `Content-Length: ${validBody.length}\r\n\r\n`, validBody]);
  const k = rng.int(36);
  const mk = (name: string, req: RawReq, expect: number[], more: Partial<Case> = {}): Case => ({
    index,
    category: "raw",
    name,
    req,
    expect,
    ...more,
  });
  switch (k) {
    case 0:
      return mk("HTTP/1.1 without Host", raw(["GET / HTTP/1.1\r\n\r\n"]), [], { nodeParser: true });
    case 1:
      return mk("HTTP/1.0 without Host", raw(["GET / HTTP/1.0\r\n\r\n"]), [200]);
    case 2:
      return mk("NUL in path", raw([`GET /room/Go\x00 HTTP/1.1\r\n${host}\r\n`]), [], { nodeParser: true });
    case 3:
      return mk(
        "invalid UTF-8 in path",
        raw([`GET /room/`, Buffer.from([0xff, 0xfe, 0xc3]), ` HTTP/1.1\r\n${host}\r\n`]),
        [404],
        { nodeParser: true },
      );
    case 4:
      return mk(
        "invalid UTF-8 in query",
        raw([`GET /?q=`, Buffer.from([0xff, 0xc0]), ` HTTP/1.1\r\n${host}\r\n`]),
        [200],
        { nodeParser: true },
      );
    case 5:
      return mk("NUL in query", raw([`GET /?q=\x00 HTTP/1.1\r\n${host}\r\n`]), [], { nodeParser: true });
    case 6:
      return mk("header without colon", raw([`GET / HTTP/1.1\r\n${host}BadHeader\r\n\r\n`]), [], { nodeParser: true });
    case 7:
      return mk("space in header name", raw([`GET / HTTP/1.1\r\n${host}Bad Header: x\r\n\r\n`]), [], {
        nodeParser: true,
      });
    case 8:
      return mk("NUL in header value", raw([`GET / HTTP/1.1\r\n${host}X-A: a\x00b\r\n\r\n`]), [], { nodeParser: true });
    case 9:
      return mk(
        "invalid UTF-8 in Cookie",
        raw([`GET / HTTP/1.1\r\n${host}Cookie: via_session=`, Buffer.from([0xff, 0xfe]), "\r\n\r\n"]),
        [200],
        { nodeParser: true },
      );
    case 10:
      return mk("obs-fold header", raw([`GET / HTTP/1.1\r\n${host}X-A: a\r\n b\r\n\r\n`]), [200], { nodeParser: true });
    case 11:
      return mk("bare LF line endings", raw([`GET / HTTP/1.1\n${host.replace("\r\n", "\n")}\n`]), [200], {
        nodeParser: true,
      });
    case 12:
      return mk("HTTP/9.9", raw([`GET / HTTP/9.9\r\n${host}\r\n`]), [200], { nodeParser: true });
    case 13:
      return mk("HTTP/0.9 request line", raw(["GET /\r\n\r\n"], { halfClose: true }), [200], {
        nodeParser: true,
        mayClose: true,
      });
    case 14:
      return mk("random bytes", raw([rng.bytes(64 + rng.int(2048))], { halfClose: true }), [], {
        nodeParser: true,
        mayClose: true,
      });
    case 15: {
      const m = rng.pick(["FOO", "get", "G\x01T", "A".repeat(5000), "HTTP/1.1", "-", "GET\x00"]);
      return mk(`garbage method ${JSON.stringify(m.slice(0, 20))}`, raw([`${m} / HTTP/1.1\r\n${host}\r\n`]), [], {
        nodeParser: true,
      });
    }
    case 16:
      return mk("CONNECT", raw([`CONNECT 127.0.0.1:${fx.port} HTTP/1.1\r\n${host}\r\n`], { halfClose: true }), [405], {
        nodeParser: true,
        mayClose: true,
      });
    case 17:
      return mk(
        "Content-Length and Transfer-Encoding",
        raw([actionHead(`Content-Length: ${validBody.length}\r\nTransfer-Encoding: chunked\r\n\r\n`), validBody]),
        [],
        { nodeParser: true },
      );
    case 18:
      return mk(
        "two different Content-Lengths",
        raw([actionHead(`Content-Length: ${validBody.length}\r\nContent-Length: 3\r\n\r\n`), validBody]),
        [],
        { nodeParser: true },
      );
    case 19: {
      const cl = rng.pick(["-1", "abc", "1e3", " ", "0x10", "99999999999999999999999"]);
      return mk(
        `Content-Length ${JSON.stringify(cl)}`,
        raw([actionHead(`Content-Length: ${cl}\r\n\r\n`), validBody], { halfClose: true }),
        [413, 429],
        { nodeParser: true },
      );
    }
    case 20:
      return mk(
        "bad chunk size",
        raw([actionHead("Transfer-Encoding: chunked\r\n\r\n"), "zz\r\nabc\r\n0\r\n\r\n"], { halfClose: true }),
        [400, 429],
        { nodeParser: true, mayClose: true },
      );
    case 21:
      return mk(
        "Content-Length longer than the body, then EOF",
        raw([actionHead(`Content-Length: ${validBody.length + 100}\r\n\r\n`), validBody], { halfClose: true }),
        [400, 429],
        { nodeParser: true, mayClose: true },
      );
    case 22:
      return mk(
        "Content-Length shorter than the body",
        raw([actionHead(`Content-Length: ${validBody.length - 5}\r\n\r\n`), validBody], { halfClose: true }),
        [400, 429],
        { nodeParser: true },
      );
    case 23:
      return mk("Content-Length 0 on an action", raw([actionHead("Content-Length: 0\r\n\r\n")]), [400, 429]);
    case 24:
      return mk("20 KB header", raw([`GET / HTTP/1.1\r\n${host}X-Big: ${"a".repeat(20 * 1024)}\r\n\r\n`]), [], {
        nodeParser: true,
      });
    case 25:
      return mk("20 KB URL", raw([`GET /room/${"a".repeat(20 * 1024)} HTTP/1.1\r\n${host}\r\n`]), [], {
        nodeParser: true,
      });
    case 26:
      return mk(
        "500 small headers",
        raw([`GET / HTTP/1.1\r\n${host}${Array.from({ length: 500 }, (_, i) => `X-${i}: ${i}\r\n`).join("")}\r\n`]),
        [200],
        { nodeParser: true },
      );
    case 27: {
      const target = rng.pick([
        `http://127.0.0.1:${fx.port}/room/Go`,
        "http://evil.example/room/Rust",
        "http://x/_via/static/../../package.json",
        "*",
        "room/Go",
        "?x",
        "http://[::1/",
      ]);
      return mk(
        `request target ${JSON.stringify(target)}`,
        raw([`GET ${target} HTTP/1.1\r\n${host}\r\n`]),
        expectForTarget("GET", target, fx),
        { nodeParser: true, mustNotContain: ['"name": "via-ts"'] },
      );
    }
    case 28:
      return mk(
        "Via-Tab with invalid UTF-8",
        validAction("Via-Tab: ", Buffer.from([0xff, 0xfe]), "\r\n"),
        [400], // "ÿþ" is no tab id
        { nodeParser: true },
      );
    case 29:
      return mk("Origin with latin1 bytes", validAction("Origin: http://", Buffer.from([0xe9, 0xff]), "\r\n"), [403]);
    case 30:
      return mk("Via-Request with NUL", validAction("Via-Request: 1\x00\r\n"), [], { nodeParser: true });
    case 31:
      return mk("Expect: 100-continue action", validAction("Expect: 100-continue\r\n"), [204, 429]);
    case 32:
      return mk(
        "Upgrade: websocket on the stream",
        raw([
          `GET /_via/sse?tab=${tab.tab}&path=%2F&v=${fx.version} HTTP/1.1\r\n${host}Cookie: ${session.cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        ]),
        [200],
        { nodeParser: true, mayClose: true },
      );
    case 33:
      return mk(
        "pipelined garbage after a valid request",
        raw([`GET /healthz HTTP/1.1\r\n${host}\r\nGARBAGE\x00\r\n\r\n`]),
        [200],
      );
    case 34:
      return mk("leading empty lines", raw([`\r\n\r\nGET / HTTP/1.1\r\n${host}\r\n`]), [200], { nodeParser: true });
    default:
      return mk(
        "HEAD with a body",
        raw([`HEAD / HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhello`], { head: true }),
        [200],
      );
  }
}
