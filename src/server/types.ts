// Types shared by the server modules and the public API.
import type { JSX } from "hono/jsx/jsx-runtime";

/** What views and patches are written in: JSX, rendered to an escaped HTML string. */
export type Html = JSX.Element;
