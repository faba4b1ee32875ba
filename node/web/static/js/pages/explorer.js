// The explorer: blocks with their commit certificates, a transaction by id, a state entry
// with its Merkle proof — each checked in this browser (verify.js) against headers that
// 2f+1 validators signed, and shown as verified or not, never on the node's word.

// The verifier's libraries are loaded by this page only, so the other pages stay light.
const VENDOR = ["msgpack.min.js", "nacl-fast.min.js", "sha256.min.js"];

function script(file) {
  if (document.querySelector(`script[data-vendor="${file}"]`)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const tag = document.createElement("script");
    tag.src = `vendor/${file}`;
    tag.dataset.vendor = file;
    tag.onload = resolve;
    tag.onerror = () => reject(new Error(`cannot load ${file}`));
    document.head.append(tag);
  });
}

let LightClient, Unverified, hex, unhex, decode;

/** A decoded msgpack value as JSON shows it: byte strings as lowercase hex. */
function plainJson(v) {
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(plainJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainJson(x)]));
  return v;
}

async function verifier() {
  for (const file of VENDOR) await script(file);
  ({ LightClient, Unverified, hex, unhex, decode } = await import("../verify.js"));
}

const KINDS = { member: "m/", case: "c/", lot: "l/", device: "d/", alarm: "a/", rating: "r/", proposal: "p/" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function verdict(result) {
  if (result.ok) {
    const c = result.cert;
    return el(
      "p",
      { class: "verdict verified", "data-verified": "true" },
      `✔ verified: certified at height ${c.height} by ${c.signers} of ${c.validators} validators (quorum ${c.quorum})`,
    );
  }
  return el("p", { class: "verdict unverified", "data-verified": "false" }, `✘ not verified: ${result.reason}`);
}

async function checked(promise) {
  try {
    const { answer, cert } = await promise;
    return { ok: true, answer, cert };
  } catch (err) {
    return { ok: false, reason: err instanceof Unverified ? err.message : `could not check (${err.message})` };
  }
}

const short = (h) => (h ? `${h.slice(0, 12)}…` : "");
const when = (ms) => new Date(ms).toISOString().replace("T", " ").replace(".000Z", "Z");

function pretty(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export async function render(root, ctx) {
  await verifier();
  const genesis = await ctx.api("/v1/genesis");
  const light = new LightClient((path) => ctx.api(path), genesis);
  const out = el("section", { id: "explorer-result", class: "card" });

  async function showBlock(height) {
    out.replaceChildren(el("p", {}, `checking block ${height}…`));
    const doc = await ctx.api(`/v1/blocks/${height}`);
    const result = await checked(light.block(Number(height)).then((r) => ({ answer: doc, cert: r.cert })));
    const votes = doc.commit ? doc.commit.votes : [];
    out.replaceChildren(
      el("h3", {}, `Block ${doc.height}`),
      verdict(result),
      el(
        "table",
        { class: "kv" },
        ...Object.entries({
          hash: doc.hash,
          time: when(doc.header.time_ms),
          proposer: doc.header.proposer,
          view: doc.header.view,
          transactions: doc.txs.length,
          txs_root: doc.header.txs_root,
          state_root: `${doc.header.state_root} (after height ${doc.height - 1})`,
          results_root: doc.header.results_root,
        }).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "mono" }, v))),
      ),
      el("h4", {}, `Commit certificate: ${votes.length} votes (view ${doc.commit ? doc.commit.view : "—"})`),
      el(
        "table",
        { class: "list" },
        el("tr", {}, el("th", {}, "validator"), el("th", {}, "signature")),
        ...votes.map(([v, sig]) => el("tr", {}, el("td", { class: "mono" }, v), el("td", { class: "mono" }, short(sig)))),
      ),
      el("h4", {}, "Transactions"),
      el(
        "table",
        { class: "list" },
        el("tr", {}, el("th", {}, "#"), el("th", {}, "id"), el("th", {}, "type"), el("th", {}, "sender"), el("th", {}, "result")),
        ...doc.txs.map((t, i) =>
          el(
            "tr",
            {},
            el("td", {}, i),
            el("td", { class: "mono" }, el("a", { href: "#", onclick: (e) => (e.preventDefault(), showTx(t.tx_id)) }, short(t.tx_id))),
            el("td", {}, t.type),
            el("td", { class: "mono" }, short(t.sender)),
            el("td", {}, t.result),
          ),
        ),
      ),
    );
  }

  async function showTx(txId) {
    out.replaceChildren(el("p", {}, `checking transaction ${txId}…`));
    const result = await checked(light.tx(txId));
    const doc = result.ok ? result.answer : await ctx.api(`/v1/txs/${txId}`);
    out.replaceChildren(el("h3", {}, `Transaction ${short(txId)}`), verdict(result), pretty(doc));
  }

  async function showState(keyHex) {
    out.replaceChildren(el("p", {}, `checking state entry 0x${keyHex}…`));
    const result = await checked(light.state(keyHex));
    const doc = result.ok ? result.answer : await ctx.api(`/v1/state/0x${keyHex}`);
    const depth = doc.proof ? doc.proof.siblings.length : 0;
    let shown = doc.value; // the node's decoding, unless the checked bytes decode themselves
    try {
      if (doc.value_raw) shown = plainJson(decode(unhex(doc.value_raw)));
    } catch {
      shown = doc.value;
    }
    out.replaceChildren(
      el("h3", {}, `State entry ${new TextDecoder().decode(unhex(keyHex))}`),
      verdict(result),
      el("p", {}, doc.exists ? "present" : "absent (the proof shows it is not in the state)"),
      el("p", {}, `Merkle proof: ${depth} level${depth === 1 ? "" : "s"} of the 16-way tree, against state root ${short(doc.state_root)} after height ${doc.height}`),
      pretty(shown),
    );
  }

  const height = el("input", { id: "explorer-height", placeholder: "height or latest", size: "12" });
  const txId = el("input", { id: "explorer-tx", placeholder: "transaction id (hex)", size: "66" });
  const kind = el("select", { id: "explorer-kind" }, ...Object.keys(KINDS).map((k) => el("option", { value: k }, k)));
  const ident = el("input", { id: "explorer-key", placeholder: "id", size: "44" });
  const go = (fn) => (e) => {
    e.preventDefault();
    fn().catch((err) => out.replaceChildren(el("p", { class: "verdict unverified" }, `✘ ${err.message}`)));
  };
  const forms = el(
    "section",
    { class: "card explorer-forms" },
    el("h2", {}, "Explorer"),
    el("p", { class: "hint" }, "Every answer is checked here, in your browser, against validator signatures from the genesis."),
    el(
      "form",
      { id: "form-block", onsubmit: go(async () => showBlock(height.value === "latest" || !height.value ? (await ctx.api("/v1/status")).height : height.value)) },
      el("label", {}, "Block ", height),
      el("button", { type: "submit" }, "Check block"),
    ),
    el("form", { id: "form-tx", onsubmit: go(() => showTx(txId.value.trim())) }, el("label", {}, "Transaction ", txId), el("button", { type: "submit" }, "Check transaction")),
    el(
      "form",
      { id: "form-state", onsubmit: go(() => showState(hex(new TextEncoder().encode(KINDS[kind.value] + ident.value.trim())))) },
      el("label", {}, "State entry ", kind, " ", ident),
      el("button", { type: "submit" }, "Check state entry"),
    ),
  );

  const recent = el("section", { class: "card" }, el("h3", {}, "Recent blocks"));
  async function listRecent() {
    let blocks;
    try {
      blocks = (await ctx.api("/v1/blocks?limit=15")).blocks;
    } catch {
      return; // an older node without the list endpoint: the forms still work
    }
    recent.replaceChildren(
      el("h3", {}, "Recent blocks"),
      el(
        "table",
        { class: "list" },
        el("tr", {}, el("th", {}, "height"), el("th", {}, "time"), el("th", {}, "txs"), el("th", {}, "signers"), el("th", {}, "hash")),
        ...blocks.map((b) =>
          el(
            "tr",
            {},
            el("td", {}, el("a", { href: "#", onclick: (e) => (e.preventDefault(), showBlock(b.height)) }, b.height)),
            el("td", {}, when(b.time_ms)),
            el("td", {}, b.tx_count),
            el("td", {}, b.signers),
            el("td", { class: "mono" }, short(b.hash)),
          ),
        ),
      ),
    );
  }
  root.replaceChildren(forms, out, recent);
  await listRecent();
  const off = ctx.on ? ctx.on("block", () => listRecent()) : null;
  // #/explorer/blocks/H, #/explorer/txs/ID, #/explorer/state/KEYHEX (links from the other pages)
  const [what, arg] = ((ctx.params && ctx.params.path) || "").split("/");
  if (what === "txs" && arg) await showTx(arg);
  else if (what === "state" && arg) await showState(arg);
  else if (what === "blocks" && arg) await showBlock(arg);
  return () => off && off();
}
