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
