// In-browser verification of the audit log (RFC 9162 Merkle proofs, C2SP signed notes):
// the browser, not the server, checks each hash and the Ed25519 signature with WebCrypto,
// against the log's published verifier key. Pages work without this script; it only adds
// the "verify" buttons and the whole-log run of the console.
"use strict";
(function () {
  const enc = new TextEncoder();

  function message(key) {
    const t = document.getElementById("verify-messages");
    const el = t && t.content.querySelector('[data-key="' + key + '"]');
    return el ? el.textContent : key;
  }

  function b64(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const n = parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
  const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

  function same(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  class Failure extends Error {
    constructor(key) { super(key); this.key = key; }
  }

  // <name>+<hex key id>+<base64(0x01 || Ed25519 key)>, the id checked against name and key.
  async function parseKey(text) {
    const parts = text.trim().split("+");
    if (parts.length < 3) throw new Failure("key");
    const name = parts[0], id = parts[1], raw = b64(parts.slice(2).join("+"));
    if (raw.length !== 33 || raw[0] !== 1) throw new Failure("key");
    const kid = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
    if (hex(kid) !== id) throw new Failure("key");
    let key;
    try {
      key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      throw new Failure("unsupported");
    }
    return { name, kid, key };
  }

  // A checkpoint note: its signature by the key, then origin, size and root.
  async function openCheckpoint(note, verifier) {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Failure("signature");
    const body = note.slice(0, cut + 1);
    let valid = false;
    for (const line of note.slice(cut + 2).split("\n")) {
      if (!line.startsWith("\u2014 ")) continue;
      const [name, sig] = line.slice(2).split(" ");
      if (name !== verifier.name || !sig) continue;
      let blob;
      try { blob = b64(sig); } catch (e) { throw new Failure("signature"); }
      if (!same(blob.slice(0, 4), verifier.kid)) continue;
      const ok = await crypto.subtle.verify("Ed25519", verifier.key, blob.slice(4), enc.encode(body));
      if (!ok) throw new Failure("signature");
      valid = true;
    }
    if (!valid) throw new Failure("signature");
    const lines = body.split("\n");
    return { origin: lines[0], size: Number(lines[1]), root: b64(lines[2]) };
  }

  // RFC 9162 §2.1.3.2.
  async function rootFromPath(leaf, index, size, path) {
    if (index >= size || index < 0) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) return null;
      if ((fn & 1) || fn === sn) {
        r = await nodeHash(p, r);
        if (!(fn & 1)) { while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1; sn >>= 1;
    }
    return sn === 0 ? r : null;
  }

  async function fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Failure("fetch");
    return response.text();
  }

  async function publishedKey() {
    return parseKey(await fetchText("/v1/audit/verifier-key"));
  }

  async function verifyReceipt(url) {
    const receipt = JSON.parse(await fetchText(url));
    const verifier = await publishedKey();
    const cp = await openCheckpoint(String(receipt.checkpoint), verifier);
    if (Number(receipt.tree_size) !== cp.size) throw new Failure("size");
    const leaf = await leafHash(enc.encode(String(receipt.entry)));
    if (hex(leaf) !== String(receipt.leaf_hash)) throw new Failure("leaf");
    const path = receipt.audit_path.map((h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16)));
    const root = await rootFromPath(leaf, Number(receipt.leaf_index), cp.size, path);
    if (root === null || !same(root, cp.root)) throw new Failure("proof");
  }

  function show(el, ok, key) {
    el.textContent = message(key);
    el.classList.toggle("good", ok);
    el.classList.toggle("bad", !ok);
    el.dataset.result = ok ? "ok" : key;
  }

  for (const box of document.querySelectorAll(".verify")) {
    const button = box.querySelector(".verify-button");
    const link = box.querySelector(".verify-link");
    const out = box.querySelector(".verify-result");
    button.hidden = false;
    button.addEventListener("click", async () => {
      out.textContent = message("checking");
      out.className = "verify-result";
      try {
        await verifyReceipt(link.getAttribute("href"));
        show(out, true, "ok");
      } catch (e) {
        show(out, false, e instanceof Failure ? e.key : "fetch");
      }
    });
  }

  // -- the console: the whole log -----------------------------------------------------------

  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  // RFC 9162 §2.1.1 Merkle tree hash of the leaves, largest power of two first.
  async function treeHash(leaves, lo, hi) {
    const n = hi - lo;
    if (n === 1) return leaves[lo];
    let k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(await treeHash(leaves, lo, lo + k), await treeHash(leaves, lo + k, hi));
  }

  async function verifyLog(progress, out) {
    const verifier = await publishedKey();
    const cp = await openCheckpoint(await fetchText("/v1/audit/checkpoint"), verifier);
    const leaves = [];
    let after = -1;
    while (leaves.length < cp.size) {
      const page = JSON.parse(await fetchText("/console/entries.json?after=" + after));
      if (!page.entries.length) break;
      for (const e of page.entries) {
        if (e.index !== leaves.length) throw new Failure("leaf");
        const stated = e.leaf_hash;
        const doc = Object.assign({}, e);
        delete doc.index; delete doc.leaf_hash; delete doc.time;
        const leaf = await leafHash(enc.encode(canonical(doc)));
        if (hex(leaf) !== stated) throw new Failure("leaf");
        leaves.push(leaf);
        if (leaves.length === cp.size) break;
      }
      after = page.entries[page.entries.length - 1].index;
      progress.value = Math.round((100 * leaves.length) / Math.max(cp.size, 1));
      if (page.next_after === null) break;
    }
    if (leaves.length !== cp.size) throw new Failure("root");
    const root = cp.size ? await treeHash(leaves, 0, leaves.length) : await sha256(new Uint8Array());
    if (!same(root, cp.root)) throw new Failure("root");
    return cp.size;
  }

  const logButton = document.getElementById("verify-log-button");
  if (logButton) {
    const progress = document.getElementById("verify-log-progress");
    const label = document.getElementById("verify-log-label");
    const out = document.getElementById("verify-log-result");
    for (const el of document.querySelectorAll(".nojs")) el.hidden = true;
    logButton.hidden = false;
    logButton.addEventListener("click", async () => {
      progress.hidden = false; label.hidden = false; progress.value = 0;
      out.textContent = message("checking");
      out.className = "";
      try {
        const size = await verifyLog(progress, out);
        progress.value = 100;
        show(out, true, "ok");
        out.textContent = out.textContent.replace("{0}", size.toLocaleString(document.documentElement.lang));
      } catch (e) {
        show(out, false, e instanceof Failure ? e.key : "fetch");
      }
    });
  }
})();
