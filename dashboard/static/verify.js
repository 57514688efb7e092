// custody dashboard: re-checks every inclusion proof on a sample page in the
// reader's browser, with the browser's own SHA-256 (Web Crypto), against the
// root of the checkpoint shown on the page (RFC 6962, section 2.1.3.2). The
// page is complete without this script; it only adds a second check that
// does not rely on the server's arithmetic.
"use strict";

(function () {
  function hexToBytes(hex) {
    if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not hex: " + hex);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  async function hashChildren(left, right) {
    const buf = new Uint8Array(1 + left.length + right.length);
    buf[0] = 1;
    buf.set(left, 1);
    buf.set(right, 1 + left.length);
    return new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  // rootFromInclusion follows RFC 9162 section 2.1.3.2.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) throw new Error("index beyond the tree");
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error("proof too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await hashChildren(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await hashChildren(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("proof too short");
    return r;
  }

  async function check(el) {
    const index = BigInt(el.dataset.index), size = BigInt(el.dataset.size);
    const leaf = hexToBytes(el.dataset.leaf), root = hexToBytes(el.dataset.root);
    const proof = el.dataset.proof === "" ? [] : el.dataset.proof.split(" ").map(hexToBytes);
    return equal(await rootFromInclusion(index, size, leaf, proof), root);
  }

  // markStep shows the browser's verdict on the journey's step for entry
  // index (templates/sample.html, "journey-svg"): data-browser, the B mark
  // and the step's title, which sampleproof.js also extends.
  function markStep(index, good) {
    const a = document.querySelector('svg.journey a.step[data-index="' + index + '"]');
    if (!a) return;
    const t = a.querySelector("title"), m = a.querySelector(".m-browser");
    if (a.dataset.base === undefined) a.dataset.base = t.textContent;
    a.dataset.browser = good ? "ok" : "failed";
    m.textContent = good ? "B✓" : "B✕";
    m.setAttribute("class", "m-browser " + (good ? "ok" : "failed"));
    t.textContent = a.dataset.base + (good ? ", re-checked by your browser" : ", your browser's check of the inclusion proof FAILED") + (a.dataset.completeNote || "");
  }

  async function run() {
    const proofs = document.querySelectorAll("div.proof[data-leaf]");
    const summary = document.getElementById("browser-check");
    if (proofs.length === 0 || !summary) return;
    if (!window.crypto || !crypto.subtle) {
      summary.textContent = "Your browser cannot re-check the proofs here (Web Crypto needs a secure context: https or localhost).";
      summary.dataset.state = "unavailable";
      return;
    }
    let ok = 0, bad = 0;
    for (const el of proofs) {
      const status = el.closest("li.link").querySelector(".browser-status");
      let good = false;
      try { good = await check(el); } catch (e) { good = false; }
      if (good) ok++; else bad++;
      status.dataset.state = good ? "ok" : "failed";
      status.className = "browser-status " + (good ? "ok" : "bad");
      status.textContent = good ? "· re-checked in your browser ✓" : "· your browser's check FAILED";
      markStep(el.dataset.index, good);
    }
    summary.dataset.state = bad === 0 ? "ok" : "failed";
    summary.dataset.ok = String(ok);
    summary.className = bad === 0 ? "ok" : "bad";
    summary.textContent = bad === 0
      ? "Your browser re-checked all " + ok + " proofs with its own SHA-256: ✓."
      : "Your browser found " + bad + " proof(s) that do NOT lead to the checkpoint's root.";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
