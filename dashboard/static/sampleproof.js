// custody dashboard: re-checks a sample's proof of completeness (or of
// absence) in the reader's browser, with the browser's own SHA-256 (Web
// Crypto), against the checkpoint shown on the page. The proof format and
// the checks are docs/sample-index.md ("Proof format", "Verifying a
// proof"), the same as Go's sampleindex.Verify; sampleindex/testdata/
// vectors.json is the interop test between the two (dashboard's
// TestBrowserSampleProofVectors). The page is complete without this
// script: the server verified the proof before saying "complete".
"use strict";

(function () {
  const HEADER = "custody/sample-proof/v1\n";
  const MAX_ENTRY = 65536;
  const KEYWORD = "custody-sample-index";
  const ZERO = new Uint8Array(32);

  // ProofError carries kind, the failed check (named like Go's errors:
  // malformed, wrong-sample, wrong-size, bad-map-proof, map-root-mismatch,
  // dropped-entry, added-entry, reordered-entries, bad-consistency,
  // wrong-entry, list-root-mismatch, bad-inclusion, bad-checkpoint).
  class ProofError extends Error {
    constructor(kind, msg) { super(kind + ": " + msg); this.kind = kind; }
  }
  function fail(kind, msg) { throw new ProofError(kind, msg); }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }
  function hex(b) { return Array.from(b, x => x.toString(16).padStart(2, "0")).join(""); }
  function u64(n) {
    const b = new Uint8Array(8);
    for (let i = 7; i >= 0; i--) { b[i] = Number(n & 0xffn); n >>= 8n; }
    return b;
  }
  async function sha256(...parts) {
    let len = 0;
    for (const p of parts) len += p.length;
    const buf = new Uint8Array(len);
    let off = 0;
    for (const p of parts) { buf.set(p, off); off += p.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  }
  const P0 = Uint8Array.of(0x00), P1 = Uint8Array.of(0x01), P10 = Uint8Array.of(0x10), P11 = Uint8Array.of(0x11);
  const nodeHash = (l, r) => sha256(P1, l, r);
  const entryLeafHash = e => sha256(P0, e);
  const listLeafHash = (index, leaf) => sha256(P0, u64(index), leaf);
  const mapLeafHash = (key, n, root) => sha256(P10, key, u64(n), root);
  const mapNodeHash = (l, r) => sha256(P11, l, r);
  const bit = (k, i) => (k[i >> 3] >> (7 - (i & 7))) & 1;
  function popcount(n) { let c = 0; while (n > 0n) { c += Number(n & 1n); n >>= 1n; } return c; }

  function reader(b) {
    let off = 0;
    return {
      bytes(n, what) {
        if (n > b.length - off) fail("malformed", what + " truncated at byte " + off);
        const s = b.subarray(off, off + n);
        off += n;
        return s;
      },
      u8(what) { return this.bytes(1, what)[0]; },
      u16(what) { const s = this.bytes(2, what); return s[0] * 256 + s[1]; },
      u32(what) { const s = this.bytes(4, what); return ((s[0] * 256 + s[1]) * 256 + s[2]) * 256 + s[3]; },
      u64(what) { let n = 0n; for (const x of this.bytes(8, what)) n = (n << 8n) | BigInt(x); return n; },
      hash(what) { return this.bytes(32, what); },
      left() { return b.length - off; },
    };
  }

  // parse parses the proof bytes strictly (ParseProof).
  function parse(data) {
    const r = reader(data);
    const head = r.bytes(HEADER.length, "header");
    if (!equal(head, new TextEncoder().encode(HEADER))) fail("malformed", "does not start with the header " + JSON.stringify(HEADER));
    const p = {};
    const n = r.u8("sample length");
    const sb = r.bytes(n, "sample");
    p.sample = String.fromCharCode(...sb);
    if (!/^[A-Za-z0-9:._-]{1,128}$/.test(p.sample)) fail("malformed", "sample " + JSON.stringify(p.sample) + " is not a valid sample identifier");
    p.size = r.u64("size");
    p.since = r.u64("since");
    p.listSize = r.u64("list size");
    if (p.since > p.size) fail("malformed", "since " + p.since + " is beyond the size " + p.size);
    if (p.listSize > p.size) fail("malformed", "list size " + p.listSize + " is more than the log size " + p.size);
    p.listRoot = p.listSize > 0n ? r.hash("list root") : null;
    p.oldSize = r.u64("old list size");
    if (p.oldSize > p.listSize) fail("malformed", "old list size " + p.oldSize + " is more than the list size " + p.listSize);
    if (p.since === 0n && p.oldSize !== 0n) fail("malformed", "old list size " + p.oldSize + " for a whole-chain proof");
    p.oldRange = [];
    if (p.oldSize > 0n) {
      p.oldLast = { index: r.u64("old last index"), leaf: r.hash("old last leaf hash") };
      const k = popcount(p.oldSize - 1n);
      for (let i = 0; i < k; i++) p.oldRange.push(r.hash("old list range"));
    }
    const c = r.u32("entry count");
    if (c > Math.floor(r.left() / 13)) fail("malformed", "entry count " + c + " is more than the bytes left can hold");
    p.entries = [];
    for (let i = 0; i < c; i++) {
      const index = r.u64("entry index");
      const l = r.u32("entry length");
      if (l === 0 || l > MAX_ENTRY) fail("malformed", "entry " + i + " has length " + l + ", want 1 to " + MAX_ENTRY);
      p.entries.push({ index, data: r.bytes(l, "entry") });
    }
    const h = r.u32("inclusion proof length");
    if (h > Math.floor(r.left() / 32)) fail("malformed", "inclusion proof of " + h + " hashes is longer than the bytes left");
    p.inclusion = [];
    for (let i = 0; i < h; i++) p.inclusion.push(r.hash("inclusion proof"));
    const d = r.u16("map proof depth");
    if (d > 256) fail("malformed", "map proof depth " + d + " is more than 256");
    const bm = r.bytes((d + 7) >> 3, "map proof bitmap");
    if (d % 8 !== 0 && (bm[bm.length - 1] & (0xff >> (d % 8))) !== 0) fail("malformed", "map proof bitmap has padding bits set");
    p.siblings = [];
    for (let i = 0; i < d; i++) {
      if (bm[i >> 3] & (0x80 >> (i & 7))) {
        const s = r.hash("map proof sibling");
        if (equal(s, ZERO)) fail("malformed", "map proof sibling " + i + " is the empty hash but marked non-empty");
        p.siblings.push(s);
      } else {
        p.siblings.push(ZERO);
      }
    }
    p.kind = r.u8("map proof kind");
    if (p.kind === 2) {
      p.otherKey = r.hash("other key");
      p.otherSize = r.u64("other list size");
      p.otherRoot = r.hash("other list root");
      if (p.otherSize === 0n) fail("malformed", "other key's list size is 0");
    } else if (p.kind !== 0 && p.kind !== 1) {
      fail("malformed", "unknown map proof kind " + p.kind);
    }
    if ((p.kind === 1) !== (p.listSize > 0n)) fail("malformed", "map proof kind " + p.kind + " with a list of " + p.listSize + " elements");
    if (r.left() !== 0) fail("malformed", r.left() + " trailing bytes after the map proof");
    return p;
  }

  // mapRoot is MapProof.Root: the root the map proof leads to.
  async function mapRoot(p, key) {
    const d = p.siblings.length;
    if (d > 0 && equal(p.siblings[d - 1], ZERO)) fail("bad-map-proof", "the sibling at the proof's last depth " + d + " is empty");
    let h;
    if (p.kind === 0) {
      h = ZERO;
    } else if (p.kind === 1) {
      h = await mapLeafHash(key, p.listSize, p.listRoot);
    } else {
      if (equal(p.otherKey, key)) fail("bad-map-proof", "absence proved by the leaf of the same key");
      for (let i = 0; i < d; i++) {
        if (bit(p.otherKey, i) !== bit(key, i)) fail("bad-map-proof", "the other key leaves the key's path at depth " + i + ", above the proof's depth " + d);
      }
      h = await mapLeafHash(p.otherKey, p.otherSize, p.otherRoot);
    }
    for (let i = d - 1; i >= 0; i--) {
      h = bit(key, i) === 0 ? await mapNodeHash(h, p.siblings[i]) : await mapNodeHash(p.siblings[i], h);
    }
    return h;
  }

  async function appendLeaf(rng, size, leaf) {
    let h = leaf;
    for (let s = size; (s & 1n) === 1n; s >>= 1n) h = await nodeHash(rng.pop(), h);
    rng.push(h);
  }

  // batchRoot walks the RFC 6962 recursion over [lo, hi) as
  // VerifyBatchInclusion does; st.used counts the proof hashes taken.
  async function batchRoot(st, lo, hi, i, j) {
    if (hi - lo === 1n) return st.leaves[i];
    let k = 1n;
    while (k * 2n < hi - lo) k *= 2n;
    const mid = lo + k;
    let s = i;
    while (s < j && st.idx[s] < mid) s++;
    const next = () => {
      if (st.used >= st.proof.length) fail("bad-inclusion", "the inclusion proof has too few hashes");
      return st.proof[st.used++];
    };
    let l, r;
    if (s > i && s < j) {
      l = await batchRoot(st, lo, mid, i, s);
      r = await batchRoot(st, mid, hi, s, j);
    } else if (s > i) {
      l = await batchRoot(st, lo, mid, i, s);
      r = next();
    } else {
      r = await batchRoot(st, mid, hi, s, j);
      l = next();
    }
    return nodeHash(l, r);
  }

  // entrySample returns the "sample" of an event entry (a JSON object),
  // or throws.
  function entrySample(data) {
    if (data[0] !== 0x7b) throw new Error("not an event (does not start with {)");
    const ev = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    if (ev === null || typeof ev !== "object" || Array.isArray(ev) || typeof ev.sample !== "string") throw new Error("no sample field");
    return ev.sample;
  }

  // verify checks the proof bytes for req ({sample, since: BigInt})
  // against a trusted checkpoint t ({size: BigInt, logRoot, mapRoot}:
  // Uint8Arrays of 32) and returns the chain: {sample, size, since,
  // absent, listSize, listRoot (hex), indexes (BigInts), entries}. It
  // throws a ProofError naming the failed check.
  async function verify(data, req, t) {
    const p = parse(data);
    if (p.sample !== req.sample) fail("wrong-sample", "asked for " + req.sample + ", the proof is for " + p.sample);
    if (p.size !== t.size) fail("wrong-size", "the proof is for size " + p.size + ", the checkpoint has size " + t.size);
    if (p.since !== req.since) fail("wrong-size", "asked for entries since " + req.since + ", the proof has them since " + p.since);
    const key = await sha256(new TextEncoder().encode(req.sample));
    if (!equal(await mapRoot(p, key), t.mapRoot)) fail("map-root-mismatch", "the map proof does not lead to the checkpoint's map root");
    const chain = { sample: p.sample, size: p.size, since: p.since, absent: p.listSize === 0n, listSize: p.listSize, listRoot: "", indexes: [], entries: [] };
    if (p.listSize === 0n) {
      if (p.entries.length > 0 || p.inclusion.length > 0) fail("added-entry", p.entries.length + " entries with a proof that the sample is not in the log");
      return chain;
    }
    const want = p.listSize - p.oldSize, got = BigInt(p.entries.length);
    if (got < want) fail("dropped-entry", "the committed list has " + want + " elements to show, the proof has " + got + " entries");
    if (got > want) fail("added-entry", "the committed list has " + want + " elements to show, the proof has " + got + " entries");
    p.entries.forEach((e, i) => {
      if (e.index >= p.size) fail("bad-inclusion", "entry " + i + " has index " + e.index + ", beyond the checkpoint size " + p.size);
      if (e.index < p.since) fail("bad-consistency", "entry " + i + " has index " + e.index + ", before since " + p.since);
      if (i > 0 && e.index === p.entries[i - 1].index) fail("added-entry", "index " + e.index + " twice");
      if (i > 0 && e.index < p.entries[i - 1].index) fail("reordered-entries", "entry " + i + " has index " + e.index + " after index " + p.entries[i - 1].index);
    });
    if (p.oldSize > 0n && p.oldLast.index >= p.since) fail("bad-consistency", "the last list element before since has index " + p.oldLast.index);
    p.entries.forEach((e, i) => {
      let s;
      try { s = entrySample(e.data); } catch (err) { fail("wrong-entry", "entry " + i + " (index " + e.index + ") does not decode: " + err.message); }
      if (s !== req.sample) fail("wrong-entry", "entry " + i + " (index " + e.index + ") is an event of sample " + JSON.stringify(s));
    });
    const rng = p.oldRange.slice();
    let size = 0n;
    if (p.oldSize > 0n) {
      size = p.oldSize - 1n;
      await appendLeaf(rng, size, await listLeafHash(p.oldLast.index, p.oldLast.leaf));
      size++;
    }
    const leaves = [];
    for (const e of p.entries) {
      const leaf = await entryLeafHash(e.data);
      leaves.push(leaf);
      await appendLeaf(rng, size, await listLeafHash(e.index, leaf));
      size++;
    }
    let root = rng[rng.length - 1];
    for (let i = rng.length - 2; i >= 0; i--) root = await nodeHash(rng[i], root);
    if (!equal(root, p.listRoot)) fail("list-root-mismatch", "the entries do not make the committed list root");
    const idx = p.entries.map(e => e.index);
    if (idx.length === 0) {
      if (p.inclusion.length !== 0) fail("bad-inclusion", p.inclusion.length + " inclusion hashes for no entry");
    } else {
      const st = { idx, leaves, proof: p.inclusion, used: 0 };
      const got = await batchRoot(st, 0n, p.size, 0, idx.length);
      if (st.used !== p.inclusion.length) fail("bad-inclusion", "the inclusion proof has " + (p.inclusion.length - st.used) + " hashes too many");
      if (!equal(got, t.logRoot)) fail("bad-inclusion", "the entries and the inclusion proof do not lead to the checkpoint's root");
    }
    chain.listRoot = hex(p.listRoot);
    chain.indexes = idx;
    chain.entries = p.entries;
    return chain;
  }

  function base64(s) {
    if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) throw new Error("not base64");
    return Uint8Array.from(atob(s), c => c.charCodeAt(0));
  }

  // checkpoint parses a checkpoint note's text (its signatures are not
  // checked here: the server checked the log's): {size, logRoot,
  // mapRoot (null without an index line)}. Exactly one well-formed
  // custody-sample-index line, as sampleindex.FindExtension.
  function checkpoint(text) {
    const body = text.split("\n\n")[0];
    const lines = body.split("\n");
    if (lines.length < 3 || !/^(0|[1-9][0-9]{0,19})$/.test(lines[1])) fail("bad-checkpoint", "not a checkpoint");
    const cp = { size: BigInt(lines[1]), logRoot: null, mapRoot: null };
    try { cp.logRoot = base64(lines[2]); } catch (e) { fail("bad-checkpoint", "root is not base64"); }
    if (cp.logRoot.length !== 32) fail("bad-checkpoint", "root is not 32 bytes");
    for (const l of lines.slice(3)) {
      if (l !== KEYWORD && !l.startsWith(KEYWORD + " ")) continue;
      if (cp.mapRoot !== null) fail("bad-checkpoint", "two " + KEYWORD + " lines");
      const m = /^custody-sample-index ([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$/.exec(l);
      if (!m) fail("bad-checkpoint", "malformed " + KEYWORD + " line");
      cp.mapRoot = base64(m[1]);
    }
    return cp;
  }

  window.custodySampleProof = { verify, parse, checkpoint, ProofError };

  // markJourney shows the browser's completeness verdict on the journey's
  // steps (templates/sample.html, "journey-svg"): the C mark, data-complete
  // and each step's title. proven is the proven entry indexes (strings),
  // or null when the check failed.
  function markJourney(proven, size) {
    for (const a of document.querySelectorAll("svg.journey a.step[data-index]")) {
      const m = a.querySelector(".m-complete"), t = a.querySelector("title");
      if (!m) continue;
      if (a.dataset.base === undefined) a.dataset.base = t.textContent;
      const good = proven !== null && proven.has(a.dataset.index);
      a.dataset.complete = good ? "browser" : "failed";
      m.textContent = good ? "C✓✓" : "C✕";
      m.setAttribute("class", "m-complete " + (good ? "browser" : "failed"));
      a.dataset.completeNote = good ? ", completeness as of checkpoint " + size + " re-checked by your browser" : ", your browser's check of completeness FAILED";
      const b = a.dataset.browser;
      t.textContent = a.dataset.base + (b === "ok" ? ", re-checked by your browser" : b === "failed" ? ", your browser's check of the inclusion proof FAILED" : "") + a.dataset.completeNote;
    }
  }

  // The sample page: the server put the proof and the checkpoint it was
  // checked against in #sample-index; verify them here, and check that the
  // chain shown on the page is exactly the proven one.
  async function run() {
    const el = document.getElementById("sample-index");
    const out = document.getElementById("index-browser-check");
    if (!el || !out || !el.dataset.sampleProof) return;
    const set = (state, text) => { out.dataset.state = state; out.className = state === "ok" ? "ok" : "bad"; out.textContent = text; };
    if (!window.crypto || !crypto.subtle) {
      out.dataset.state = "unavailable";
      out.textContent = "Your browser cannot re-check the proof here (Web Crypto needs a secure context: https or localhost).";
      return;
    }
    try {
      const cp = checkpoint(atob(el.dataset.note));
      if (cp.mapRoot === null) fail("bad-checkpoint", "the checkpoint has no " + KEYWORD + " line");
      const chain = await verify(base64(el.dataset.sampleProof), { sample: el.dataset.sample, since: 0n }, cp);
      const shown = Array.from(document.querySelectorAll("ol.chain > li[data-index]"), li => BigInt(li.dataset.index)).filter(i => i < cp.size);
      const truncated = el.dataset.truncated === "true";
      const proven = truncated ? chain.indexes.slice(0, shown.length) : chain.indexes;
      if (shown.length !== proven.length || shown.some((x, i) => x !== proven[i])) {
        fail("chain-mismatch", "the page shows entries " + shown.join(", ") + " but the proof proves " + chain.indexes.join(", "));
      }
      if (chain.absent) set("ok", "never logged as of checkpoint " + cp.size + " (absence verified in your browser ✓)");
      else set("ok", "complete (verified in your browser ✓): " + chain.indexes.length + " events as of checkpoint " + cp.size);
      if (!chain.absent) markJourney(new Set(chain.indexes.map(String)), cp.size);
      out.dataset.events = String(chain.indexes.length);
      out.dataset.absent = String(chain.absent);
    } catch (e) {
      out.dataset.error = e.kind || "error";
      set("failed", "Your browser's check of the proof FAILED: " + e.message);
      markJourney(null, 0);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
