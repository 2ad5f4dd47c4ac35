// Page routes with path parameters: "/room/:name" matches "/room/Rust" with { name: "Rust" }.
// Segments are compared after percent-decoding, so a parameter holds the user's text as typed.
import { HttpError } from "./http-error.ts";

export interface RouteMatch<T> {
  value: T;
  params: Record<string, string>;
}

interface Route<T> {
  pattern: string;
  segments: Array<{ literal: string } | { param: string }>;
  value: T;
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

export class RouteTable<T> {
  private readonly routes: Route<T>[] = [];

  add(pattern: string, value: T): void {
    if (!pattern.startsWith("/")) throw new Error(`route ${JSON.stringify(pattern)} must start with "/"`);
    const segments = split(pattern).map((s) => {
      if (!s.startsWith(":")) return { literal: s };
      const name = s.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`route ${pattern}: bad parameter name ${s}`);
      return { param: name };
    });
    if (this.routes.some((r) => r.pattern === pattern)) throw new Error(`route ${pattern} is already registered`);
    this.routes.push({ pattern, segments, value });
  }

  /** Throws HttpError(400) for a path whose percent-encoding is broken. */
  match(pathname: string): RouteMatch<T> | undefined {
    const parts = split(pathname);
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      // Keys come only from the route's own parameter names, so a plain object is safe here.
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = route.segments[i]!;
        const raw = parts[i]!;
        let decoded: string;
        try {
          decoded = decodeURIComponent(raw);
        } catch {
          throw new HttpError(400, "malformed percent-encoding in path");
        }
        if ("literal" in seg) ok = seg.literal === decoded;
        else params[seg.param] = decoded;
      }
      if (ok) return { value: route.value, params };
    }
    return undefined;
  }
}
