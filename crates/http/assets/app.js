// Small progressive enhancements; every page works without script.
"use strict";
document.addEventListener("click", (event) => {
  const toggle = event.target.closest(".toggle-password");
  if (toggle) {
    const input = document.getElementById(toggle.dataset.target);
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    toggle.textContent = show ? "Hide" : "Show";
    toggle.setAttribute("aria-pressed", String(show));
    return;
  }
  const copy = event.target.closest("[data-copy], [data-copy-value]");
  if (copy) {
    // A value on the button itself, a field's value, or a list's unused codes.
    const source = document.getElementById(copy.dataset.copy || "");
    let text = copy.dataset.copyValue;
    if (text === undefined && source) {
      text = "value" in source
        ? source.value
        : Array.from(source.querySelectorAll("li:not(.used) code")).map((c) => c.textContent).join("\n");
    }
    navigator.clipboard.writeText(text || "").then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Copy failed"; });
    return;
  }
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});

// Copy buttons need script: shown only where it runs.
for (const button of document.querySelectorAll("button.copy[hidden]")) {
  button.hidden = false;
}

// A button that sends a code waits out the server's resend cooldown
// (data-countdown, in seconds), saying how long is left in the element that
// describes it. Without script the button always works and the server
// answers a too-early click with the wait instead.
for (const button of document.querySelectorAll("button[data-countdown]")) {
  const seconds = Math.floor(Number(button.dataset.countdown));
  if (!(seconds > 0)) continue;
  const note = document.getElementById(button.getAttribute("aria-describedby") || "");
  const end = Date.now() + seconds * 1000;
  button.disabled = true;
  const tick = () => {
    const left = Math.ceil((end - Date.now()) / 1000);
    if (left <= 0) {
      button.disabled = false;
      if (note) note.textContent = "";
      return;
    }
    if (note) note.textContent = `You can ask for a new one in ${left} second${left === 1 ? "" : "s"}.`;
    setTimeout(tick, 250);
  };
  tick();
}

// Signing in with a push: wait for the device's answer (long-poll) and, once
// approved, post the page's own "continue" form, so sign-in completes
// without a click. Without script that button does the same by hand.
const pushWait = document.getElementById("push-wait");
if (pushWait && pushWait.dataset.state === "pending") {
  const id = pushWait.dataset.challenge || "";
  const form = document.getElementById("push-verify-form");
  const outcome = document.getElementById("push-outcome");
  const pending = document.getElementById("push-pending");
  const countdown = document.getElementById("push-countdown");
  const status = document.getElementById("push-status");
  let end = Date.now() + Number(pushWait.dataset.expires || "60") * 1000;
  let done = false;
  const tick = () => {
    if (done) return;
    const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    if (countdown) countdown.textContent = String(left);
    setTimeout(tick, 250);
  };
  tick();
  const finish = (message) => {
    done = true;
    if (outcome) {
      outcome.textContent = message;
      outcome.hidden = false;
    }
    if (pending) pending.hidden = true;
    if (form) form.hidden = true;
    document.getElementById("push-resend-form")?.querySelector("button")?.focus();
  };
  const poll = async (failures) => {
    let next = failures;
    try {
      const res = await fetch(`/api/v1/login/challenge/${encodeURIComponent(id)}?wait=25`, { cache: "no-store" });
      if (res.status === 404) return finish("This sign-in request was not found. Send another push.");
      if (!res.ok) throw new Error(String(res.status));
      const v = await res.json();
      next = 0;
      if (typeof v.expires_in === "number") end = Date.now() + v.expires_in * 1000;
      if (v.status === "approved") {
        done = true;
        if (status) status.textContent = pushWait.dataset.approved || "Approved on your device. Signing you in…";
        if (outcome) outcome.hidden = true;
        if (form) {
          if (form.requestSubmit) form.requestSubmit();
          else form.submit();
        }
        return;
      }
      if (v.status === "denied") return finish("The request was denied on your device.");
      if (v.status === "expired") return finish("The request expired.");
      if (v.status === "used") return finish("This request was already used. Send another push to sign in.");
    } catch {
      next = failures + 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(15_000, 1_000 * 2 ** next)));
    }
    poll(next);
  };
  poll(0);
}

// Security keys and passkeys (WebAuthn). The server's options are the
// WebAuthn Level 3 JSON form (binary fields base64url), and it reads the
// answer in the `PublicKeyCredential.toJSON()` form: the browser's own
// parsers do the conversion where they exist, these few lines elsewhere.
const webauthn = (() => {
  const toBuffer = (s) => {
    const base64 = s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  };
  const toBase64url = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  // A null member means "not given"; the browser's parsers want it left out.
  const clean = (v) => {
    if (Array.isArray(v)) return v.map(clean);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, clean(x)]));
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: toBuffer(c.id) }));
  const creation = (json) => {
    const o = clean(json);
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    return { ...o, challenge: toBuffer(o.challenge), user: { ...o.user, id: toBuffer(o.user.id) }, excludeCredentials: withIds(o.excludeCredentials) };
  };
  const request = (json) => {
    const o = clean(json);
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    return { ...o, challenge: toBuffer(o.challenge), allowCredentials: withIds(o.allowCredentials) };
  };
  const answer = (credential) => {
    if (typeof credential.toJSON === "function") return JSON.stringify(credential.toJSON());
    const r = credential.response;
    const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    });
  };
  const words = (error) => {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The request was cancelled or timed out. Try again, or use another method.";
      case "InvalidStateError":
        return "That key is already registered to your account.";
      case "SecurityError":
        return "This address cannot use security keys. Open the site at its usual address.";
      case "NotSupportedError":
        return "This key or browser cannot do what was asked. Try another key.";
      default:
        return "Your browser could not use the key. Try again, or use another method.";
    }
  };
  return { creation, request, answer, words, available: Boolean(window.PublicKeyCredential) };
})();

// A form carrying `data-webauthn-get` or `data-webauthn-create` runs the
// ceremony when submitted and posts the answer in its
// `[data-webauthn-answer]` field; `data-webauthn-auto` starts it at once.
for (const form of document.querySelectorAll("form[data-webauthn-get], form[data-webauthn-create]")) {
  const field = form.querySelector("[data-webauthn-answer]");
  const status = form.querySelector("[data-webauthn-status]");
  const say = (text) => { if (status) status.textContent = text; };
  const creating = form.dataset.webauthnCreate !== undefined;
  let busy = false;
  form.addEventListener("submit", async (event) => {
    if (field.value) return;
    event.preventDefault();
    if (busy) return;
    if (!webauthn.available) return say("This browser cannot use security keys. Use another method.");
    busy = true;
    try {
      const options = JSON.parse(creating ? form.dataset.webauthnCreate : form.dataset.webauthnGet);
      say(creating ? "Follow your browser's steps to add the key…" : "Waiting for your security key…");
      const credential = creating
        ? await navigator.credentials.create({ publicKey: webauthn.creation(options.publicKey) })
        : await navigator.credentials.get({ publicKey: webauthn.request(options.publicKey) });
      field.value = webauthn.answer(credential);
      say("Checking…");
      form.submit();
    } catch (error) {
      field.value = "";
      say(webauthn.words(error));
    } finally {
      busy = false;
    }
  });
  if (form.dataset.webauthnAuto !== undefined && webauthn.available) {
    if (form.requestSubmit) form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { cancelable: true }));
  }
}

// "Sign in with a passkey", and passkeys offered in the address field's
// autofill (conditional mediation) where the browser can. Each try asks
// the server for a fresh challenge; the answer is posted as a form.
const passkeyBox = document.getElementById("passkey-signin");
if (passkeyBox && webauthn.available) {
  passkeyBox.hidden = false;
  const form = document.getElementById("passkey-form");
  const status = document.getElementById("passkey-status");
  let running = null;
  const signIn = async (mediation) => {
    if (running) running.abort();
    const control = new AbortController();
    running = control;
    const res = await fetch("/api/v1/login/passkey", { method: "POST", headers: { Accept: "application/json" }, cache: "no-store" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.message || "refused"), { name: "ServerRefused" });
    const credential = await navigator.credentials.get({
      publicKey: webauthn.request(body.options.publicKey),
      mediation,
      signal: control.signal,
    });
    form.elements.challenge_id.value = body.challenge_id;
    form.elements.credential.value = webauthn.answer(credential);
    status.textContent = "Signing you in…";
    form.submit();
  };
  const failed = (error) => {
    if (error.name === "AbortError") return;
    status.textContent = error.name === "ServerRefused" ? error.message : webauthn.words(error);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    status.textContent = "Waiting for your passkey…";
    signIn("optional").catch(failed);
  });
  if (PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((yes) => {
      // Silent: an autofill nobody picks from is no error.
      if (yes) signIn("conditional").catch(() => {});
    }, () => {});
  }
}
