// The shell: hash router, the API with the node's token, who this node belongs to,
// and one shared WebSocket to /v1/events that reconnects and resumes where it left off.

import { h } from "./dom.js";

const TOKEN = "godown.token";
const ROUTES = [
  [/^\/?$/, "overview", []],
  [/^\/overview$/, "overview", []],
  [/^\/cases$/, "cases", []],
  [/^\/cases\/([^/]+)$/, "case", ["id"]],
  [/^\/lots$/, "lots", []],
  [/^\/lots\/([^/]+)$/, "lot", ["id"]],
  [/^\/devices$/, "devices", []],
  [/^\/alarms$/, "alarms", []],
  [/^\/explorer(?:\/(.*))?$/, "explorer", ["path"]],
  [/^\/audit$/, "audit", []],
  [/^\/login$/, "login", []],
];

export class Unauthorized extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else sessionStorage.removeItem(TOKEN);
}

function toLogin() {
  if (!location.hash.startsWith("#/login")) {
    sessionStorage.setItem("godown.after", location.hash || "#/overview");
    location.hash = "#/login";
  }
}

// GET (or `options.method`) a /v1 path as JSON with the token; a 401 routes to the login page.
export async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) {
    toLogin();
    throw new Unauthorized("the node asks for its token");
  }
  const doc = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error(doc?.error?.message || `${resp.status} ${resp.statusText}`);
    err.code = doc?.error?.code;
    err.status = resp.status;
    throw err;
  }
  return doc;
}

// One WebSocket for every page. Events of a height arrive in a fixed order (block,
// txs, contract events); after a drop it resumes from the last height it saw, skipping
// the events of that height already delivered, so handlers see each event once.
class Live {
  constructor() {
    this.handlers = new Map();
    this.height = null; // the height of the last event delivered
    this.delivered = 0; // events of that height delivered so far
    this.ws = null;
    this.backoff = 250;
    this.skip = 0;
    this.wanted = false;
    this.blocks = []; // heights of the last block events delivered (what tests and benches read)
  }

  on(kind, fn) {
    if (!this.handlers.has(kind)) this.handlers.set(kind, new Set());
    this.handlers.get(kind).add(fn);
    return () => this.handlers.get(kind)?.delete(fn);
  }

  start(fromHeight) {
    this.wanted = true;
    if (this.height === null && fromHeight) {
      this.height = fromHeight - 1;
      this.delivered = Infinity; // nothing of fromHeight-1 wanted: the pages loaded it
    }
    this.connect();
  }

  restart() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    this.connect();
  }

  connect() {
    if (!this.wanted || this.ws) return;
    let url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/events`;
    const resume = this.height === null ? null : this.delivered === Infinity ? this.height + 1 : this.height;
    if (resume !== null && resume >= 1) url += `?from_height=${resume}`;
    this.skip = resume === this.height ? this.delivered : 0;
    const t = token();
    const ws = t ? new WebSocket(url, [`bearer.${t}`]) : new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.refused = 0;
      this.backoff = 250;
      this.status(true);
    };
    ws.onmessage = (msg) => this.receive(JSON.parse(msg.data));
    ws.onclose = () => {
      this.ws = null;
      this.status(false);
      if (this.wanted) setTimeout(() => (opened ? this.connect() : this.reconnect()), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 4000);
    };
  }

  // A node that answers HTTP but keeps refusing the stream's upgrade no longer keeps the
  // events to resume from (or the token changed: the API call routes to the login page):
  // start again at its head and let the pages reload, rather than retry forever.
  async reconnect() {
    let status = null;
    try {
      status = await api("/v1/status");
    } catch {
      // the node is down (or asks for a token): not a refusal of the resume point
    }
    this.refused = status ? (this.refused || 0) + 1 : 0;
    if (status && this.refused >= 3) {
      this.height = Number(status.height);
      this.delivered = Infinity;
      this.refused = 0;
      this.emit({ kind: "resync" });
    }
    this.connect();
  }

  receive(ev) {
    if (ev.kind === "lagged" || ev.kind === "error") {
      if (ev.error?.code === "history_unavailable") {
        this.height = null; // too far behind: start afresh and let the pages reload
        this.emit({ kind: "resync" });
      }
      return;
    }
    if (this.skip > 0 && ev.height === this.height) {
      this.skip -= 1; // delivered before the drop
      return;
    }
    this.skip = 0;
    if (ev.height !== this.height) {
      this.height = ev.height;
      this.delivered = 0;
    }
    this.delivered += 1;
    if (ev.kind === "block") {
      this.blocks.push(ev.height);
      if (this.blocks.length > 5000) this.blocks.splice(0, 1000);
    }
    this.emit(ev);
  }

  emit(ev) {
    const family = String(ev.kind).split("_")[0];
    for (const key of new Set([ev.kind, family, "*"])) {
      for (const fn of this.handlers.get(key) || []) {
        try {
          fn(ev);
        } catch (err) {
          console.warn("event handler failed", err);
        }
      }
    }
  }

  status(up) {
    const el = document.getElementById("live");
    el.textContent = up ? "live" : "reconnecting…";
    el.className = up ? "live on" : "live off";
    document.body.dataset.live = up ? "1" : "0";
  }
}

const live = new Live();
window.godownLive = live;
let me = null;
let members = new Map();
let cleanup = null;
let pageSubs = [];
let rendering = 0;

async function loadIdentity() {
  me = await api("/v1/whoami");
  const doc = await api("/v1/members");
  members = new Map(doc.members.map((m) => [m.id, m]));
  const el = document.getElementById("whoami");
  const m = me.member;
  el.textContent = m ? `${m.name} · ${m.role}${m.role === "auditor" ? " · read-only" : ""}` : `node ${me.node_id.slice(0, 10)}…`;
  document.body.dataset.role = m ? m.role : "";
}

function route() {
  const raw = (location.hash || "#/").slice(1).split("?")[0];
  const path = raw.startsWith("/") ? raw : `/${raw}`;
  for (const [re, name, keys] of ROUTES) {
    const found = re.exec(path);
    if (found) {
      const params = Object.fromEntries(keys.map((k, i) => [k, found[i + 1] ? decodeURIComponent(found[i + 1]) : null]));
      return { name, params };
    }
  }
  return { name: "notfound", params: {} };
}

async function pageModule(name) {
  if (name === "explorer") {
    try {
      return await import("./pages/explorer.js");
    } catch {
      return { render: (root) => root.append(h("h1", {}, "Explorer"), h("p", { class: "muted" }, "The explorer is not installed on this node.")) };
    }
  }
  if (name === "notfound") return { render: (root) => root.append(h("h1", {}, "Not found"), h("p", {}, "No such page.")) };
  return import(`./pages/${name}.js`);
}

async function show() {
  const ticket = ++rendering;
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  pageSubs.forEach((off) => off());
  pageSubs = [];
  const { name, params } = route();
  const section = { case: "cases", lot: "lots" }[name] || name;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.route === section);
  const main = document.getElementById("page");
  const root = h("div", { class: `page page-${name}` });
  main.replaceChildren(root);
  document.body.dataset.page = name;
  document.body.dataset.ready = "0";
  try {
    if (name !== "login" && me === null) await boot();
    const mod = await pageModule(name);
    const ctx = {
      api,
      me,
      members,
      params,
      on: (kind, fn) => {
        const off = live.on(kind, fn);
        pageSubs.push(off);
        return off;
      },
    };
    const done = await mod.render(root, ctx);
    if (ticket === rendering) cleanup = done;
    else if (typeof done === "function") done();
  } catch (err) {
    if (err instanceof Unauthorized) return;
    root.append(h("p", { class: "error" }, `This page could not be loaded: ${err.message}`));
    console.warn(err);
  }
  if (ticket === rendering) {
    document.body.dataset.ready = "1";
    if (!performance.getEntriesByName("godown-ready").length) performance.mark("godown-ready");
  }
}

async function boot() {
  await loadIdentity();
  const status = await api("/v1/status");
  live.start(Number(status.height) + 1);
}

// After a login the identity and the stream are read again with the new token.
export async function relogin() {
  me = null;
  await boot();
  live.restart();
}

window.addEventListener("hashchange", show);
live.on("resync", () => show()); // the stream restarted at the head: the page reads everything again
show();
