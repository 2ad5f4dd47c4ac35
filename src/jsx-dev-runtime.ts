// `via-ts/jsx-dev-runtime`: what the compiler imports instead of `via-ts/jsx-runtime` with
// `"jsx": "react-jsxdev"` (and what some tools use in development). See jsx-runtime.ts.
export * from "hono/jsx/jsx-dev-runtime";
