// The one script of the pages for people. Every page works without it; it only adds what
// serves the person: a copy button for a token shown once, and approvals that appear on an
// open page without a reload. Served from 'self' under a CSP without inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        // No clipboard (an insecure origin): select the text for the person to copy.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
});

// Approvals: the pending list of an open page is fetched again every few seconds, so that a new
// approval appears without a reload. The server renders the list (escaped by its templates);
// it is parsed with DOMParser, which runs no script, and swapped in only when it changed.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.querySelector("[data-poll]");
  if (!list) return;
  const every = 3000;
  let shown = null;
  let timer = null;
  const refresh = async () => {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(list.dataset.poll, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        cache: "no-store",
      });
    } catch (_) {
      return; // Offline for a moment: the next round tries again.
    }
    if (response.redirected || response.status === 401 || response.status === 403) {
      clearInterval(timer); // Signed out: a reload shows the sign-in form.
      return;
    }
    if (!response.ok) return;
    const html = await response.text();
    if (html === shown) return;
    shown = html;
    const parsed = new DOMParser().parseFromString(html, "text/html");
    list.replaceChildren(...Array.from(parsed.body.childNodes, (node) => document.adoptNode(node)));
  };
  timer = setInterval(refresh, every);
});

// A token shown once is blanked when its page is left: should the browser keep the page in
// its back-forward cache (it is served `no-store`, which should prevent that), going back
// does not show the token again.
window.addEventListener("pagehide", () => {
  for (const element of document.querySelectorAll("[data-once]")) {
    element.textContent = "(shown once: no longer shown)";
  }
});
