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
