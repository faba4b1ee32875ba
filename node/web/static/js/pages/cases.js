// Cases: the member's own cases first (a bank's, a borrower's…), then every case, with filters.

import { debounced, h, listTable, section } from "../dom.js";
import { caseColumns } from "./overview.js";

const STATES = ["", "applied", "pledged", "disbursed", "overdue", "repaid", "closed", "defaulted", "liquidated", "active", "ending", "ended"];

export async function render(root, ctx) {
  const m = ctx.me.member;
  const state = h("select", { name: "state" }, STATES.map((s) => h("option", { value: s }, s || "any state")));
  const kind = h("select", { name: "kind" }, ["", "case", "supervision"].map((k) => h("option", { value: k }, k || "any kind")));
  const party = h("input", { name: "party", placeholder: "party id", size: 24 });
  const mine = h("div");
  const all = h("div");
  const query = (extra) => {
    const q = new URLSearchParams({ limit: "50", ...extra });
    if (state.value) q.set("state", state.value);
    if (kind.value) q.set("kind", kind.value);
    return `/v1/cases?${q}`;
  };
  const load = async () => {
    const own = m && m.role !== "auditor" ? await listTable(ctx, query({ party: m.id }), "cases", caseColumns(ctx), "none of yours") : null;
    mine.replaceChildren(...(own ? [section(`Cases of ${m.name}`, own)] : []));
    const rest = party.value.trim() ? { party: party.value.trim() } : {};
    all.replaceChildren(section("All cases", await listTable(ctx, query(rest), "cases", caseColumns(ctx), "no case matches")));
  };
  for (const input of [state, kind]) input.addEventListener("change", load);
  party.addEventListener("change", load);
  root.append(h("h1", {}, "Cases"), h("form", { class: "filters", onsubmit: (e) => (e.preventDefault(), load()) }, state, kind, party), mine, all);
  await load();
  ctx.on("case", debounced(load, 500));
  ctx.on("repayment", debounced(load, 500));
}
