// Checking the node's answers in the browser (docs/protocol.md), so that the explorer
// shows an answer as verified only when 2f+1 validators certified it, whatever the bytes
// that reached the page. The same rules as node/client/verify.py, written from the spec.
// Uses the vendored globals MessagePack, nacl and sha256 (static/vendor/README.md).

const MP = globalThis.MessagePack;
const nacl = globalThis.nacl;
const sha = globalThis.sha256;

export class Unverified extends Error {}

export function unhex(text) {
  if (typeof text !== "string" || text.length % 2 || /[^0-9a-f]/.test(text)) throw new Unverified("not lowercase hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
  return out;
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export const sha256 = (bytes) => new Uint8Array(sha.arrayBuffer(bytes));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** §1: msgpack, bin for bytes, map keys in ascending order. */
export const canonical = (value) => MP.encode(value, { sortKeys: true });

/** §1's value model: nil, bool, integers, str, bin, arrays, maps; at most 32 levels. */
function plain(v, depth = 0) {
  if (depth > 32) return false;
  if (v === null || typeof v === "boolean" || typeof v === "string" || v instanceof Uint8Array) return true;
  if (typeof v === "number") return Number.isInteger(v);
  if (Array.isArray(v)) return v.every((x) => plain(x, depth + 1));
  if (Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).every((x) => plain(x, depth + 1));
  return false; // extension types, and anything else msgpack can carry
}

/** §1: strict decoding — bytes that do not re-encode identically are refused. */
export function decode(bytes) {
  let value;
  try {
    value = MP.decode(bytes);
  } catch (err) {
    throw new Unverified(`not msgpack (${err.message})`);
  }
  if (!plain(value) || !equal(canonical(value), bytes)) throw new Unverified("not canonical msgpack");
  return value;
}

/** §3: RFC 6962 shape, the odd last node promoted, sha256("") when empty. */
export function merkleRoot(leaves) {
  if (!leaves.length) return sha256(new Uint8Array());
  let level = leaves.map((leaf) => sha256(concat(Uint8Array.of(0), leaf)));
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(sha256(concat(Uint8Array.of(1), level[i], level[i + 1])));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

/** §3: the block's header and hash, once its txs_root matches its transactions. */
export function checkBlock(raw) {
  const block = decode(raw);
  if (!equal(merkleRoot(block.txs), block.header.txs_root)) throw new Unverified("txs_root does not match");
  return { block, header: block.header, hash: sha256(canonical(block.header)) };
}

export const quorum = (n) => n - Math.floor((n - 1) / 3);

/** §4: how many distinct validators signed the commit vote; refuses below the quorum. */
export function certify(commitRaw, header, blockHash, validators) {
  const commit = decode(commitRaw);
  if (commit.chain_id !== header.chain_id || commit.height !== header.height || !equal(commit.block_hash, blockHash))
    throw new Unverified(`the certificate is for another block than height ${header.height}`);
  const message = canonical({
    block_hash: commit.block_hash,
    chain_id: commit.chain_id,
    height: commit.height,
    kind: "commit",
    view: commit.view,
  });
  const good = new Set();
  for (const [id, sig] of commit.votes) {
    const pub = validators.get(id);
    if (pub && !good.has(id) && nacl.sign.detached.verify(message, sig, pub)) good.add(id);
  }
  const n = validators.size;
  if (good.size < quorum(n)) throw new Unverified(`${good.size} valid signatures at height ${header.height}, ${quorum(n)} needed`);
  return { height: header.height, signers: good.size, validators: n, quorum: quorum(n) };
}

const nibble = (path, d) => (d % 2 ? path[d >> 1] & 15 : path[d >> 1] >> 4);

/** The 16-way state tree's proof (docs/snapshot.md §1): does `proof` lead from `value`
 * (null: absent) under `key` to `root`? */
export function proves(root, key, value, siblings, bucket) {
  const path = sha256(key);
  const depth = siblings.length;
  if (depth > 64 || siblings.some((row) => row.length !== 480)) return false;
  let h;
  if (bucket === null) {
    if (value !== null) return false;
    h = new Uint8Array(32);
  } else {
    if (!bucket.length || bucket.length % 64 || bucket.length > 8 * 64) return false;
    let found = null;
    for (let o = 0; o < bucket.length; o += 64) {
      const q = bucket.subarray(o, o + 32);
      for (let d = 0; d < depth; d++) if (nibble(q, d) !== nibble(path, d)) return false;
      if (equal(q, path)) found = bucket.subarray(o + 32, o + 64);
    }
    if (found === null ? value !== null : value === null || !equal(sha256(value), found)) return false;
    h = sha256(concat(Uint8Array.of(0), bucket));
  }
  for (let d = depth - 1; d >= 0; d--) {
    const row = siblings[d];
    const cut = nibble(path, d) * 32;
    h = sha256(concat(Uint8Array.of(1), row.subarray(0, cut), h, row.subarray(cut)));
  }
  return equal(h, root);
}

const EMPTY_TXS_ROOT = sha256(new Uint8Array());

/** Answers from one node, each checked against a certified header or refused
 * (`Unverified`). `get(path)` fetches JSON from the node; `genesis` is its document. */
export class LightClient {
  constructor(get, genesis, waitMs = 5000) {
    this.get = get;
    this.genesis = genesis;
    this.waitMs = waitMs;
    this.changes = []; // [after height, Map id → key], each checked
    this.followed = false;
  }

  validatorsAt(height) {
    let chosen = new Map(this.genesis.validators.map((v) => [v.node_id, unhex(v.node_pub)]));
    for (const [after, set] of this.changes) if (height > after) chosen = set;
    return chosen;
  }

  async followChanges() {
    const doc = await this.get("/v1/validators/changes");
    if (!doc.complete) throw new Unverified("this node lacks the proof of a validator-set change; ask another");
    for (const change of doc.changes.slice(this.changes.length)) {
      const e = change.entry;
      const key = unhex(e.key);
      const value = unhex(e.value);
      const root = unhex(e.state_root);
      const ok = proves(root, key, value, e.proof.siblings.map(unhex), e.proof.bucket === null ? null : unhex(e.proof.bucket));
      const scheduled = decode(value);
      if (!ok || new TextDecoder().decode(key) !== "g/next-validators" || scheduled.approved_height !== e.height)
        throw new Unverified(`the validator change at height ${e.height} does not hold`);
      const { header } = await this.certifiedBlock(e.height + 1);
      if (!equal(header.state_root, root)) throw new Unverified(`height ${e.height + 1} certifies another state`);
      this.changes.push([scheduled.effective_height, new Map(scheduled.validators.map((v) => [v.node_id, v.node_pub]))]);
    }
    this.followed = true;
  }

  async certifiedBlock(height) {
    const doc = await this.get(`/v1/blocks/${height}`);
    const { block, header, hash } = checkBlock(unhex(doc.raw));
    if (header.chain_id !== this.genesis.chain_id || header.height !== height)
      throw new Unverified(`the node answered another block for height ${height}`);
    if (!doc.commit_raw) throw new Unverified(`block ${height} has no certificate yet`);
    return { block, header, cert: certify(unhex(doc.commit_raw), header, hash, this.validatorsAt(height)) };
  }

  async block(height) {
    if (!this.followed) await this.followChanges();
    return this.certifiedBlock(height);
  }

  /** A committed transaction: in a certified block at its index, with its result
   * certified by the next header's results_root. */
  async tx(txId) {
    const answer = await this.get(`/v1/txs/${txId}`);
    if (answer.status !== "committed") throw new Unverified(`transaction ${txId} is not committed yet`);
    const { block } = await this.block(answer.height);
    const raw = block.txs[answer.index];
    if (!raw || hex(sha256(decode(raw).tx)) !== txId)
      throw new Unverified(`block ${answer.height} does not hold ${txId} at index ${answer.index}`);
    if (block.results[answer.index] !== answer.result)
      throw new Unverified(`the node reports ${answer.result}, the block ${block.results[answer.index]}`);
    const next = await this.certifyingNext(answer.height);
    const want = merkleRoot(block.results.map((r) => new TextEncoder().encode(r)));
    if (!equal(next.header.results_root, want)) throw new Unverified(`height ${answer.height + 1} certifies other results`);
    return { answer, cert: next.cert };
  }

  async certifyingNext(height) {
    const deadline = Date.now() + this.waitMs;
    while ((await this.get("/v1/status")).height <= height) {
      if (Date.now() > deadline) throw new Unverified(`nothing certifies height ${height} yet`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return this.block(height + 1);
  }

  /** A state entry (key as hex) proven against a root a certified header carries. */
  async state(keyHex) {
    const answer = await this.get(`/v1/state/0x${keyHex}`);
    const root = unhex(answer.state_root);
    const value = answer.value_raw === null ? null : unhex(answer.value_raw);
    const p = answer.proof;
    if (!proves(root, unhex(keyHex), value, p.siblings.map(unhex), p.bucket === null ? null : unhex(p.bucket)))
      throw new Unverified("the Merkle proof does not lead from the value to the state root");
    const h = answer.height;
    if (h > 0) {
      const { header, cert } = await this.block(h);
      if (equal(header.txs_root, EMPTY_TXS_ROOT) && equal(header.state_root, root)) return { answer, cert };
    }
    const { header, cert } = await this.certifyingNext(h);
    if (!equal(header.state_root, root)) throw new Unverified(`height ${h + 1} certifies another state root`);
    return { answer, cert };
  }
}
