// The moderation console's shared helpers, loaded by every admin page before its own
// script (admin_queue.js, admin_users.js, admin_invites.js): status words, row
// messages, and an inline HLS preview player.
//
// window.ClipSyncAdmin = { LABELS, statusLabel, setBadge, say, part, copyField,
// openPreview, closePreview }. For tests: window.clipsyncPreview is the open preview
// ({ hls, video, box }) or null.
(() => {
  "use strict";

  // The words of _video_card.html's status_labels.
  const LABELS = {
    UPLOADED: "Uploaded",
    PROCESSING: "Processing",
    READY: "Ready",
    APPROVED: "Approved",
    FAILED: "Failed",
    REJECTED: "Rejected",
  };

  const statusLabel = (status) => LABELS[status] || status || "";

  const part = (root, role) => (root ? root.querySelector(`[data-role="${role}"]`) : null);

  // A status badge made by status_badge(): text, class and data-status.
  function setBadge(badge, status) {
    if (!badge) return;
    badge.textContent = statusLabel(status);
    badge.dataset.status = status;
    badge.className = `badge status-badge status-${String(status).toLowerCase()}`;
  }

  // A message next to what it is about. kind: "ok", "error" or "info"; "" clears it.
  function say(element, text, kind = "info") {
    if (!element) return;
    element.classList.remove("is-ok", "is-error", "is-info");
    element.textContent = text || "";
    if (text) element.classList.add(`is-${kind}`);
  }

  // --- the inline preview: one player at a time ----------------------------------------

  let current = null;

  function closePreview() {
    const player = current;
    if (!player) return;
    current = null;
    window.clipsyncPreview = null;
    if (player.hls) player.hls.destroy();
    player.video.pause();
    player.video.removeAttribute("src");
    player.video.load();
    player.box.replaceChildren();
    player.box.hidden = true;
    if (player.onClose) player.onClose();
  }

  // Play `source` (a master playlist) in `box`, closing any other preview first.
  // options: { poster, title, autoplay, onClose }.
  function openPreview(box, source, { poster = "", title = "", autoplay = true, onClose } = {}) {
    closePreview();
    const frame = document.createElement("div");
    frame.className = "player-frame preview-frame";
    const video = document.createElement("video");
    video.controls = true;
    video.playsInline = true;
    video.preload = "metadata";
    if (poster) video.poster = poster;
    if (title) video.setAttribute("aria-label", `Preview: ${title}`);
    video.textContent = "Your browser cannot play this video.";
    frame.append(video);
    const error = document.createElement("p");
    error.className = "form-error player-notice";
    error.setAttribute("role", "alert");
    error.hidden = true;
    box.replaceChildren(frame, error);
    box.hidden = false;

    const player = { box, video, hls: null, onClose };
    current = player;
    window.clipsyncPreview = player;

    const showError = (message) => {
      error.textContent = message;
      error.hidden = false;
    };
    const start = () => {
      if (autoplay && current === player) video.play().catch(() => {});
    };

    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      const hls = new Hls({ capLevelToPlayerSize: true });
      player.hls = hls;
      let recoveries = 0;
      hls.on(Hls.Events.MANIFEST_PARSED, start);
      hls.on(Hls.Events.ERROR, (event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries < 2) {
          recoveries += 1;
          hls.recoverMediaError();
          return;
        }
        const status = data.response && data.response.code;
        showError(
          data.type === Hls.ErrorTypes.NETWORK_ERROR
            ? `The video could not be loaded${status ? ` (HTTP ${status})` : ""}. It may have been deleted or moved; reload the page to see.`
            : "This video could not be played in this browser."
        );
      });
      hls.loadSource(source);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = source;
      video.addEventListener("error", () => showError("The video could not be loaded."));
      start();
    } else {
      showError("This browser cannot play streaming video.");
    }
    return player;
  }

  window.clipsyncPreview = null;
  // Copy a read-only field's text (an invite link, a webhook secret) and say how it
  // went in `status`. `what` names it in the fallback hint: "the link is selected…".
  async function copyField(field, status, what, done = "Copied.") {
    const text = field.value;
    if (!text) return;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      say(status, done, "ok");
    } catch {
      // Plain http, or the permission was refused: the old way, from the selection.
      field.focus();
      field.select();
      let copied = false;
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
      say(
        status,
        copied ? done : `Could not copy by itself: ${what} is selected, press Ctrl+C (⌘C on a Mac).`,
        copied ? "ok" : "error"
      );
    }
  }

  window.ClipSyncAdmin = {
    LABELS,
    statusLabel,
    setBadge,
    say,
    part,
    copyField,
    openPreview,
    closePreview,
  };
})();
