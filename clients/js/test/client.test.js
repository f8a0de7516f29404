// The client against a real livedata server (see server.js): node --test clients/js/test/
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import * as arrow from "apache-arrow"; // a devDependency: `npm ci` in clients/js

import { AuthError, Client, LivedataError, RateLimitError, RequestError } from "../livedata.js";
import { serve } from "./server.js";

const EVERYTHING = ["-q", "*", "-t", "*"];
let server;
let limited;

before(async () => {
  [server, limited] = await Promise.all([
    serve({ keys: { reader: EVERYTHING, other: EVERYTHING, europe: ["-q", "countries_by_region"] } }),
    // One request, then none for a thousand seconds: the second answers 429.
    serve({ keys: { reader: EVERYTHING }, env: { LIVEDATA_RATE_LIMIT: "0.001", LIVEDATA_RATE_LIMIT_BURST: "1" } }),
  ]);
});
after(() => Promise.all([server?.close(), limited?.close()]));

/** A client whose requests are also kept, to see what was sent. */
/** The request a GET carried in its URL, as the server reads it. */
function sentRequest({ url }) {
  return JSON.parse(new URL(url).searchParams.get("q"));
}

function recording(options = {}) {
  const sent = [];
  const fetchAndKeep = (url, init) => {
    sent.push({ url, ...init, headers: new Headers(init.headers) });
    return fetch(url, init);
  };
  const client = new Client({ baseUrl: server.url, token: server.keys.reader, fetch: fetchAndKeep, ...options });
  return { client, sent };
}

describe("query and table", () => {
  test("a named query with parameters: rows, columns, meta and what the headers say", async () => {
    const { client } = recording();
    const result = await client.query("countries_by_region", { region: "Europe", min_population: 60000000 });
    assert.equal(result.status, 200);
    assert.deepEqual(
      result.rows.map((row) => row[0]),
      ["RUS", "DEU", "FRA", "GBR", "ITA"],
    );
    assert.equal(result.columns[0].name, "alpha_3");
    assert.deepEqual(result.meta.params, { region: "Europe", min_population: 60000000 });
    assert.equal(result.rowCount, 5);
    assert.equal(result.truncated, false);
    assert.match(result.cacheStatus, /^livedata; /);
    assert.equal(typeof result.timings.total, "number");
    assert.match(result.requestId, /^[0-9a-f]{16}$/);
  });

  test("a table, shaped and paged", async () => {
    const { client } = recording();
    const page = (offset) =>
      client.table("world_country_list", {
        columns: ["alpha_3", "population"],
        filters: [{ column: "region", op: "eq", value: "Oceania" }],
        orderBy: [{ column: "population", desc: true }],
        limit: 3,
        offset,
      });
    const [first, second] = [await page(0), await page(3)];
    assert.deepEqual(first.columns.map((c) => c.name), ["alpha_3", "population"]);
    assert.deepEqual(first.rows.map((r) => r[0]), ["AUS", "PNG", "NZL"]);
    assert.equal(second.rows.length, 3);
    assert.ok(second.rows[0][1] <= first.rows[2][1], "the second page follows the first");
  });

  test("pages of one snapshot, each leading to the next with its cursor", async () => {
    const { client, sent } = recording();
    const shape = { orderBy: [{ column: "alpha_3" }], filters: [{ column: "region", op: "eq", value: "Europe" }] };
    const whole = await client.table("world_country_list", shape);
    const pages = [await client.table("world_country_list", { ...shape, limit: 20, paginate: true })];
    while (pages.at(-1).next) {
      pages.push(await client.table("world_country_list", { cursor: pages.at(-1).next }));
    }
    assert.deepEqual(pages.flatMap((page) => page.rows), whole.rows);
    assert.ok(pages.length > 2);
    assert.ok(pages.every((page) => page.total === whole.rows.length && page.meta.total === page.total));
    assert.ok(pages.every((page) => page.paging === "snapshot" && page.meta.paging === "snapshot"));
    assert.equal(pages.at(-1).meta.next, null);
    // A cursor carries its request: only the name and the cursor are sent with it.
    assert.deepEqual(Object.keys(sentRequest(sent.at(-1))), ["cursor", "format", "table"]);
  });

  test("pages in other formats: the cursor and total come as headers", async () => {
    const { client } = recording();
    const first = await client.query("countries_by_region", { region: "Asia" }, { format: "csv", limit: 5, paginate: true });
    const second = await client.query("countries_by_region", {}, { format: "csv", cursor: first.next });
    assert.equal(first.body.trim().split("\n").length, 6); // a header line and five rows
    assert.equal(second.total, first.total);
    assert.notEqual(second.body, first.body);
  });

  test("a forged cursor is a RequestError with the server's code", async () => {
    const { client } = recording();
    const { next } = await client.table("world_country_list", { limit: 5, paginate: true });
    await assert.rejects(client.table("world_country_list", { cursor: `x${next}` }), (error) => {
      assert.ok(error instanceof RequestError);
      assert.equal(error.code, "invalid_cursor");
      return true;
    });
  });

  test("the catalog lists what the caller may run", async () => {
    const catalog = await new Client({ baseUrl: server.url, token: server.keys.europe }).catalog();
    assert.deepEqual(Object.keys(catalog.queries), ["countries_by_region"]);
    assert.deepEqual(catalog.tables, {});
    assert.equal(catalog.queries.countries_by_region.params.region.values.at(-1), "Oceania");
    assert.equal(catalog.queries.countries_by_region.params.region.schema.enum.at(-1), "Oceania");
  });

  test("the catalog is revalidated with its ETag, per token", async () => {
    const exchanges = []; // [If-None-Match sent, status answered]
    const fetchAndNote = async (url, init) => {
      const response = await fetch(url, init);
      exchanges.push([new Headers(init.headers).get("If-None-Match"), response.status]);
      return response;
    };
    const client = new Client({ baseUrl: server.url, token: server.keys.reader, fetch: fetchAndNote });
    const everything = await client.catalog();
    assert.equal(await client.catalog(), everything);
    client.setToken(server.keys.europe);
    assert.deepEqual(Object.keys((await client.catalog()).queries), ["countries_by_region"]);
    assert.deepEqual(exchanges.map(([tag, status]) => [tag !== null, status]), [[false, 200], [true, 304], [false, 200]]);
  });
});

describe("conditional requests", () => {
  test("a repeated request sends If-None-Match and an unchanged result answers 304", async () => {
    const { client, sent } = recording();
    const params = { min_population: 1000000, region: "Asia" };
    const first = await client.query("countries_by_region", params);
    const again = await client.query("countries_by_region", { region: "Asia", min_population: 1000000 });
    assert.equal(sent[0].headers.get("If-None-Match"), null);
    assert.equal(sent[1].headers.get("If-None-Match"), first.etag);
    // Nothing else: what a browser adds to it (max-age=0, no-cache) livedata does not heed.
    assert.equal(sent[1].headers.get("Cache-Control"), null);
    assert.equal(again.status, 304);
    assert.equal(again.notModified, true);
    assert.deepEqual(again.rows, first.rows);
    assert.equal(again.contentType, first.contentType, "a 304 has no Content-Type of its own");
    assert.notEqual(again.requestId, first.requestId);
  });

  test("another credential never revalidates what one credential was answered", async () => {
    const { client, sent } = recording();
    await client.table("world_country_list", { limit: 1 });
    client.setToken(server.keys.other);
    const result = await client.table("world_country_list", { limit: 1 });
    assert.equal(sent[1].headers.get("If-None-Match"), null);
    assert.equal(result.status, 200);
  });

  test("requests go in the URL, canonical; one too long for a URL is POSTed, never conditional", async () => {
    const { client, sent } = recording();
    await client.query("countries_by_region", { region: "Asia", min_population: 1 });
    await client.query("countries_by_region", { min_population: 1, region: "Asia" });
    assert.equal(sent[0].method ?? "GET", "GET");
    assert.equal(sent[1].url, sent[0].url, "the same request, the same URL");
    assert.deepEqual(sentRequest(sent[0]), {
      format: "json",
      params: { min_population: 1, region: "Asia" },
      query: "countries_by_region",
    });
    const codes = ["FRA", ...Array.from({ length: 600 }, (_, i) => `X${i}`)]; // a URL of ~8 KB
    const many = { filters: [{ column: "alpha_3", op: "in", value: codes }] };
    const answers = [await client.table("world_country_list", many), await client.table("world_country_list", many)];
    assert.deepEqual(answers.map((a) => [a.status, a.rows.length]), [[200, 1], [200, 1]]);
    assert.deepEqual(sent.slice(2).map((r) => [r.method, r.headers.get("If-None-Match")]), [["POST", null], ["POST", null]]);
  });

  test("refresh asks livedata to check with the source", async () => {
    const { client, sent } = recording();
    await client.table("world_country_list", { limit: 2 });
    const fresh = await client.table("world_country_list", { limit: 2, refresh: true });
    assert.equal(sent[1].headers.get("Cache-Control"), "no-cache");
    assert.equal(sent[1].headers.get("If-None-Match"), null);
    assert.equal(fresh.status, 200);
  });

  test("only the most recently used results are kept", async () => {
    const { client, sent } = recording({ maxStored: 1 });
    await client.table("world_country_list", { limit: 3 });
    await client.table("world_country_list", { limit: 4 });
    await client.table("world_country_list", { limit: 3 });
    assert.equal(sent[2].headers.get("If-None-Match"), null);
  });
});

describe("errors", () => {
  test("a bad parameter value: a RequestError with the server's code, message and request id", async () => {
    const { client } = recording();
    const error = await client.query("countries_by_region", { region: "Atlantis" }).catch((e) => e);
    assert.ok(error instanceof RequestError && error instanceof LivedataError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "invalid_parameter");
    assert.match(error.message, /region/);
    assert.match(error.request_id, /^[0-9a-f]{16}$/);
    assert.equal(error.retryAfter, null);
  });

  test("no credentials: an AuthError", async () => {
    const error = await new Client({ baseUrl: server.url }).table("world_country_list").catch((e) => e);
    assert.ok(error instanceof AuthError);
    assert.equal(error.status, 401);
  });

  test("a name outside the grant answers as if it did not exist", async () => {
    const client = new Client({ baseUrl: server.url, token: server.keys.europe });
    const error = await client.table("world_country_list").catch((e) => e);
    assert.ok(error instanceof RequestError);
    assert.equal(error.status, 404);
  });

  test("too many requests: a RateLimitError saying when to try again", async () => {
    const client = new Client({ baseUrl: limited.url, token: limited.keys.reader });
    await client.table("world_country_list", { limit: 1 });
    const error = await client.table("world_country_list", { limit: 1 }).catch((e) => e);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.status, 429);
    assert.ok(error.retryAfter > 0, `Retry-After ${error.retryAfter}`);
  });

  test("an aborted request rejects with the AbortError fetch gives", async () => {
    const { client } = recording();
    const controller = new AbortController();
    controller.abort();
    const error = await client.table("tpch_lineitem", { signal: controller.signal }).catch((e) => e);
    assert.equal(error.name, "AbortError");
  });
});

describe("formats", () => {
  test("csv and ndjson come as text", async () => {
    const { client } = recording();
    const csv = await client.table("world_country_list", { format: "csv", columns: ["alpha_3"], limit: 2 });
    assert.equal(csv.contentType.split(";")[0], "text/csv");
    assert.equal(csv.body.split(/\r?\n/)[0], `"alpha_3"`);
    const ndjson = await client.table("world_country_list", { format: "ndjson", limit: 2 });
    assert.equal(ndjson.body.trim().split("\n").length, 2);
  });

  test("parquet comes as bytes", async () => {
    const { client } = recording();
    const parquet = await client.table("world_country_list", { format: "parquet", limit: 2 });
    assert.equal(new TextDecoder().decode(parquet.body.slice(0, 4)), "PAR1");
  });

  test("arrow is decoded when the app gives its apache-arrow module, else left as bytes", async () => {
    const options = { format: "arrow", columns: ["alpha_3", "population"], limit: 2 };
    const bytes = await new Client({ baseUrl: server.url, token: server.keys.reader }).table("world_country_list", options);
    assert.equal(bytes.table, undefined);
    assert.deepEqual([...new Uint8Array(bytes.body, 0, 4)], [0xff, 0xff, 0xff, 0xff]); // IPC stream
    const { client } = recording({ arrow });
    const { table } = await client.table("world_country_list", options);
    assert.ok(table instanceof arrow.Table);
    assert.deepEqual(table.schema.fields.map((f) => f.name), ["alpha_3", "population"]);
    const json = await client.table("world_country_list", { ...options, format: "json" });
    assert.deepEqual(
      table.toArray().map((row) => [row.alpha_3, Number(row.population)]), // int64: a BigInt
      json.rows,
    );
  });

  test("an unknown format is refused before any request", async () => {
    const { client, sent } = recording();
    await assert.rejects(client.table("world_country_list", { format: "xml" }), TypeError);
    assert.equal(sent.length, 0);
  });
});
