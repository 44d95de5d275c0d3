// The twostep companion page: pairs this browser as a push device and
// answers sign-in requests (security.md §2.9).
//
// - The device key is an ECDSA P-256 pair made here with WebCrypto; the
//   private key is not extractable and lives in IndexedDB as a CryptoKey,
//   so not even this script can read it out.
// - Every request to the device routes is signed over
//   "twostep-device-v1\n" + METHOD + "\n" + path?query + "\n" + timestamp +
//   "\n" + hex(SHA-256(body)) and sent with X-Twostep-Device/-Timestamp/-Signature.
// - Sign-in requests arrive by long-poll; Web Push (when the user allows
//   notifications) only wakes the page up, through companion-sw.js.
// - Text from the server is only ever set with textContent.
"use strict";
(() => {
  const DB_NAME = "twostep-companion";
  const STORE = "device";
  const KEY = "self";
  const POLL_WAIT = 25;
  const enc = new TextEncoder();
  const $ = (id) => document.getElementById(id);

  /** @type {{deviceId: string, name: string, email: string, privateKey: CryptoKey, publicKey: CryptoKey} | null} */
  let device = null;
  let stopped = false;
  let polling = false;
  /** @type {AbortController | null} */
  let pollAbort = null;
  /** Server time minus ours, when our clock is far off. */
  let clockOffset = 0;
  let cardCounter = 0;
  /** @type {Map<string, {el: HTMLElement, expiresAt: number, busy: boolean, timer: number}>} */
  const cards = new Map();
  /** @type {Promise<ServiceWorkerRegistration | null>} */
  let worker = Promise.resolve(null);

  class UserError extends Error {}

  // ----- encoding ----------------------------------------------------------

  function b64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    const s = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  async function sha256Hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** "the request signature is invalid" -> "The request signature is invalid." */
  function sentence(text) {
    const t = String(text).trim();
    if (!t) return t;
    const s = t[0].toUpperCase() + t.slice(1);
    return /[.!?]$/.test(s) ? s : `${s}.`;
  }

  const sleep = (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });

  // ----- IndexedDB ---------------------------------------------------------

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function dbRun(mode, op) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = op(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  const loadDevice = () => dbRun("readonly", (s) => s.get(KEY));
  const saveDevice = (d) => dbRun("readwrite", (s) => s.put(d, KEY));
  const clearDevice = () => dbRun("readwrite", (s) => s.delete(KEY));

  // ----- requests ----------------------------------------------------------

  function noteClock(res) {
    const server = Date.parse(res.headers.get("date") || "");
    if (Number.isNaN(server)) return;
    const diff = server - Date.now();
    // The server allows 5 minutes; follow its clock only when ours is far off.
    clockOffset = Math.abs(diff) > 60_000 ? diff : 0;
  }

  /** A request to a device route, signed with the device key. */
  async function signedFetch(method, path, json, signal) {
    const body = json === undefined ? new Uint8Array(0) : enc.encode(JSON.stringify(json));
    const timestamp = String(Math.floor((Date.now() + clockOffset) / 1000));
    const message = `twostep-device-v1\n${method}\n${path}\n${timestamp}\n${await sha256Hex(body)}`;
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.privateKey, enc.encode(message));
    const headers = {
      "X-Twostep-Device": device.deviceId,
      "X-Twostep-Timestamp": timestamp,
      "X-Twostep-Signature": b64url(signature),
    };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: json === undefined ? undefined : body,
      signal,
      cache: "no-store",
      credentials: "omit",
    });
    noteClock(res);
    return res;
  }

  async function apiError(res) {
    try {
      const j = await res.json();
      return { code: String(j?.error?.code ?? ""), message: String(j?.error?.message ?? "") };
    } catch {
      return { code: "", message: "" };
    }
  }

  // ----- page state --------------------------------------------------------

  function showError(text) {
    const box = $("companion-error");
    box.textContent = text;
    box.hidden = !text;
  }

  function setStatus(text) {
    $("poll-status").textContent = text;
  }

  function addOutcome(text, ok) {
    const p = document.createElement("p");
    p.className = ok ? "notice" : "alert";
    p.dataset.testid = "push-outcome";
    p.textContent = text;
    const box = $("outcomes");
    box.prepend(p);
    while (box.children.length > 5) box.lastElementChild.remove();
  }

  function clearFragment() {
    history.replaceState(null, "", location.pathname + location.search);
  }

  function pairingCode() {
    const m = /^#pair=([A-Za-z0-9_-]{16,256})$/.exec(location.hash);
    return m ? m[1] : null;
  }

  // ----- pairing -----------------------------------------------------------

  function showPairForm(code) {
    $("pair-view").hidden = false;
    const form = $("pair-form");
    const button = form.querySelector("button[type=submit]");
    $("device-name").focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      showError("");
      try {
        await pair(code, $("device-name").value.trim());
      } catch (err) {
        showError(err instanceof UserError ? err.message : `Could not add this device: ${err?.message || err}`);
        button.disabled = false;
        if (err instanceof UserError && err.final) {
          $("pair-view").hidden = true;
          $("unpaired-view").hidden = false;
        }
      }
    });
  }

  async function pair(code, name) {
    if (name.length > 64) throw new UserError("Names are 1 to 64 characters.");
    // extractable: false — the private key never leaves WebCrypto (the public one always may).
    const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const publicKey = b64url(await crypto.subtle.exportKey("raw", keys.publicKey));
    const proof = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      enc.encode(`twostep-pair-v1\n${code}\n${publicKey}`),
    );
    let res;
    try {
      res = await fetch("/api/v1/push/devices", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ pairing_code: code, name, public_key: publicKey, signature: b64url(proof) }),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new UserError("Could not reach the server. Check the connection and try again.");
    }
    if (res.status !== 201) {
      const e = await apiError(res);
      if (e.code === "invalid_token") {
        clearFragment();
        const err = new UserError(
          "This pairing link is invalid, used or expired. On your computer, open Security → Add a companion device again for a new link.",
        );
        err.final = true;
        throw err;
      }
      if (e.code === "invalid_name") throw new UserError("Names are 1 to 64 characters.");
      throw new UserError(e.message ? sentence(e.message) : `The server refused this device (status ${res.status}).`);
    }
    const j = await res.json();
    device = {
      deviceId: String(j.device_id),
      name: String(j.name),
      email: String(j.email),
      privateKey: keys.privateKey,
      publicKey: keys.publicKey,
    };
    try {
      await saveDevice(device);
    } catch {
      throw new UserError("This browser would not store the device key, so the device cannot stay paired. Remove it on the Security page.");
    }
    clearFragment();
    $("pair-view").hidden = true;
    showPaired();
  }

  // ----- paired: requests ----------------------------------------------------

  function showPaired() {
    $("paired-email").textContent = device.email;
    $("paired-name").textContent = device.name;
    $("unpaired-view").hidden = true;
    $("paired-view").hidden = false;
    setupNotifications();
    pollLoop();
  }

  async function pollLoop() {
    if (polling) return;
    polling = true;
    let failures = 0;
    while (device && !stopped) {
      const ctrl = new AbortController();
      pollAbort = ctrl;
      try {
        const res = await signedFetch("GET", `/api/v1/push/challenges?wait=${POLL_WAIT}`, undefined, ctrl.signal);
        if (res.status === 401) {
          rejected();
          break;
        }
        if (!res.ok) throw new Error(`status ${res.status}`);
        const body = await res.json();
        failures = 0;
        if (typeof body.device === "string" && body.device && body.device !== device.name) {
          // Renamed on the Security page.
          device.name = body.device;
          $("paired-name").textContent = body.device;
          saveDevice(device).catch(() => {});
        }
        const list = Array.isArray(body.challenges) ? body.challenges : [];
        showRequests(list);
        // A pending request answers the long-poll at once: look again shortly.
        if (list.length > 0) await sleep(2_000, ctrl.signal);
      } catch (err) {
        if (ctrl.signal.aborted) continue;
        failures += 1;
        setStatus("Cannot reach the server; trying again…");
        await sleep(Math.min(30_000, 1_000 * 2 ** failures), ctrl.signal);
      }
    }
    polling = false;
  }

  function rejected() {
    stopped = true;
    for (const id of [...cards.keys()]) removeCard(id);
    $("notifications-panel").hidden = true;
    setStatus("Not approving sign-ins.");
    showError(
      "The server no longer accepts this device: it was removed from the account, or its key does not match. Forget it here and pair it again.",
    );
  }

  function showRequests(list) {
    const seen = new Set();
    for (const c of list) {
      if (!c || typeof c.id !== "string") continue;
      seen.add(c.id);
      const card = cards.get(c.id);
      if (card) card.expiresAt = Date.now() + Math.max(0, Number(c.expires_in) || 0) * 1000;
      else addCard(c);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id) && !card.busy) {
        closeCard(id, card.expiresAt <= Date.now() + 1_000 ? "expired" : "gone");
      }
    }
    const n = [...cards.values()].length;
    setStatus(n === 0 ? "Waiting for sign-in requests…" : n === 1 ? "1 sign-in request" : `${n} sign-in requests`);
  }

  function addCard(c) {
    const el = /** @type {HTMLElement} */ ($("request-template").content.firstElementChild.cloneNode(true));
    el.dataset.id = c.id;
    el.querySelector(".r-email").textContent = typeof c.email === "string" && c.email ? c.email : "your account";
    const where = [c.ip, c.client, c.place].filter((x) => typeof x === "string" && x.trim());
    el.querySelector(".r-where").textContent = where.length ? where.join(" · ") : "unknown";
    const created = Date.parse(c.created_at);
    el.querySelector(".r-when").textContent = Number.isNaN(created) ? "just now" : new Date(created).toLocaleString();
    cardCounter += 1;
    const input = /** @type {HTMLInputElement} */ (el.querySelector(".r-number"));
    input.id = `number-${cardCounter}`;
    el.querySelector(".r-label").htmlFor = input.id;
    const card = { el, expiresAt: Date.now() + Math.max(0, Number(c.expires_in) || 0) * 1000, busy: false, timer: 0 };
    cards.set(c.id, card);
    const countdown = el.querySelector(".r-countdown");
    const tick = () => {
      const left = Math.ceil((card.expiresAt - Date.now()) / 1000);
      if (left <= 0) {
        if (!card.busy) closeCard(c.id, "expired");
        return;
      }
      countdown.textContent = `Expires in ${left} second${left === 1 ? "" : "s"}.`;
      card.timer = setTimeout(tick, 250);
    };
    tick();
    el.querySelector(".r-form").addEventListener("submit", (event) => {
      event.preventDefault();
      answer(c.id, "approve", false);
    });
    el.querySelector(".r-deny").addEventListener("click", () => answer(c.id, "deny", false));
    el.querySelector(".r-not-me").addEventListener("click", () => answer(c.id, "deny", true));
    input.addEventListener("input", () => {
      el.querySelector(".r-hint").hidden = true;
    });
    $("requests").append(el);
    input.focus();
  }

  function removeCard(id) {
    const card = cards.get(id);
    if (!card) return;
    clearTimeout(card.timer);
    card.el.remove();
    cards.delete(id);
  }

  const OUTCOMES = {
    approved: ["Approved. The sign-in continues on the other device.", true],
    denied: ["Denied. That sign-in was refused.", true],
    "not-me": [
      "Denied and reported: we e-mailed the account a warning. If you did not try to sign in, change your password.",
      true,
    ],
    "wrong-number": ["Wrong number: the request was denied. To sign in, start again on the sign-in page.", false],
    expired: ["The request expired.", false],
    closed: ["This request was already answered or has expired.", false],
    gone: ["This request is no longer pending: it was answered on another device or expired.", false],
  };

  function closeCard(id, outcome) {
    removeCard(id);
    const [text, ok] = OUTCOMES[outcome] ?? OUTCOMES.gone;
    addOutcome(text, ok);
    if (cards.size === 0 && !stopped) setStatus("Waiting for sign-in requests…");
  }

  async function answer(id, decision, notMe) {
    const card = cards.get(id);
    if (!card || card.busy) return;
    const el = card.el;
    const hint = el.querySelector(".r-hint");
    const input = /** @type {HTMLInputElement} */ (el.querySelector(".r-number"));
    const body = { decision, not_me: notMe };
    if (decision === "approve") {
      const typed = input.value.trim();
      if (!/^\d{1,2}$/.test(typed)) {
        hint.textContent = "Type the 2-digit number shown on the sign-in page first.";
        hint.hidden = false;
        input.focus();
        return;
      }
      body.number = typed;
    }
    const buttons = el.querySelectorAll("button");
    const busy = (on) => {
      card.busy = on;
      for (const b of buttons) b.disabled = on;
    };
    busy(true);
    let res;
    try {
      res = await signedFetch("POST", `/api/v1/push/challenges/${encodeURIComponent(id)}/answer`, body);
    } catch {
      busy(false);
      hint.textContent = "Could not reach the server. Try again.";
      hint.hidden = false;
      return;
    }
    if (res.status === 204) {
      closeCard(id, decision === "approve" ? "approved" : notMe ? "not-me" : "denied");
      return;
    }
    const e = await apiError(res);
    if (e.code === "wrong_number") closeCard(id, "wrong-number");
    else if (e.code === "push_closed") closeCard(id, "closed");
    else if (res.status === 404) closeCard(id, "gone");
    else if (e.code === "invalid_signature") rejected();
    else {
      busy(false);
      hint.textContent = e.message ? sentence(e.message) : `The answer was refused (status ${res.status}). Try again.`;
      hint.hidden = false;
    }
  }

  // ----- Web Push (optional) -------------------------------------------------

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return Promise.resolve(null);
    return navigator.serviceWorker.register("/companion-sw.js", { scope: "/companion" }).catch(() => null);
  }

  function sameKey(a, b) {
    if (!a || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a);
    return x.every((v, i) => v === b[i]);
  }

  async function subscribe(vapidKey) {
    const reg = await worker;
    if (!reg) throw new Error("no service worker");
    await navigator.serviceWorker.ready;
    const key = fromB64url(vapidKey);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const res = await signedFetch("PUT", "/api/v1/push/device/web-push", { web_push: sub.toJSON() });
    if (res.status !== 204) throw new Error(`status ${res.status}`);
  }

  async function unsubscribe() {
    try {
      const reg = await worker;
      const sub = await reg?.pushManager?.getSubscription();
      await sub?.unsubscribe();
    } catch {
      // Nothing to undo.
    }
  }

  async function setupNotifications() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
    let vapidKey = null;
    try {
      const res = await fetch("/api/v1/push/vapid-public-key", { cache: "no-store", credentials: "omit" });
      vapidKey = res.ok ? (await res.json()).public_key : null;
    } catch {
      return;
    }
    // Web Push is off on this server: the page's own polling is all there is.
    if (typeof vapidKey !== "string" || !vapidKey || stopped) return;
    const panel = $("notifications-panel");
    const button = $("enable-notifications");
    const status = $("notifications-status");
    const turnOn = async () => {
      try {
        await subscribe(vapidKey);
        button.hidden = true;
        status.textContent = "Notifications are on: sign-in requests reach this device even when the page is closed.";
      } catch {
        status.textContent = "Notifications could not be turned on; keep this page open to see sign-in requests.";
      }
      panel.hidden = false;
    };
    if (Notification.permission === "granted") {
      await turnOn();
      return;
    }
    panel.hidden = false;
    if (Notification.permission === "denied") {
      button.hidden = true;
      status.textContent = "Notifications are blocked for this site; keep this page open to see sign-in requests.";
      return;
    }
    status.textContent = "Get a notification for each sign-in request, even when this page is closed.";
    button.addEventListener("click", async () => {
      button.disabled = true;
      let permission = "default";
      try {
        permission = await Notification.requestPermission();
      } catch {
        // Older browsers: treated as not granted.
      }
      if (permission === "granted") await turnOn();
      else {
        button.disabled = false;
        status.textContent = "Notifications were not allowed; keep this page open to see sign-in requests.";
      }
    });
  }

  // ----- forgetting ----------------------------------------------------------

  function setupForget() {
    const ask = $("forget-device");
    const confirmBox = $("forget-confirm");
    const yes = $("forget-yes");
    ask.addEventListener("click", () => {
      ask.hidden = true;
      confirmBox.hidden = false;
    });
    $("forget-no").addEventListener("click", () => {
      confirmBox.hidden = true;
      ask.hidden = false;
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        const res = await signedFetch("DELETE", "/api/v1/push/device");
        // 401: the server already forgot it; only the local key is left.
        if (res.status !== 204 && res.status !== 401) throw new UserError(`The server refused (status ${res.status}).`);
      } catch (err) {
        yes.disabled = false;
        showError(err instanceof UserError ? err.message : "Could not reach the server. Try again.");
        return;
      }
      stopped = true;
      pollAbort?.abort();
      for (const id of [...cards.keys()]) removeCard(id);
      await unsubscribe();
      try {
        await clearDevice();
      } catch {
        // The server no longer knows the key, so a leftover is harmless.
      }
      device = null;
      showError("");
      $("paired-view").hidden = true;
      $("unpaired-view").hidden = false;
      addOutcome("This device was forgotten. It no longer approves sign-ins.", true);
      $("unpaired-view").prepend($("outcomes"));
    });
  }

  // ----- start ---------------------------------------------------------------

  async function main() {
    $("companion-loading").hidden = true;
    if (!window.isSecureContext || !window.crypto?.subtle || !window.indexedDB) {
      showError("This browser cannot keep a device key here. Open this page over https in a current browser.");
      return;
    }
    worker = registerWorker();
    setupForget();
    document.addEventListener("visibilitychange", () => {
      // Back in view (e.g. from a notification): look for requests now.
      if (document.visibilityState === "visible") pollAbort?.abort();
    });
    // A pairing link opened in the page already showing (an installed app)
    // changes only the fragment: start over with it.
    window.addEventListener("hashchange", () => {
      if (pairingCode()) location.reload();
    });
    const code = pairingCode();
    try {
      device = (await loadDevice()) ?? null;
    } catch {
      showError("This browser does not let the page store its key (a private window?). Open it in a normal window.");
      return;
    }
    if (device) {
      if (code) {
        clearFragment();
        addOutcome("This device is already paired. To pair it with another account, forget it first, then open the new link.", false);
      }
      showPaired();
    } else if (code) {
      showPairForm(code);
    } else {
      $("unpaired-view").hidden = false;
    }
  }

  main();
})();
