// Types of livedata.js.

export type Format = "json" | "ndjson" | "csv" | "arrow" | "parquet";
export declare const FORMATS: Readonly<Record<Format, string>>;

export type Scalar = string | number | boolean | null;
export type Params = Record<string, Scalar | Scalar[]>;

export interface ErrorBody {
  code: string;
  message: string;
  request_id?: string | null;
  details?: Record<string, unknown>;
}

export declare class LivedataError extends Error {
  constructor(status: number, body: ErrorBody, retryAfter?: number | null);
  readonly status: number;
  /** Stable machine-readable code, e.g. `unknown_table`, `invalid_parameter`. */
  readonly code: string;
  /** The server's id for the request: quote it when reporting a problem. */
  readonly request_id: string | null;
  readonly details: Record<string, unknown>;
  /** Seconds to wait before sending the same request again (429, 503), else null. */
  readonly retryAfter: number | null;
}
export declare class RequestError extends LivedataError {}
export declare class AuthError extends LivedataError {}
export declare class RateLimitError extends LivedataError {}
export declare class ServerError extends LivedataError {}

export interface Filter {
  column: string;
  op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "in" | "is_null" | "contains";
  value?: Scalar | Scalar[];
}

export interface Order {
  column: string;
  desc?: boolean;
}

export interface RequestOptions {
  format?: Format;
  columns?: string[];
  filters?: Filter[];
  orderBy?: Order[];
  limit?: number;
  offset?: number;
  /** Page one snapshot: `limit` rows from `offset`, with `next` while more rows follow. */
  paginate?: boolean;
  /** A page's `next`: the following page of the same snapshot (other shaping is its own). */
  cursor?: string;
  signal?: AbortSignal;
  /** Ask livedata to check with the source (`Cache-Control: no-cache`), not to revalidate. */
  refresh?: boolean;
}

export interface Column {
  name: string;
  type: string;
}

export interface ResultMeta {
  rows: number;
  truncated: boolean;
  source: string;
  table?: string | null;
  query?: string | null;
  params: Record<string, unknown>;
  fetched_at: string;
  fresh_until: string;
  timings_ms: Record<string, number>;
  /** Paged results: rows of the snapshot (null for keyset pages), and the cursor of the next
   * page (null on the last). */
  total?: number | null;
  next?: string | null;
  /** Paged results: "snapshot" (the cached result, pinned) or "keyset" (read live, where
   * nothing is cached). */
  paging?: "snapshot" | "keyset";
}

export interface Result {
  /** 200, or 304 when the kept copy was still current (`notModified`). */
  status: number;
  notModified: boolean;
  format: Format;
  contentType: string | null;
  etag: string | null;
  cacheStatus: string | null;
  age: number | null;
  rowCount: number | null;
  /** Paged results (`paginate`, `cursor`): send it as `cursor` for the next page; null at the end. */
  next: string | null;
  /** Paged results: rows of the whole snapshot (null for keyset pages). */
  total: number | null;
  /** Paged results: "snapshot" or "keyset" (read live: no total, pages may see changes). */
  paging: string | null;
  truncated: boolean | null;
  /** Milliseconds from Server-Timing: `source`, `total`. */
  timings: Record<string, number>;
  requestId: string | null;
  /** The body as sent: text for json, ndjson and csv; bytes for arrow and parquet. */
  body: string | ArrayBuffer;
  /** JSON only. */
  columns?: Column[];
  rows?: unknown[][];
  meta?: ResultMeta;
  /** Arrow only, when the client was given `arrow`: the decoded `apache-arrow` Table. */
  table?: unknown;
}

export interface ParamDescription {
  type: string;
  required?: boolean;
  default?: unknown;
  description?: string | null;
  values?: string[];
  min?: number | null;
  max?: number | null;
  /** The JSON Schema of the parameter's values (type, format, enum, bounds, items, default). */
  schema: Record<string, unknown>;
  [key: string]: unknown;
}

/** A result column as the catalog lists it. */
export interface CatalogColumn extends Column {
  /** The filter ops a filter on this column takes. */
  ops: string[];
  /** Whether the column may hold null, as the table declares it; absent when the source
   * cannot tell (a named query's columns). */
  nullable?: boolean;
  /** From the catalog's `column_descriptions`; absent if none. */
  description?: string;
}

export interface Catalog {
  tables: Record<string, { source: string; description: string | null; columns: CatalogColumn[] | null }>;
  queries: Record<
    string,
    {
      source: string;
      description: string | null;
      params: Record<string, ParamDescription>;
      columns: CatalogColumn[] | null;
    }
  >;
}

export interface ClientOptions {
  /** The server's address, e.g. `https://data.example.com`; "" for the page's own origin. */
  baseUrl?: string;
  /** An API key or embed token, sent as `Authorization: Bearer ...`. */
  token?: string | null;
  fetch?: typeof globalThis.fetch;
  /** The app's `apache-arrow` module (or anything with its `tableFromIPC`). */
  arrow?: { tableFromIPC(bytes: Uint8Array): unknown } | null;
  /** How many results to keep for `If-None-Match` (default 100). */
  maxStored?: number;
}

export declare class Client {
  constructor(options?: ClientOptions);
  setToken(token: string | null): void;
  catalog(options?: { signal?: AbortSignal }): Promise<Catalog>;
  query(name: string, params?: Params, options?: RequestOptions): Promise<Result>;
  table(name: string, options?: RequestOptions): Promise<Result>;
}
