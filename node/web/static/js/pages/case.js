// A case: state, amount, repaid, maturity, freed quantity, extension history, and every
// transaction of the case with the block that holds it.

import { badge, debounced, fields, h, link, memberName, num, section, short, table, when } from "../dom.js";

export async function render(root, ctx) {
  const id = ctx.params.id;
  const head = h("div");
  const ext = h("div");
  const txs = h("div");
  root.append(h("h1", {}, `Case ${id}`), head, section("Extension history", ext), section("Every transaction of the case", txs));
  const load = async () => {
    const c = await ctx.api(`/v1/cases/${encodeURIComponent(id)}`);
    const bank = c.kind === "case" ? c.bank : c.supervisor;
    const title = `${c.kind === "case" ? "Financing case" : "Supervision"} — ${c.state}`;
    head.replaceChildren(
      h(
        "div",
        { class: "grid" },
        section(
          title,
          fields([
            ["state", badge(c.state)],
            [c.kind === "case" ? "bank" : "supervisor", memberName(ctx, bank)],
            [c.kind === "case" ? "borrower" : "party", memberName(ctx, c.owner || c.party)],
            ["warehouse", memberName(ctx, c.warehouse)],
            ["insurer", c.insurer ? memberName(ctx, c.insurer) : "—"],
            ["guarantor", c.guarantor ? memberName(ctx, c.guarantor) : "—"],
            ["lot", link(`#/lots/${encodeURIComponent(c.lot)}`, c.lot)],
            ["opened", when(c.opened_ms)],
          ]),
        ),
        section(
          "Money and goods",
          fields([
            ["amount", num(c.amount)],
            ["repaid", num(c.repaid)],
            ["outstanding", num(Math.max(0, c.amount - c.repaid))],
            [c.kind === "case" ? "maturity" : "end", when(c.maturity_ms ?? c.end_ms)],
            ["approved extensions", num(c.extensions)],
            ["pledged quantity", num(c.pledged_quantity)],
            ["ordered released", num(c.ordered)],
            ["freed (released)", num(c.released)],
            ["outbound reported", num(c.outbound)],
          ]),
        ),
      ),
    );
    const pending = c.extension
      ? h("p", {}, `pending: new ${c.kind === "case" ? "maturity" : "end"} ${when(c.extension.new_maturity_ms ?? c.extension.new_end_ms)}, consents: ${c.extension.consents.map((x) => memberName(ctx, x)).join(", ") || "none yet"}`)
      : h("p", { class: "muted" }, "no extension pending");
    const doc = await ctx.api(`/v1/txs?case=${encodeURIComponent(id)}&limit=500`);
    const steps = doc.txs.filter((t) => t.type.includes("extend"));
    ext.replaceChildren(pending, table(extColumns(ctx), steps, "no extension requested"));
    const more = doc.next ? h("p", { class: "muted" }, "the latest 500 transactions") : "";
    txs.replaceChildren(table(txColumns(ctx), doc.txs, "no transaction"), more);
  };
  await load();
  const again = debounced(load, 500);
  ctx.on("case", (ev) => ev.case === id && again());
  ctx.on("extension", (ev) => ev.case === id && again());
  ctx.on("repayment", (ev) => ev.case === id && again());
  ctx.on("release", (ev) => ev.case === id && again());
}

function extColumns(ctx) {
  return [
    ["block", (t) => num(t.height)],
    ["time", (t) => when(t.time_ms)],
    ["step", (t) => t.type],
    ["by", (t) => memberName(ctx, t.sender)],
    ["asked / decided", (t) => (t.body?.approve === undefined ? when(t.body?.new_maturity_ms ?? t.body?.new_end_ms) : t.body.approve ? "approve" : "refuse")],
    ["result", (t) => badge(t.result, t.result === "ok" ? "ok" : "bad")],
  ];
}

export function txColumns(ctx) {
  return [
    ["block", (t) => link(`#/explorer/blocks/${t.height}`, num(t.height))],
    ["#", (t) => t.index],
    ["time", (t) => when(t.time_ms)],
    ["type", (t) => t.type],
    ["sender", (t) => memberName(ctx, t.sender)],
    ["tx", (t) => link(`#/explorer/txs/${t.tx_id}`, short(t.tx_id, 12))],
    ["result", (t) => badge(t.result, t.result === "ok" ? "ok" : "bad")],
  ];
}
