// The watch page's Share and Embed panels: copy the link (optionally starting at the
// player's current time, `?t=<seconds>`) or the embed code to the clipboard.
// Without JavaScript the panels still open and show the link and the code to copy.
(() => {
  "use strict";

  const { formatTime } = window.ClipSync;
  const link = document.getElementById("share-link");
  const atTime = document.getElementById("share-at-time");
  const timeText = document.getElementById("share-time");
  const player = window.clipsyncPlayer;
  const video = player ? player.video : null;
  if (!link) return;

  function currentSeconds() {
    return video ? Math.floor(video.currentTime || 0) : 0;
  }

  function shareUrl() {
    const url = new URL(link.dataset.base || link.value, window.location.href);
    if (atTime && atTime.checked) url.searchParams.set("t", String(currentSeconds()));
    else url.searchParams.delete("t");
    return url.toString();
  }

  function refresh() {
    if (timeText) timeText.textContent = formatTime(currentSeconds());
    link.value = shareUrl();
  }

  async function copy(text, field, status) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (an http page that is not localhost): select the text
      // so that Ctrl+C copies it.
      field.focus();
      field.select();
      if (status) status.textContent = "Press Ctrl+C (⌘C) to copy.";
      return;
    }
    if (status) status.textContent = "Copied.";
  }

  const share = document.getElementById("share");
  if (share) share.addEventListener("toggle", refresh);
  if (atTime) atTime.addEventListener("change", refresh);
  if (video) video.addEventListener("timeupdate", () => {
    if (share && share.open) refresh();
  });
  link.addEventListener("focus", () => link.select());

  const shareCopy = document.getElementById("share-copy");
  if (shareCopy) {
    shareCopy.addEventListener("click", () => {
      refresh();
      copy(link.value, link, document.getElementById("share-status"));
    });
  }

  const code = document.getElementById("embed-code");
  const embedCopy = document.getElementById("embed-copy");
  if (code && embedCopy) {
    embedCopy.addEventListener("click", () => copy(code.value, code, document.getElementById("embed-status")));
    code.addEventListener("focus", () => code.select());
  }
  refresh();
})();
