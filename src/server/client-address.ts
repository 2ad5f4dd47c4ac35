// Who is asking, as far as limits are concerned: the address the connection comes from, or, behind
// a proxy the app is told to trust, the address that proxy appended to X-Forwarded-For. Clients can
// write any X-Forwarded-For they like, so it is read only when configured, and then only its last
// entry: the one our own proxy added, not what the client sent before it.
//
// The result is a limit key, not an address to display: an IPv6 client is keyed by its /64, since one
// subscriber usually gets a whole /64 and could otherwise rotate through 2^64 addresses.
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers["x-forwarded-for"];
    const header = Array.isArray(forwarded) ? forwarded.join(",") : forwarded;
    if (header) {
      const last = header.slice(header.lastIndexOf(",") + 1).trim();
      const key = addressKey(last);
      if (key) return key;
    }
  }
  return addressKey(req.socket.remoteAddress ?? "") ?? "unknown";
}

/** The limit key for an address: IPv4 as is, IPv6 by its /64; undefined for anything else. */
export function addressKey(address: string): string | undefined {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const kind = isIP(bare);
  if (kind === 4) return bare;
  if (kind !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1]!;
  return `${ipv6Groups(bare).slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address, lower-case, without leading zeros. */
function ipv6Groups(address: string): string[] {
  // A zone ("%eth0") and an embedded IPv4 tail only ever affect the last groups, which a /64 drops.
  const plain = address.split("%")[0]!;
  const [head = "", tail] = plain.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  // An IPv4 tail ("::1.2.3.4") is two groups.
  const width = (parts: string[]) => parts.reduce((n, p) => n + (p.includes(".") ? 2 : 1), 0);
  const missing = tail === undefined ? 0 : 8 - width(left) - width(right);
  const groups = [...left, ...Array<string>(missing).fill("0"), ...right];
  return groups.map((g) => (g.includes(".") ? g : (Number.parseInt(g, 16) || 0).toString(16)));
}
