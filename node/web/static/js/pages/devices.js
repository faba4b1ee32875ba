// Devices: accepted or suspended, last heartbeat and how long each has been silent;
// a warehouse's own devices first.

import { badge, debounced, duration, h, listTable, memberName, section, short, when } from "../dom.js";

export function deviceColumns(ctx) {
  return [
    ["device", (d) => h("span", { title: d.id }, short(d.id, 14))],
    ["kind", (d) => d.kind],
    ["warehouse", (d) => memberName(ctx, d.warehouse)],
    ["zone", (d) => d.zone],
    ["state", (d) => badge(d.state, d.state === "accepted" ? "ok" : d.state === "suspended" ? "bad" : "muted")],
    ["last heartbeat", (d) => (d.seq >= 0 ? when(d.last_seen_ms) : "never")],
    ["silent for", (d) => duration(d.silent_ms)],
    ["next due", (d) => when(d.hb_due)],
    ["alarm", (d) => (d.alarm ? badge("heartbeat", "bad") : "—")],
  ];
}

export async function render(root, ctx) {
  const m = ctx.me.member;
  const state = h("select", { name: "state" }, ["", "registered", "accepted", "suspended", "retired"].map((s) => h("option", { value: s }, s || "any state")));
  const zone = h("input", { name: "zone", placeholder: "zone", size: 10 });
  const mine = h("div");
  const all = h("div");
  const path = (extra) => {
    const q = new URLSearchParams({ limit: "100", ...extra });
    if (state.value) q.set("state", state.value);
    if (zone.value.trim()) q.set("zone", zone.value.trim());
    return `/v1/devices?${q}`;
  };
  const load = async () => {
    if (m && m.role === "warehouse") {
      mine.replaceChildren(section(`Devices of ${m.name}`, await listTable(ctx, path({ warehouse: m.id }), "devices", deviceColumns(ctx), "none")));
    }
    all.replaceChildren(section("All devices", await listTable(ctx, path({}), "devices", deviceColumns(ctx), "no device matches")));
  };
  state.addEventListener("change", load);
  zone.addEventListener("change", load);
  root.append(h("h1", {}, "Devices"), h("form", { class: "filters", onsubmit: (e) => (e.preventDefault(), load()) }, state, zone), mine, all);
  await load();
  const again = debounced(load, 1000);
  ctx.on("tx", (ev) => ev.type.startsWith("device.") && again());
  ctx.on("alarm", again);
}
