// A lot: its quantity over time, its devices and each one's readings as a chart (opened
// when this node opens its member's reports, else shown sealed with its recipients), and
// the alarms on it. New reports and alarms appear live.

import { lineChart, timeLabel } from "../chart.js";
import { badge, debounced, fields, h, link, memberName, num, section, short, table, when } from "../dom.js";
import { alarmColumns } from "./overview.js";
import { deviceColumns } from "./devices.js";

export async function render(root, ctx) {
  const id = ctx.params.id;
  const q = encodeURIComponent(id);
  const head = h("div");
  const history = h("div", { class: "chart-box", id: "lot-history" });
  const devices = h("div");
  const readings = h("div", { id: "lot-readings" });
  const alarms = h("div", { id: "lot-alarms" });
  root.append(
    h("h1", {}, `Lot ${id}`),
    h("div", { class: "grid" }, head, section("Quantity held over time", history)),
    section("Readings", readings),
    section("Alarms on this lot", alarms),
    section("Devices watching its zone", devices),
  );

  const loadLot = async () => {
    const lot = await ctx.api(`/v1/lots/${q}`);
    head.replaceChildren(
      section(
        `${lot.commodity}: ${num(lot.quantity - lot.released)} ${lot.unit} held`,
        fields([
          ["warehouse", memberName(ctx, lot.warehouse)],
          ["zone", lot.zone],
          ["owner", memberName(ctx, lot.owner)],
          ["received", `${num(lot.quantity)} ${lot.unit}`],
          ["released", num(lot.released)],
          ["outbound reported", num(lot.outbound)],
          ["case", lot.case ? link(`#/cases/${encodeURIComponent(lot.case)}`, lot.case) : "—"],
          ["goods", lot.intact ? badge("intact", "ok") : badge("breached", "bad")],
          ["received on", when(lot.received_ms)],
        ]),
      ),
    );
    const doc = await ctx.api(`/v1/lots/${q}/history`);
    const pts = doc.points.map((p) => [p.time_ms, p.quantity]);
    history.replaceChildren(lineChart([{ name: `quantity (${lot.unit})`, points: pts }], { width: 560, height: 220, step: true, zero: true, xLabel: timeLabel }));
  };
  const loadDevices = async () => {
    const doc = await ctx.api(`/v1/devices?lot=${q}&limit=100`);
    devices.replaceChildren(table(deviceColumns(ctx), doc.devices, "no device watches this lot"));
  };
  const loadReports = async () => {
    const doc = await ctx.api(`/v1/reports?lot=${q}&limit=500`);
    readings.replaceChildren(...readingsByDevice(ctx, doc.reports));
    readings.dataset.count = String(doc.reports.length);
  };
  const loadAlarms = async () => {
    const doc = await ctx.api(`/v1/alarms?lot=${q}&limit=100`);
    alarms.replaceChildren(table(alarmColumns(ctx), doc.alarms, "no alarm on this lot"));
    alarms.dataset.count = String(doc.alarms.length);
  };
  await Promise.all([loadLot(), loadDevices(), loadReports(), loadAlarms()]);
  const reports = debounced(loadReports, 250);
  const lotAgain = debounced(loadLot, 250);
  const alarmsAgain = debounced(() => Promise.all([loadAlarms(), loadDevices()]), 250);
  ctx.on("tx", (ev) => {
    if (ev.type === "device.report") reports();
  });
  ctx.on("alarm", (ev) => {
    if (ev.lot === id) {
      alarmsAgain();
      lotAgain();
    }
  });
  ctx.on("case", (ev) => ev.lot === id && lotAgain());
  ctx.on("block", (ev) => ev.txs && lotAgain());
}

function readingsByDevice(ctx, reports) {
  if (!reports.length) return [h("p", { class: "muted" }, "no report yet")];
  const byDevice = new Map();
  for (const r of reports.slice().reverse()) {
    if (!byDevice.has(r.device)) byDevice.set(r.device, []);
    byDevice.get(r.device).push(r);
  }
  const out = [];
  for (const [device, list] of byDevice) {
    const opened = list.filter((r) => r.opened && r.data);
    const box = h("div", { class: "device-readings", "data-device": device, "data-count": list.length });
    box.append(h("h3", {}, `Device ${short(device, 16)} — ${list.length} reports, last ${when(list[list.length - 1].time_ms)}`));
    if (opened.length) {
      const series = numericSeries(opened);
      box.append(lineChart(series, { width: 900, xLabel: timeLabel }));
    } else {
      const who = [...new Set(list.flatMap((r) => r.recipients))].map((x) => memberName(ctx, x)).join(", ");
      box.append(h("p", { class: "sealed" }, `sealed, recipients: ${who || "none"}`));
    }
    const latest = list.slice(-8).reverse();
    box.append(
      table(
        [
          ["height", (r) => num(r.height)],
          ["time", (r) => when(r.time_ms)],
          ["seq", (r) => r.seq],
          ["kind", (r) => r.kind],
          ["quantity", (r) => num(r.quantity)],
          ["data", (r) => (r.opened && r.data ? summary(r.data) : h("span", { class: "sealed" }, "sealed"))],
          ["tx", (r) => h("span", { "data-tx": r.tx_id }, short(r.tx_id, 12))],
          ["result", (r) => badge(r.result, r.result === "ok" ? "ok" : "bad")],
        ],
        latest,
      ),
    );
    out.push(box);
  }
  return out;
}

function numericSeries(reports) {
  const names = new Set();
  for (const r of reports) for (const [k, v] of Object.entries(r.data)) if (typeof v === "number" && k !== "seq") names.add(k);
  return [...names].map((name) => ({
    name: reports[0].data.unit && name === "reading" ? `${name} (${reports[0].data.unit})` : name,
    points: reports.filter((r) => typeof r.data[name] === "number").map((r) => [r.time_ms, r.data[name]]),
  }));
}

function summary(data) {
  return Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
}


