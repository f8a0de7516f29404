// livedata's JavaScript client: one ES module, no dependency, for browsers and Node >= 20.
// livedata serves this very file at /static/livedata.js, for its own data page.

/** Media types of the formats livedata answers in; the request's `format` field names one. */
export const FORMATS = Object.freeze({
  json: "application/json",
  ndjson: "application/x-ndjson",
  csv: "text/csv",
  arrow: "application/vnd.apache.arrow.stream",
  parquet: "application/vnd.apache.parquet",
});
const TEXT_FORMATS = new Set(["json", "ndjson", "csv"]);
// Longer GET URLs are POSTed instead: 8 KiB holds a request line for nginx's default buffers
// and for common CDNs; this leaves room for the rest of it.
const MAX_URL_LENGTH = 6000;

/** An error answer from livedata, in its one JSON shape; the subclass says whose move it is. */
export class LivedataError extends Error {
  constructor(status, { code, message, request_id = null, details = {} }, retryAfter = null) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.request_id = request_id; // quote it when reporting: the server's log has it
    this.details = details;
    this.retryAfter = retryAfter; // seconds to wait before sending the same request, or null
  }
}
/** A request to fix before sending it again (400, 404, 406, 413, 415, 422). */
export class RequestError extends LivedataError {}
/** Missing, wrong or insufficient credentials (401, 403). */
export class AuthError extends LivedataError {}
/** Too many requests, or a budget spent (429): wait `retryAfter` seconds. */
export class RateLimitError extends LivedataError {}
/** livedata or its source failed (5xx); 503 and 504 may pass: see `retryAfter`. */
export class ServerError extends LivedataError {}

function errorClass(status) {
  if (status === 401 || status === 403) return AuthError;
  if (status === 429) return RateLimitError;
  return status >= 500 ? ServerError : RequestError;
}

/** Calls one livedata server. Results with an ETag are kept in memory (at most `maxStored`,
 * least recently used dropped) and asked for again with `If-None-Match`: an unchanged result
 * comes back as a 304 without its body, and is answered from the copy kept here. */
export class Client {
  #baseUrl;
  #token;
  #fetch;
  #arrow;
  #maxStored;
  #stored = new Map();

  /** `arrow`: the app's `apache-arrow` module; with it, Arrow results are decoded to a Table. */
  constructor({ baseUrl = "", token = null, fetch = globalThis.fetch, arrow = null, maxStored = 100 } = {}) {
    this.#baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = (...args) => fetch(...args); // a browser's fetch refuses any other `this`
    this.#arrow = arrow;
    this.#maxStored = maxStored;
  }

  /** An API key or embed token for the requests that follow; null to send none. */
  setToken(token) {
    this.#token = token || null;
  }

  /** The catalog the caller may use: tables and named queries, parameters, columns. Kept
   * with its ETag like a result: an unchanged catalog comes back as a 304 without its body. */
  async catalog({ signal } = {}) {
    const key = JSON.stringify([this.#token, "/queries"]); // a result's key holds a body: "{...}"
    const kept = this.#stored.get(key);
    const headers = { ...this.#authorization(), ...(kept && { "If-None-Match": kept.etag }) };
    const response = await this.#fetch(`${this.#baseUrl}/queries`, { headers, signal });
    if (response.status === 304 && kept) {
      this.#keep(key, kept);
      return kept.catalog;
    }
    if (!response.ok) throw await toError(response);
    const catalog = await response.json();
    const etag = response.headers.get("ETag");
    if (etag) this.#keep(key, { etag, catalog });
    return catalog;
  }

  /** Rows of the named query `name` with `params`. */
  query(name, params = {}, options = {}) {
    return this.#run({ query: name, params }, options);
  }

  /** Rows of the exposed table `name`. */
  table(name, options = {}) {
    return this.#run({ table: name }, options);
  }

  async #run(target, options) {
    const { format = "json", signal, refresh = false } = options;
    if (!(format in FORMATS)) {
      throw new TypeError(`Unknown format ${format}; use one of ${Object.keys(FORMATS).join(", ")}.`);
    }
    const body = canonical({ ...paging(target, options), format });
    const key = JSON.stringify([this.#token, body]);
    // GET with the request in the URL: HTTP caches may keep the answer, and a matching
    // If-None-Match is a 304 (a POST gets 412). A request too long for a URL is POSTed, and
    // never conditional.
    const url = `${this.#baseUrl}/query?q=${encodeURIComponent(body)}`;
    const inUrl = url.length <= MAX_URL_LENGTH;
    const kept = refresh || !inUrl ? undefined : this.#stored.get(key);
    const headers = { Accept: FORMATS[format], ...this.#authorization() };
    if (refresh) {
      headers["Cache-Control"] = "no-cache";
    } else if (kept) {
      // A browser adds "Cache-Control: max-age=0" or "no-cache" to it; livedata answers a
      // conditional request from its cache all the same.
      headers["If-None-Match"] = kept.etag;
    }
    const request = inUrl
      ? this.#fetch(url, { headers, signal })
      : this.#fetch(`${this.#baseUrl}/query`, {
          method: "POST",
          headers: { ...headers, "Content-Type": "application/json" },
          body,
          signal,
        });
    const response = await request;
    if (response.status === 304 && kept) {
      this.#keep(key, kept);
      // A 304 repeats only some headers (no Content-Type): the kept ones stand for the rest.
      const told = Object.entries(describe(response)).filter(([, value]) => value !== null);
      return { ...kept, ...Object.fromEntries(told), notModified: true };
    }
    if (!response.ok) throw await toError(response);
    const result = { ...describe(response), notModified: false, format, ...(await this.#decode(response, format)) };
    if (result.etag) this.#keep(key, result);
    return result;
  }

  async #decode(response, format) {
    if (!TEXT_FORMATS.has(format)) {
      const body = await response.arrayBuffer();
      if (format !== "arrow" || !this.#arrow) return { body };
      return { body, table: this.#arrow.tableFromIPC(new Uint8Array(body)) };
    }
    const body = await response.text();
    if (format !== "json") return { body };
    const { columns, rows, meta } = JSON.parse(body);
    return { body, columns, rows, meta };
  }

  #keep(key, result) {
    this.#stored.delete(key); // re-inserted last: the most recently used
    this.#stored.set(key, result);
    while (this.#stored.size > this.#maxStored) this.#stored.delete(this.#stored.keys().next().value);
  }

  #authorization() {
    return this.#token ? { Authorization: `Bearer ${this.#token}` } : {};
  }
}

/** The request's fields. With a `cursor` (a page's `next`), only the target's name and the
 * page size: the cursor carries the rest of the first page's request. */
function paging({ params, ...name }, { cursor, limit, ...options }) {
  if (cursor) return defined({ ...name, cursor, limit });
  return defined({ ...name, params, ...shaping(options), limit });
}

/** The request fields that shape rows, from the options' camelCase names. */
function shaping({ columns, filters, orderBy, offset, paginate }) {
  return { columns, filters, order_by: orderBy, offset, paginate };
}

function defined(fields) {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function sortedKeys(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** JSON with every object's keys sorted and no spaces: equal requests, equal URLs, so an
 * HTTP cache keeps one copy. */
function canonical(value) {
  return JSON.stringify(value, (_, v) => (v && typeof v === "object" && !Array.isArray(v) ? sortedKeys(v) : v));
}

/** What the response headers tell about an answer. */
function describe(response) {
  const h = response.headers;
  const number = (name) => (h.has(name) ? Number(h.get(name)) : null);
  return {
    status: response.status,
    contentType: h.get("Content-Type"),
    etag: h.get("ETag"),
    cacheStatus: h.get("Cache-Status"),
    age: number("Age"),
    rowCount: number("X-Row-Count"),
    next: h.get("X-Next-Cursor"), // a page's successor (every format), null on the last
    total: number("X-Total-Count"), // rows of a paged snapshot (none for keyset pages)
    paging: h.get("X-Paging"), // "snapshot", or "keyset" where nothing is cached
    truncated: h.has("X-Truncated") ? h.get("X-Truncated") === "true" : null,
    timings: serverTiming(h.get("Server-Timing")),
    requestId: h.get("X-Request-Id"),
  };
}

/** `source;dur=3.1, total;dur=4.2` -> `{source: 3.1, total: 4.2}` (milliseconds). */
function serverTiming(header) {
  const timings = {};
  for (const metric of (header || "").split(",")) {
    const [name, ...parameters] = metric.trim().split(";");
    const duration = parameters.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    if (name && duration) timings[name] = Number(duration.slice(4));
  }
  return timings;
}

async function toError(response) {
  const retry = response.headers.get("Retry-After");
  const retryAfter = retry !== null && /^\d+$/.test(retry) ? Number(retry) : null;
  let error;
  try {
    ({ error } = await response.json());
  } catch {
    error = undefined; // not livedata's shape: a proxy's page, say
  }
  error ??= {
    code: "http_error",
    message: `HTTP ${response.status} ${response.statusText}`.trim(),
    request_id: response.headers.get("X-Request-Id"),
  };
  return new (errorClass(response.status))(response.status, error, retryAfter);
}
