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
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const list = document.getElementById(copy.dataset.copy);
    const text = Array.from(list.querySelectorAll("li:not(.used) code")).map((c) => c.textContent).join("\n");
    navigator.clipboard.writeText(text).then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Copy failed"; });
    return;
  }
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});

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
