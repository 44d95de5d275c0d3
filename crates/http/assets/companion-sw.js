// The companion page's service worker (scope /companion). Web Push only
// wakes the device: the payload carries a challenge id and nothing else,
// and the page itself fetches and answers the request, signed.
"use strict";

self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", (event) => {
  let challenge = "";
  try {
    const data = event.data ? event.data.json() : null;
    if (data && typeof data.challenge === "string") challenge = data.challenge.slice(0, 64);
  } catch {
    // Not JSON: still worth a notification.
  }
  event.waitUntil(
    self.registration.showNotification("Sign-in request", {
      body: "Open to approve or deny",
      tag: challenge || "twostep-sign-in",
      icon: "/static/companion-icon.svg",
      requireInteraction: true,
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).pathname === "/companion" && "focus" in client) return client.focus();
      }
      return self.clients.openWindow("/companion");
    })(),
  );
});
