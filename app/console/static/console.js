// The console's little JavaScript (progressive enhancement: every page works without it).
//  * forms with data-confirm ask first;
//  * an element with data-refresh="N" and an id is reloaded every N seconds from the same URL (a running export).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function refreshEvery(element) {
  const seconds = Number(element.getAttribute("data-refresh"));
  if (!element.id || !(seconds > 0)) {
    return;
  }
  const tick = async () => {
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById(element.id);
        if (fresh) {
          element.replaceWith(fresh);
          element = fresh;
          if (!fresh.hasAttribute("data-refresh")) {
            return; // finished: stop refreshing
          }
        }
      }
    } catch (error) {
      // the connector restarting, say: try again at the next tick
    }
    window.setTimeout(tick, seconds * 1000);
  };
  window.setTimeout(tick, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refreshEvery);
});
