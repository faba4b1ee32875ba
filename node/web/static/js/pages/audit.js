// Audit: the node replays its chain from genesis with `godown audit`'s checks and the page
// shows the report. Reading only: nothing is submitted to the chain.

import { badge, fields, h, num, section } from "../dom.js";

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

function reportView(report, ms) {
  const ok = report.ok;
  const extra = Object.entries(report).filter(([k]) => !["ok", "blocks", "txs", "problem"].includes(k));
  return h(
    "div",
    { class: ok ? "audit ok" : "audit bad", "data-ok": ok ? "1" : "0" },
    h("p", {}, ok ? badge("everything verifies", "ok") : badge("problem found", "bad")),
    fields([
      ["blocks replayed", num(report.blocks)],
      ["transactions", num(report.txs)],
      ["problem", report.problem ?? "none"],
      ["took", `${(ms / 1000).toFixed(1)} s`],
      ...extra.map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]),
    ]),
  );
}
