// `via-ts/jsx-runtime`: the automatic JSX runtime the compiler imports for pages written in TSX with
// `"jsx": "react-jsx", "jsxImportSource": "via-ts"` in tsconfig.json. It is hono's (the framework
// renders JSX with hono/jsx, escaping text and attributes), re-exported so a project's pages use the very
// copy of hono that via-ts renders with, without depending on hono itself.
export * from "hono/jsx/jsx-runtime";
