// The Emporium API from TypeScript: `paths` and `components` are generated from the OpenAPI
// document by openapi-typescript (`./schema`, written by sdk/build.sh), and openapi-fetch is
// the thin fetch client typed by them. Every path, parameter, body and answer is checked by
// the compiler.
import createFetchClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
/** The named schemas: `Schemas["OrderResponse"]`, `Schemas["Country"]`, … */
export type Schemas = components["schemas"];
export type EmporiumClient = Client<paths>;

/** The package's version: the server's, and the commit its OpenAPI document came from. */
export const version = "__VERSION__";

export interface ClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An access token (or a function that returns the current one), sent as a bearer token. */
  token?: string | (() => string | undefined);
  fetch?: typeof globalThis.fetch;
}

export function createClient(options: ClientOptions): EmporiumClient {
  const client = createFetchClient<paths>({ baseUrl: options.baseUrl, fetch: options.fetch });
  const token = options.token;
  if (token !== undefined) {
    const bearer: Middleware = {
      onRequest({ request }) {
        const value = typeof token === "function" ? token() : token;
        if (value) request.headers.set("authorization", `Bearer ${value}`);
        return request;
      },
    };
    client.use(bearer);
  }
  return client;
}
