// Host cases: other generators' cases under foreign names and under spellings of our own, and raw
// requests with Host headers node:http would not send (two, none, empty, odd bytes, absolute-form).
import type { Rng } from "../prng.ts";
import { baseCase } from "./base-case.ts";
import { pickTab } from "./builders.ts";
import { expectForTarget, hostAllowed } from "./expect.ts";
import { raw } from "./raw.ts";
import type { Case, Fixture } from "./types.ts";

/** Host headers to try: names of others (rebinding, look-alikes of ours) and spellings of our own. */
function hostCandidates(fx: Fixture): { foreign: string[]; ours: string[] } {
  const port = fx.port;
  const foreign = [
    "evil.example",
    `evil.example:${port}`,
    "EVIL.EXAMPLE",
    "localhost.evil.example",
    `localhost.evil.example:${port}`,
    "127.0.0.1.nip.io",
    `127.0.0.1.nip.io:${port}`,
    "localhost..",
    "localhostx",
    "xlocalhost",
    `notlocalhost:${port}`,
    "localhost.example",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    `[::ffff:7f00:1]:${port}`,
    `localhost:${port}:80`,
    "localhost@evil.example",
    "evil.example@localhost",
    "localhost evil.example",
    "evil.example/localhost",
    "localhost%2eevil.example",
    "local%68ost",
    "[::1",
    "evil.example:localhost",
    `${"a".repeat(300)}.example`,
  ];
  const ours = [
    "localhost",
    `localhost:${port}`,
    `LOCALHOST:${port}`,
    "LocalHost",
    "localhost.",
    `localhost.:${port}`,
    "localhost:",
    "localhost:1",
    "localhost:99999",
    "127.0.0.1",
    `127.0.0.1:${port}`,
    "127.0.0.1.",
    "[::1]",
    `[::1]:${port}`,
    "[::1].",
    "app.localhost",
    `a.b.localhost:${port}`,
    "evil.example.localhost",
    "EVIL.LOCALHOST.",
    ...fx.hostNames.flatMap((h) => {
      const b = h.includes(":") ? `[${h}]` : h;
      return [b, `${b}:${port}`];
    }),
  ];
  return { foreign, ours };
}

/**
 * Another generator's case sent under another Host. A name the app does not answer to gets 403 "host
 * not allowed" before anything else is looked at (method, path, cookie, tab), except /healthz and
 * /readyz; for stream and action cases often with the matching Origin and Sec-Fetch-Site: same-origin
 * (DNS rebinding: the attacker's page is same-origin with its own name), and an X-Forwarded-Host naming
 * us. A spelling of our own name answers as the case would under 127.0.0.1 (its Origin, if it was ours,
 * follows the Host).
 */
export function hostCase(index: number, rng: Rng, fx: Fixture): Case {
  if (rng.chance(0.15)) return rawHostCase(index, rng, fx);
  const base = baseCase(index, rng, fx);
  const { foreign, ours } = hostCandidates(fx);
  const host = rng.chance(0.6) ? rng.pick(foreign) : rng.pick(ours);
  const headers: Record<string, string> = { ...base.req.headers, Host: host };
  const ourOrigin = `http://127.0.0.1:${fx.port}`;
  const name = `Host ${JSON.stringify(host.length > 40 ? `${host.slice(0, 20)}…<${host.length}>` : host)}: ${base.name}`;
  if (hostAllowed(host, fx)) {
    if (headers.Origin === ourOrigin) headers.Origin = `http://${host}`;
    else if (headers.Origin === `http://${host}`) headers.Origin = "http://evil.example";
    return { ...base, category: "host", name: `${name} (ours)`, req: { ...base.req, headers } };
  }
  const expect = expectForTarget(base.req.method, base.req.path, fx, host);
  // /healthz, /readyz and an unparsable target answer as they would under any Host.
  if (expect.length !== 1 || expect[0] !== 403)
    return { ...base, category: "host", name, req: { ...base.req, headers } };
  if (base.req.path.startsWith("/_via/") && rng.chance(0.6)) {
    headers.Origin = `http://${host}`;
    headers["Sec-Fetch-Site"] = "same-origin";
    if (rng.chance(0.3)) headers["X-Forwarded-Host"] = `127.0.0.1:${fx.port}`;
  }
  const { sse: _sse, setCookie: _setCookie, reason: _reason, ...rest } = base;
  return {
    ...rest,
    category: "host",
    name: `${name} (not ours)`,
    req: { ...base.req, headers },
    expect,
    reason: { status: 403, text: "host not allowed" },
  };
}

/** Host headers node:http would not send: two of them, none, empty, odd bytes, absolute-form targets. */
function rawHostCase(index: number, rng: Rng, fx: Fixture): Case {
  const { session, tab } = pickTab(rng, fx);
  const ours = `127.0.0.1:${fx.port}`;
  const mk = (name: string, bytes: string, expect: number[], more: Partial<Case> = {}): Case => ({
    index,
    category: "host",
    name: `raw ${name}`,
    req: raw([bytes]),
    expect,
    ...more,
  });
  const refused = { reason: { status: 403, text: "host not allowed" } };
  switch (rng.int(10)) {
    case 0:
      return mk(
        "two Hosts, a foreign one first",
        `GET / HTTP/1.1\r\nHost: evil.example\r\nHost: ${ours}\r\n\r\n`,
        [400],
        { nodeParser: true },
      );
    case 1:
      // RFC 9112 §3.2: more than one Host is a 400, whichever is ours.
      return mk("two Hosts, ours first", `GET / HTTP/1.1\r\nHost: ${ours}\r\nHost: evil.example\r\n\r\n`, [400], {
        nodeParser: true,
      });
    case 2:
      return mk("HTTP/1.0 with a foreign Host", "GET / HTTP/1.0\r\nHost: evil.example\r\n\r\n", [403], refused);
    case 3:
      return mk("HTTP/1.0 without Host", "GET /room/Rust HTTP/1.0\r\n\r\n", [200]);
    case 4:
      return mk(
        "absolute-form naming us, foreign Host",
        `GET http://${ours}/room/Go HTTP/1.1\r\nHost: evil.example\r\n\r\n`,
        [403],
        { nodeParser: true, ...refused },
      );
    case 5:
      return mk("Host with a latin1 byte", "GET / HTTP/1.1\r\nHost: local\xe9host\r\n\r\n", [403], {
        nodeParser: true,
        ...refused,
      });
    case 6:
      return mk("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", [403], { nodeParser: true, ...refused });
    case 7:
      return mk("Host padded with tabs and spaces", "GET / HTTP/1.1\r\nHost: \t localhost \t\r\n\r\n", [200], {
        nodeParser: true,
      });
    case 8: {
      const path = rng.pick(["/healthz", "/readyz"]);
      return mk(`${path} under a foreign Host`, `GET ${path} HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n\r\n`, [200]);
    }
    default: {
      const q = new URLSearchParams({ tab: tab.tab, path: tab.path, v: fx.version, probe: "1" });
      return mk(
        "stream probe with real credentials under a foreign Host",
        `GET /_via/sse?${q} HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\nSec-Fetch-Site: same-origin\r\nCookie: ${session.cookie}\r\n\r\n`,
        [403],
        refused,
      );
    }
  }
}
