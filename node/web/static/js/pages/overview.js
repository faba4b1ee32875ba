// Overview: chain height, validators and their health, recent throughput, open alarms,
// and the member's own cases (a bank, insurer, guarantor, borrower) or lots (a warehouse).

import { lineChart, timeLabel } from "../chart.js";
import { badge, debounced, fields, h, link, listTable, memberName, num, section, short, table, when } from "../dom.js";
import { deviceColumns } from "./devices.js";

const WINDOW = 60;

export async function render(root, ctx) {
  const height = h("span", { id: "chain-height", class: "big" }, "…");
  const head = h("div");
  const health = h("div");
  const chart = h("div", { class: "chart-box" });
  const rate = h("p", { class: "muted" });
  const alarms = h("div");
  const mine = h("div");
  root.append(
    h("h1", {}, "Overview"),
    h("div", { class: "grid" }, section("Chain", h("p", {}, "Height ", height), head), section("Validators", health)),
    h("div", { class: "grid" }, section(mineTitle(ctx), mine), section("Open alarms", alarms)),
    section("Recent throughput", rate, chart),
  );
  let blocks = [];

  const drawChart = () => {
    const pts = blocks.slice().reverse().map((b) => [b.time_ms, b.tx_count]);
    chart.replaceChildren(lineChart([{ name: "transactions per block", points: pts }], { width: 900, xLabel: timeLabel, zero: true }));
    if (blocks.length > 1) {
      const span = (blocks[0].time_ms - blocks[blocks.length - 1].time_ms) / 1000;
      const txs = blocks.slice(0, -1).reduce((a, b) => a + b.tx_count, 0);
      rate.textContent = `${num(txs)} transactions in the last ${blocks.length} blocks over ${span.toFixed(1)} s` + (span > 0 ? ` — ${(txs / span).toFixed(1)} tx/s` : "");
    } else rate.textContent = "not enough blocks yet";
  };
  const loadStatus = async () => {
    const s = await ctx.api("/v1/status");
    height.textContent = num(s.height);
    head.replaceChildren(fields([["chain", s.chain_id], ["head", short(s.head_hash, 16)], ["view", s.view], ["state certified", s.state_certified ? "yes" : "not yet"]]));
  };
  const loadHealth = async () => {
    const doc = await ctx.api("/v1/validators/health");
    health.replaceChildren(
      table(
        [
          ["node", (v) => short(v.node_id) + (v.is_self ? " (this node)" : "")],
          ["member", (v) => memberName(ctx, v.member)],
          ["connected", (v) => (v.is_self ? badge("self", "ok") : v.connected ? badge("connected", "ok") : badge("down", "bad"))],
          ["last signed", (v) => num(v.last_signed_height)],
        ],
        doc.validators,
      ),
    );
  };
  const loadAlarms = async () => {
    alarms.replaceChildren(await listTable(ctx, "/v1/alarms?state=open&limit=20", "alarms", alarmColumns(ctx), "no open alarm"));
  };
  const loadMine = async () => {
    mine.replaceChildren(await mineList(ctx));
  };
  const loadBlocks = async () => {
    blocks = (await ctx.api(`/v1/blocks?limit=${WINDOW}`)).blocks;
    drawChart();
  };
  await Promise.all([loadStatus(), loadHealth(), loadAlarms(), loadMine(), loadBlocks()]);

  const refreshHealth = debounced(loadHealth, 2000);
  const refreshAlarms = debounced(loadAlarms);
  const refreshMine = debounced(loadMine, 1000);
  const refreshStatus = debounced(loadStatus, 500);
  ctx.on("block", (ev) => {
    height.textContent = num(ev.height);
    blocks.unshift({ height: ev.height, time_ms: ev.time_ms, tx_count: ev.txs });
    blocks = blocks.slice(0, WINDOW);
    drawChart();
    refreshStatus();
    refreshHealth();
  });
  ctx.on("alarm", refreshAlarms);
  ctx.on("case", refreshMine);
  if (ctx.me.member?.role === "warehouse") ctx.on("tx", (ev) => ev.type.startsWith("device.") && refreshMine());
}

function mineTitle(ctx) {
  const m = ctx.me.member;
  if (!m) return "Cases";
  return m.role === "warehouse" ? `Lots held by ${m.name}` : m.role === "auditor" ? "Cases (read-only)" : `Cases of ${m.name}`;
}

async function mineList(ctx) {
  const m = ctx.me.member;
  if (m && m.role === "warehouse") {
    const q = `warehouse=${encodeURIComponent(m.id)}&limit=20`;
    const [lots, devices] = await Promise.all([
      listTable(ctx, `/v1/lots?${q}`, "lots", lotColumns(ctx).filter(([t]) => t !== "warehouse"), "no lot"),
      listTable(ctx, `/v1/devices?${q}`, "devices", deviceColumns(ctx).filter(([t]) => !["warehouse", "next due", "last heartbeat"].includes(t)), "no device"),
    ]);
    return h("div", {}, lots, h("h3", {}, "Its devices"), devices);
  }
  const party = m && m.role !== "auditor" ? `party=${encodeURIComponent(m.id)}&` : "";
  return listTable(ctx, `/v1/cases?${party}limit=20`, "cases", caseColumns(ctx), "no case");
}

export function alarmColumns(ctx) {
  return [
    ["alarm", (a) => short(a.id, 14)],
    ["kind", (a) => badge(a.kind, "bad")],
    ["lot", (a) => (a.lot ? link(`#/lots/${encodeURIComponent(a.lot)}`, a.lot) : "—")],
    ["case", (a) => (a.case ? link(`#/cases/${encodeURIComponent(a.case)}`, a.case) : "—")],
    ["device", (a) => short(a.device)],
    ["raised", (a) => when(a.raised_ms)],
    ["state", (a) => badge(a.state, a.state === "open" ? "bad" : "ok")],
    ["detail", (a) => a.detail],
  ];
}

export function caseColumns(ctx) {
  return [
    ["case", (c) => link(`#/cases/${encodeURIComponent(c.id)}`, c.id)],
    ["kind", (c) => c.kind],
    ["state", (c) => badge(c.state)],
    ["bank", (c) => memberName(ctx, c.bank || c.supervisor)],
    ["borrower", (c) => memberName(ctx, c.owner || c.party)],
    ["lot", (c) => link(`#/lots/${encodeURIComponent(c.lot)}`, c.lot)],
    ["amount", (c) => num(c.amount)],
    ["repaid", (c) => num(c.repaid)],
    ["maturity", (c) => when(c.maturity_ms || c.end_ms)],
  ];
}

export function lotColumns(ctx) {
  return [
    ["lot", (l) => link(`#/lots/${encodeURIComponent(l.id)}`, l.id)],
    ["commodity", (l) => l.commodity],
    ["held", (l) => `${num(l.quantity - l.released)} of ${num(l.quantity)} ${l.unit}`],
    ["warehouse", (l) => memberName(ctx, l.warehouse)],
    ["owner", (l) => memberName(ctx, l.owner)],
    ["case", (l) => (l.case ? link(`#/cases/${encodeURIComponent(l.case)}`, l.case) : "—")],
    ["intact", (l) => (l.intact ? badge("intact", "ok") : badge("breached", "bad"))],
    ["alarms", (l) => (l.alarms.length ? badge(String(l.alarms.length), "bad") : "0")],
  ];
}
