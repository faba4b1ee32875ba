// Small DOM helpers shared by the pages: elements built with text content only
// (never innerHTML from data), tables, and formatting of the chain's values.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function table(columns, rows, empty = "none") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", {}, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))),
  );
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function fields(pairs) {
  return h("dl", { class: "fields" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function short(id, n = 10) {
  const s = String(id ?? "");
  return s.length > n + 2 ? s.slice(0, n) + "…" : s;
}

export function when(ms) {
  if (ms === null || ms === undefined || ms === 0) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "never seen";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export function num(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en");
}

export function badge(text, kind = String(text)) {
  return h("span", { class: `badge b-${kind}` }, text);
}

export function memberName(ctx, id) {
  if (!id) return "—";
  const m = ctx.members?.get(id);
  return m ? `${m.name} (${m.role})` : short(id);
}

// Run `load` now and again (at most every `gap` ms) whenever `trigger` is called.
export function debounced(load, gap = 300) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      Promise.resolve()
        .then(load)
        .catch((err) => console.warn("refresh failed (the page retries on the next event)", err));
    }, gap);
  };
}

// A "more" button that loads the next page of a list answer into `into`.
export function pager(ctx, base, key, render, into) {
  const box = h("div", { class: "pager" });
  const load = async (cursor) => {
    const sep = base.includes("?") ? "&" : "?";
    const doc = await ctx.api(cursor ? `${base}${sep}cursor=${encodeURIComponent(cursor)}` : base);
    into.append(...doc[key].map(render));
    box.replaceChildren();
    if (doc.next) box.append(h("button", { onclick: () => load(doc.next) }, "more"));
    return doc;
  };
  return { box, load };
}

// A table of a paginated list endpoint (`{KEY: [...], next}`), with a "more" button
// while the node has more; resolves to the element once the first page is in.
export async function listTable(ctx, path, key, columns, empty = "none") {
  const body = h("tbody");
  const box = h("div", { class: "list" });
  const more = h("div", { class: "pager" });
  const rowOf = (row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))));
  const load = async (cursor) => {
    const sep = path.includes("?") ? "&" : "?";
    const doc = await ctx.api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    body.append(...doc[key].map(rowOf));
    more.replaceChildren();
    if (doc.next) more.append(h("button", { onclick: () => load(doc.next) }, "more"));
    return doc[key].length;
  };
  const count = await load(null);
  if (!count) box.append(h("p", { class: "muted" }, empty));
  else box.append(h("table", {}, h("thead", {}, h("tr", {}, columns.map(([t]) => h("th", {}, t)))), body), more);
  return box;
}
