// Audit: the node replays its chain from genesis with `godown audit`'s checks and the page
// shows the report. Reading only: nothing is submitted to the chain.

import { badge, fields, h, num, section, table } from "../dom.js";

export async function render(root, ctx) {
  const out = h("div", { id: "audit-report" });
  const button = h("button", { id: "run-audit" }, "Run the audit");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "replaying the chain from genesis…"));
    const started = performance.now();
    try {
      const report = await ctx.api("/v1/audit", { method: "POST" });
      out.replaceChildren(reportView(report, performance.now() - started));
    } catch (err) {
      out.replaceChildren(h("p", { class: "error" }, `audit not run: ${err.message}`));
    } finally {
      button.disabled = false;
    }
  });
  root.append(
    h("h1", {}, "Audit"),
    section(
      "Replay from genesis",
      h("p", {}, "This node re-executes every block from genesis, checks each commit certificate, state root and result, and reports the first problem if any."),
      button,
      out,
    ),
  );
}

const LABELS = [
  ["blocks", "blocks replayed"],
  ["txs", "transactions"],
  ["signatures_checked", "signatures checked"],
  ["certificates_checked", "commit certificates checked"],
  ["rejected_txs", "transactions rejected (as recorded)"],
  ["state_root", "state root at the head"],
  ["genesis_hash", "genesis hash"],
  ["first_bad_height", "first bad height"],
  ["problem", "problem"],
  ["seconds", "replay time (s)"],
  ["tx_per_s", "replayed tx/s"],
];

function reportView(report, ms) {
  const ok = report.ok;
  const value = (v) => (v === null || v === undefined ? "none" : typeof v === "number" ? num(v) : String(v));
  const results = Object.entries(report.results || {}).sort((a, b) => b[1] - a[1]);
  return h(
    "div",
    { class: ok ? "audit ok" : "audit bad", "data-ok": ok ? "1" : "0" },
    h("p", {}, ok ? badge("everything verifies", "ok") : badge("problem found", "bad"), ` — answered in ${(ms / 1000).toFixed(1)} s`),
    h(
      "div",
      { class: "grid" },
      fields(LABELS.filter(([k]) => k in report).map(([k, label]) => [label, value(report[k])])),
      table([["result code", ([code]) => badge(code, code === "ok" ? "ok" : "bad")], ["transactions", ([, n]) => num(n)]], results, "no transaction"),
    ),
  );
}
