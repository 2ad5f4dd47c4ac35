// Static files under /_via/static/ with content-hashed names, so they can be cached for a year:
// a new version is a new URL.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { basename, extname } from "node:path";
import { HttpError } from "./http-error.ts";

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

export const STATIC_PREFIX = "/_via/static/";

export interface Asset {
  url: string;
  hash: string;
  body: Buffer;
  type: string;
}

export class AssetRegistry {
  private readonly byUrl = new Map<string, Asset>();

  /** Register content under a logical name like "app.css"; returns the hashed URL to put in pages. */
  add(name: string, content: string | Buffer, type?: string): Asset {
    const body = typeof content === "string" ? Buffer.from(content) : content;
    const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
    const ext = extname(name);
    const stem = basename(name, ext).replace(/[^A-Za-z0-9_-]/g, "-");
    const url = `${STATIC_PREFIX}${stem}.${hash}${ext}`;
    const asset: Asset = { url, hash, body, type: type ?? TYPES[ext] ?? "application/octet-stream" };
    this.byUrl.set(url, asset);
    return asset;
  }

  /** Register a file from disk (read once, at registration). */
  addFile(path: string, name = basename(path)): Asset {
    return this.add(name, readFileSync(path));
  }

  get(url: string): Asset | undefined {
    return this.byUrl.get(url);
  }

  /** Answers a GET or HEAD of `path` (a 404 for a URL it does not hold), cached for a year. */
  serve(res: ServerResponse, method: string, path: string): void {
    const asset = this.get(path);
    if (!asset) throw new HttpError(404, "no such static file");
    res.writeHead(200, {
      "Content-Type": asset.type,
      "Content-Length": asset.body.length,
      "Cache-Control": "public, max-age=31536000, immutable",
      ETag: `"${asset.hash}"`,
    });
    res.end(method === "HEAD" ? undefined : asset.body);
  }
}
