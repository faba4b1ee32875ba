// Lots: a warehouse's own lots first, then every lot.

import { debounced, h, listTable, section } from "../dom.js";
import { lotColumns } from "./overview.js";

export async function render(root, ctx) {
  const m = ctx.me.member;
  const mine = h("div");
  const all = h("div");
  root.append(h("h1", {}, "Lots"), mine, all);
  const load = async () => {
    if (m && m.role === "warehouse") {
      const own = await listTable(ctx, `/v1/lots?warehouse=${encodeURIComponent(m.id)}&limit=50`, "lots", lotColumns(ctx), "none held here");
      mine.replaceChildren(section(`Held by ${m.name}`, own));
    }
    all.replaceChildren(section("All lots", await listTable(ctx, "/v1/lots?limit=50", "lots", lotColumns(ctx), "no lot")));
  };
  await load();
  ctx.on("case", debounced(load, 500));
  ctx.on("alarm", debounced(load, 500));
}
