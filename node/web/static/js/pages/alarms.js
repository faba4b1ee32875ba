// Alarms: open ones first, then resolved; a new alarm appears as soon as its block commits.

import { debounced, h, listTable, section } from "../dom.js";
import { alarmColumns } from "./overview.js";

export async function render(root, ctx) {
  const open = h("div", { id: "open-alarms" });
  const resolved = h("div");
  const lot = h("input", { name: "lot", placeholder: "lot", size: 12 });
  const kase = h("input", { name: "case", placeholder: "case", size: 12 });
  const path = (state) => {
    const q = new URLSearchParams({ state, limit: "50" });
    if (lot.value.trim()) q.set("lot", lot.value.trim());
    if (kase.value.trim()) q.set("case", kase.value.trim());
    return `/v1/alarms?${q}`;
  };
  const load = async () => {
    const [o, r] = await Promise.all([
      listTable(ctx, path("open"), "alarms", alarmColumns(ctx), "no open alarm"),
      listTable(ctx, path("resolved"), "alarms", alarmColumns(ctx), "no resolved alarm"),
    ]);
    open.replaceChildren(o);
    resolved.replaceChildren(r);
  };
  lot.addEventListener("change", load);
  kase.addEventListener("change", load);
  root.append(
    h("h1", {}, "Alarms"),
    h("form", { class: "filters", onsubmit: (e) => (e.preventDefault(), load()) }, lot, kase),
    section("Open", open),
    section("Resolved", resolved),
  );
  await load();
  ctx.on("alarm", debounced(load, 200));
}
