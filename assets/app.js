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

// A token shown once is blanked when its page is left: should the browser keep the page in
// its back-forward cache (it is served `no-store`, which should prevent that), going back
// does not show the token again.
window.addEventListener("pagehide", () => {
  for (const element of document.querySelectorAll("[data-once]")) {
    element.textContent = "(shown once: no longer shown)";
  }
});
