// The data page: the catalog the caller may use, a form per table or named query, results a
// page at a time, every page from the snapshot of the first (cursors). Every request goes
// through the JavaScript client (clients/js).
import { Client, FORMATS, LivedataError } from "./livedata.js";

const client = new Client();
const $ = (id) => document.getElementById(id);
const NUMERIC = /^(u?int\d+|float|double|halffloat|decimal)/;
const ORDERED_OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null"];
const OPS_BY_KIND = {
  number: ORDERED_OPS,
  ordered: ORDERED_OPS,
  string: ["eq", "ne", "contains", "in", "lt", "gt", "is_null"],
  other: ["eq", "ne", "is_null"],
};
const OP_LABELS = {
  eq: "=", ne: "≠", lt: "<", le: "≤", gt: ">", ge: "≥", in: "is one of (a, b, …)",
  is_null: "is empty", contains: "contains",
};

// What is being asked: the target, its shaping and the page shown.
let target = null; // {kind: "query" | "table", name, entry}
let filters = [];
// How each page up to the one shown was asked: no cursor for the first (a new snapshot), then
// the cursor the page before gave, and the row it starts at. Going back asks again with the
// kept cursor: the same rows, and a 304 when the client still holds them.
let pages = [{ cursor: null, start: 0 }];
let following = null; // the next page, as the page shown says
let pending = null; // the AbortController of the request in flight

function element(tag, properties = {}, children = []) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function kindOf(type) {
  if (NUMERIC.test(type)) return "number";
  if (/^(date|time|timestamp)/.test(type)) return "ordered";
  return type === "string" ? "string" : "other";
}

async function loadCatalog() {
  $("catalog-status").textContent = "Loading…";
  let catalog;
  try {
    catalog = await client.catalog();
  } catch (error) {
    $("catalog-status").textContent =
      error instanceof LivedataError && error.status === 401
        ? "Paste an API key or embed token above to see what it may run."
        : `The catalog could not be read: ${error.message}`;
    $("queries").replaceChildren();
    $("tables").replaceChildren();
    return;
  }
  const entries = (kind, items) =>
    Object.entries(items).map(([name, entry]) => {
      const button = element("button", { type: "button", textContent: name });
      button.addEventListener("click", () => choose({ kind, name, entry }));
      const about = entry.description ? [element("p", { textContent: entry.description })] : [];
      return element("li", {}, [button, ...about]);
    });
  $("queries").replaceChildren(...entries("query", catalog.queries));
  $("tables").replaceChildren(...entries("table", catalog.tables));
  const count = Object.keys(catalog.queries).length + Object.keys(catalog.tables).length;
  $("catalog-status").textContent = count ? "" : "These credentials may run nothing.";
}

function choose(chosen) {
  target = chosen;
  filters = [];
  restart();
  $("request-heading").textContent = `${chosen.kind === "query" ? "Named query" : "Table"} ${chosen.name}`;
  $("request-description").textContent = chosen.entry.description ?? "";
  const params = Object.entries(chosen.entry.params ?? {});
  $("params").hidden = params.length === 0;
  $("params").replaceChildren(element("legend", { textContent: "Parameters" }), ...params.map(paramField));
  const columns = chosen.entry.columns ?? [];
  const described = columns.filter((c) => c.description);
  $("column-guide").hidden = described.length === 0;
  $("column-list").replaceChildren(
    ...described.flatMap((c) => [element("dt", { textContent: `${c.name} (${c.type})` }), element("dd", { textContent: c.description })]),
  );
  $("filter-column").replaceChildren(...columns.map((c) => element("option", { value: c.name, textContent: c.name })));
  $("order-column").replaceChildren(
    element("option", { value: "", textContent: "(as the source returns them)" }),
    ...columns.map((c) => element("option", { value: c.name, textContent: c.name })),
  );
  $("shaping").hidden = columns.length === 0;
  showOps();
  showFilters();
  $("request").hidden = false;
  $("result").hidden = true;
  $("error").hidden = true;
  $("request-heading").focus();
}

/** A labelled control for one parameter, from its declared type and rules. */
function paramField([name, spec]) {
  const id = `param-${name}`;
  const [, listOf] = spec.type.match(/^list\[(.+)\]$/) ?? [];
  const type = listOf ?? spec.type;
  let control;
  if (type === "enum" || type === "bool") {
    const values = type === "enum" ? spec.values : ["true", "false"];
    const blank = spec.required ? [] : [element("option", { value: "", textContent: "(default)" })];
    control = element("select", {}, [...blank, ...values.map((v) => element("option", { value: v, textContent: v }))]);
    control.multiple = Boolean(listOf);
  } else {
    control = element("input");
    if (listOf) {
      control.type = "text"; // items separated by commas
      if (spec.pattern) control.pattern = `\\s*(?:${spec.pattern})(?:\\s*,\\s*(?:${spec.pattern}))*\\s*`;
    } else if (type === "int" || type === "float") {
      Object.assign(control, { type: "number", step: type === "int" ? "1" : "any" });
    } else if (type === "date" || type === "datetime") {
      control.type = type === "date" ? "date" : "datetime-local";
    } else {
      control.type = "text";
      if (spec.pattern) control.pattern = spec.pattern;
      if (spec.min_length != null) control.minLength = spec.min_length;
      if (spec.max_length != null) control.maxLength = spec.max_length;
    }
    if (!listOf && spec.min != null) control.min = spec.min;
    if (!listOf && spec.max != null) control.max = spec.max;
  }
  Object.assign(control, { id, name, required: Boolean(spec.required) });
  if (listOf && !control.multiple) control.dataset.list = "comma-separated";
  if (spec.default != null) {
    const values = [spec.default].flat().map(String);
    if (control.multiple) [...control.options].forEach((o) => (o.selected = values.includes(o.value)));
    else control.value = values.join(",");
  }
  const rules = [spec.type, spec.required ? "required" : null, bounds(spec)].filter(Boolean).join(", ");
  const help = element("small", { id: `${id}-help`, textContent: [spec.description, `(${rules})`].filter(Boolean).join(" ") });
  control.setAttribute("aria-describedby", help.id);
  return element("div", { className: "field" }, [element("label", { htmlFor: id, textContent: name }), control, help]);
}

function bounds(spec) {
  if (spec.min != null && spec.max != null) return `${spec.min} to ${spec.max}`;
  if (spec.min != null) return `at least ${spec.min}`;
  return spec.max != null ? `at most ${spec.max}` : null;
}

function showOps() {
  const column = (target.entry.columns ?? []).find((c) => c.name === $("filter-column").value);
  const ops = OPS_BY_KIND[column ? kindOf(column.type) : "other"];
  $("filter-op").replaceChildren(...ops.map((op) => element("option", { value: op, textContent: OP_LABELS[op] })));
  $("filter-value").disabled = false;
}

function addFilter() {
  const column = target.entry.columns.find((c) => c.name === $("filter-column").value);
  const op = $("filter-op").value;
  const raw = $("filter-value").value.trim();
  const typed = (text) => (kindOf(column.type) === "number" && text !== "" ? Number(text) : text);
  const value = op === "is_null" ? true : op === "in" ? raw.split(",").map((v) => typed(v.trim())) : typed(raw);
  filters.push({ column: column.name, op, value });
  $("filter-value").value = "";
  showFilters();
}

function showFilters() {
  $("filters").replaceChildren(
    ...filters.map((f, index) => {
      const text = `${f.column} ${OP_LABELS[f.op]}${f.op === "is_null" ? "" : ` ${JSON.stringify(f.value)}`}`;
      const remove = element("button", { type: "button", textContent: "Remove" });
      remove.setAttribute("aria-label", `Remove filter ${text}`);
      remove.addEventListener("click", () => {
        filters.splice(index, 1);
        showFilters();
      });
      return element("li", {}, [element("span", { textContent: text }), remove]);
    }),
  );
}

/** The parameters as typed in the form (the server converts and checks them), or null with
 * the form's own complaint shown when a control breaks its rules. */
function readParams() {
  const params = {};
  for (const control of $("params").querySelectorAll("input, select")) {
    if (!control.checkValidity()) {
      showError(`${control.name}: ${control.validationMessage}`);
      control.focus();
      return null;
    }
    const value = control.multiple
      ? [...control.selectedOptions].map((o) => o.value)
      : control.dataset.list
        ? control.value.split(",").map((item) => item.trim()).filter(Boolean)
        : control.value;
    if (value.length) params[control.name] = value;
  }
  return params;
}

function options(extra = {}) {
  const order = $("order-column").value;
  return {
    filters,
    orderBy: order ? [{ column: order, desc: $("order-direction").value === "desc" }] : undefined,
    ...extra,
  };
}

function send(params, extra) {
  return target.kind === "query"
    ? client.query(target.name, params, options(extra))
    : client.table(target.name, options(extra));
}

async function run() {
  const params = readParams();
  if (params === null) return;
  pending?.abort(); // the newer request wins
  pending = new AbortController();
  const { cursor } = pages.at(-1);
  const page = cursor ? { cursor } : { limit: Number($("page-size").value), paginate: true };
  $("run").setAttribute("aria-busy", "true");
  try {
    showResult(await send(params, { ...page, signal: pending.signal }));
  } catch (error) {
    if (error.name !== "AbortError") showError(describeError(error));
  } finally {
    $("run").removeAttribute("aria-busy");
  }
}

function describeError(error) {
  if (!(error instanceof LivedataError)) return `The request failed: ${error.message}`;
  const retry = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  return `${error.code}: ${error.message}${retry} (request id ${error.request_id})`;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
  $("result").hidden = true;
}

function restart() {
  pages = [{ cursor: null, start: 0 }];
}

function showResult(result) {
  const rows = result.rows;
  const about = new Map((target.entry.columns ?? []).map((c) => [c.name, c.description]));
  const title = (c) => [c.type, about.get(c.name)].filter(Boolean).join(": ");
  const header = element("tr", {}, result.columns.map((c) => element("th", { scope: "col", textContent: c.name, title: title(c) })));
  const body = rows.map((row) => element("tr", {}, row.map((v) => element("td", { textContent: v === null ? "∅" : typeof v === "object" ? JSON.stringify(v) : String(v) }))));
  const { start } = pages.at(-1);
  const of = result.total === null ? "read live (keyset pages)" : `of ${result.total}`;
  const range = `rows ${start + 1} to ${start + rows.length} ${of}`;
  $("rows").replaceChildren(element("caption", { textContent: `${target.name}, ${range}` }), element("thead", {}, [header]), element("tbody", {}, body));
  $("page-range").textContent = rows.length ? `R${range.slice(1)}` : "No rows";
  $("previous").disabled = pages.length === 1;
  $("next").disabled = !result.next;
  following = result.next ? { cursor: result.next, start: start + rows.length } : null;
  const timings = Object.entries(result.timings).map(([name, ms]) => `${name} ${ms.toFixed(1)} ms`);
  $("summary").textContent = [
    `${rows.length} row${rows.length === 1 ? "" : "s"} on this page`,
    result.meta.truncated ? "the source's row limit cut the result" : null,
    result.notModified ? "unchanged since last asked (304)" : null,
    `Cache-Status: ${result.cacheStatus}`,
    result.age === null ? null : `Age: ${result.age} s`,
    ...timings,
  ].filter(Boolean).join(" · ");
  $("error").hidden = true;
  $("result").hidden = false;
}

async function download(format) {
  const params = readParams();
  if (params === null) return;
  try {
    const result = await send(params, { format });
    const url = URL.createObjectURL(new Blob([result.body], { type: FORMATS[format] }));
    const extension = { json: "json", ndjson: "ndjson", csv: "csv", arrow: "arrows", parquet: "parquet" }[format];
    element("a", { href: url, download: `${target.name}.${extension}` }).click();
    setTimeout(() => URL.revokeObjectURL(url), 0); // the download has taken its copy
  } catch (error) {
    showError(describeError(error));
  }
}

$("credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  client.setToken($("token").value.trim());
  $("request").hidden = true;
  $("result").hidden = true;
  loadCatalog();
});
$("request-form").addEventListener("submit", (event) => {
  event.preventDefault();
  restart();
  run();
});
$("filter-column").addEventListener("change", showOps);
$("filter-op").addEventListener("change", () => ($("filter-value").disabled = $("filter-op").value === "is_null"));
$("add-filter").addEventListener("click", addFilter);
$("previous").addEventListener("click", () => {
  pages.pop();
  run();
});
$("next").addEventListener("click", () => {
  pages.push(following);
  run();
});
$("downloads").replaceChildren(
  ...Object.keys(FORMATS).map((format) => {
    const button = element("button", { type: "button", textContent: format.toUpperCase() });
    button.addEventListener("click", () => download(format));
    return button;
  }),
);
loadCatalog();
