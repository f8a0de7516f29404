// Compiled by `tsc` (CI), never run: livedata.d.ts used as an app would use it, and misuse the
// types must refuse (each @ts-expect-error fails the build when its line compiles after all).
import * as arrow from "apache-arrow";
import { Client, LivedataError, RateLimitError, type Catalog, type Result } from "../livedata.js";

const client = new Client({ baseUrl: "http://localhost:5000", token: null, arrow, maxStored: 10 });

export async function use(signal: AbortSignal): Promise<number> {
  const catalog: Catalog = await client.catalog({ signal });
  const region = catalog.queries.countries_by_region?.params.region?.values?.[0] ?? "Europe";
  const result: Result = await client.query(
    "countries_by_region",
    { region, min_population: 1000000, codes: ["FRA", "JPN"] },
    {
      columns: ["alpha_3"],
      filters: [{ column: "population", op: "gt", value: 5 }],
      orderBy: [{ column: "population", desc: true }],
      limit: 10,
      offset: 0,
      signal,
    },
  );
  try {
    await client.table("world_country_list", { format: "arrow", refresh: true });
  } catch (error) {
    if (error instanceof RateLimitError) return error.retryAfter ?? 1;
    if (error instanceof LivedataError) return error.request_id === null ? error.status : 0;
    throw error;
  }
  const first = await client.table("world_country_list", { limit: 50, paginate: true, signal });
  const next: string | null = first.next;
  if (next !== null) await client.table("world_country_list", { cursor: next, limit: 50 });
  const total: number = first.total ?? first.meta?.total ?? 0;
  // @ts-expect-error: a cursor is the string a page gave
  await client.table("world_country_list", { cursor: 3 });
  // @ts-expect-error: no such format
  await client.table("world_country_list", { format: "xml" });
  // @ts-expect-error: no such filter operation
  await client.table("world_country_list", { filters: [{ column: "a", op: "like", value: "x" }] });
  // @ts-expect-error: parameters are scalars or lists of them
  await client.query("countries_by_region", { region: { nested: true } });
  return (result.rows?.length ?? 0) + (result.age ?? 0) + (result.timings.total ?? 0) + total;
}
