// The Share panel's "Copy stream link": asks for a signed master-playlist URL
// (POST /api/videos/<id>/stream-link, services/stream_links.py) and copies it. The
// link plays in VLC, mpv, Safari or on a TV with no sign-in, until it expires or this
// sign-in ends. A new link is made on every click, so none is kept in the page.
(() => {
  "use strict";

  const button = document.getElementById("stream-link-copy");
  const field = document.getElementById("stream-link");
  const status = document.getElementById("stream-link-status");
  if (!button || !field) return;
  const { api, errorMessage, formatDate } = window.ClipSync;

  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "";
    try {
      const link = await api("POST", `/api/videos/${button.dataset.video}/stream-link`);
      field.value = link.url;
      field.hidden = false;
      const until = `Works until ${formatDate(link.expiresAt)}, or until you sign out here.`;
      try {
        await navigator.clipboard.writeText(link.url);
        status.textContent = `Copied. ${until}`;
      } catch {
        field.focus();
        field.select();
        status.textContent = `Press Ctrl+C (⌘C) to copy. ${until}`;
      }
    } catch (error) {
      status.textContent = errorMessage(error.status, error.body);
    } finally {
      button.disabled = false;
    }
  });
  field.addEventListener("focus", () => field.select());
})();
