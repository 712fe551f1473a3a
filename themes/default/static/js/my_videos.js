// "My videos": keep each row's status, progress and error up to date, live.
//
// GET /api/videos/events is a Server-Sent Events stream: an `event: video` message
// with a video's JSON whenever one of my videos changes (and one per video when it
// opens), and a last `event: signed-out` when the session ends. The matching row
// (tr[data-video-id]) is updated in place; a video not on the page yet (uploaded in
// another tab) is added at the top of the first page.
(() => {
  "use strict";

  const { formatBytes, formatDate } = window.ClipSync;
  const root = document.getElementById("my-videos");
  const rows = document.getElementById("video-rows");
  if (!root || !rows || !("EventSource" in window)) return;

  const table = document.getElementById("video-table");
  const emptyState = document.getElementById("empty-state");
  const rowTemplate = document.getElementById("video-row-template");
  const announcer = document.getElementById("live-announce");
  const liveStatus = document.getElementById("live-status");
  const firstPage = Number(root.dataset.page || "1") === 1;

  const EVENTS_URL = "/api/videos/events";
  const LABELS = {
    UPLOADED: "Uploaded",
    PROCESSING: "Processing",
    READY: "Ready",
    APPROVED: "Approved",
    FAILED: "Failed",
    REJECTED: "Rejected",
  };
  const NOTES = {
    UPLOADED: "Waiting to be processed.",
    PROCESSING: "Preparing the video for streaming…",
    READY: "Ready to watch. Others see it once it is approved.",
    APPROVED: "Shared with your category.",
    FAILED: "This video could not be processed.",
    REJECTED: "This video was not approved.",
  };

  const part = (row, role) => row.querySelector(`[data-role="${role}"]`);

  function findRow(id) {
    for (const row of rows.querySelectorAll("tr[data-video-id]")) {
      if (row.dataset.videoId === id) return row;
    }
    return null;
  }

  const time = (iso) => {
    const value = Date.parse(iso || "");
    return Number.isNaN(value) ? 0 : value;
  };
  // Only videos newer than the newest one rendered are new: the stream's first burst
  // also covers my older videos, which belong on later pages.
  const newestShown = time(root.dataset.newest);

  function newRow(video) {
    if (!rowTemplate || (newestShown && time(video.createdAt) <= newestShown)) return null;
    const row = rowTemplate.content.querySelector("tr").cloneNode(true);
    row.dataset.videoId = video.id;
    row.dataset.created = video.createdAt || "";
    // Newest first, like the server's list.
    const created = time(video.createdAt);
    const before = Array.from(rows.querySelectorAll("tr[data-video-id]")).find(
      (other) => time(other.dataset.created) < created
    );
    rows.insertBefore(row, before || null);
    table.hidden = false;
    if (emptyState) emptyState.hidden = true;
    return row;
  }

  function setTitle(row, video) {
    const current = part(row, "title");
    const text = video.title || "Untitled";
    const wantLink = Boolean(video.playable);
    let title = current;
    if (wantLink !== (current.tagName === "A")) {
      title = document.createElement(wantLink ? "a" : "span");
      title.className = current.className;
      title.dataset.role = "title";
      current.replaceWith(title);
    }
    if (wantLink) title.href = `/watch/${encodeURIComponent(video.id)}`;
    if (title.textContent !== text) title.textContent = text;
  }

  function setPoster(row, video) {
    const thumb = part(row, "thumb");
    if (!thumb) return;
    const letter = ((video.title || "?").trim()[0] || "?").toUpperCase();
    const image = part(row, "poster");
    if (video.poster) {
      if (image) {
        if (image.getAttribute("src") !== video.poster) image.src = video.poster;
        return;
      }
      const img = document.createElement("img");
      img.dataset.role = "poster";
      img.alt = "";
      img.decoding = "async";
      img.src = video.poster;
      thumb.replaceChildren(img);
    } else if (!image) {
      const placeholder = thumb.querySelector(".video-thumb-letter");
      if (placeholder) placeholder.textContent = letter;
    }
  }

  function setStatus(row, status) {
    const badge = part(row, "status");
    badge.textContent = LABELS[status] || status;
    badge.dataset.status = status;
    badge.className = `badge status-badge status-${status.toLowerCase()}`;
    row.dataset.status = status;
  }

  function setProgress(row, video) {
    const box = part(row, "progress-box");
    const bar = part(row, "progress");
    const text = part(row, "progress-text");
    const percent = Math.max(0, Math.min(100, Math.round(Number(video.progress) || 0)));
    box.hidden = video.status !== "PROCESSING";
    bar.value = percent;
    bar.textContent = `${percent}%`;
    if (text) text.textContent = `${percent}%`;
  }

  function setError(row, video) {
    const error = part(row, "error");
    const shown = Boolean(video.error) && (video.status === "FAILED" || video.status === "REJECTED");
    error.textContent = shown ? video.error : "";
    error.hidden = !shown;
  }

  // The moderation decision: "Rejected: <reason>", or "Approved on <date>".
  function setModeration(row, video) {
    const box = part(row, "moderation");
    if (!box) return;
    if (video.status === "REJECTED") {
      const reason = video.moderationReason || "";
      box.textContent = reason ? `Rejected: ${reason}` : "Rejected";
    } else if (video.status === "APPROVED") {
      box.textContent = "Approved";
      if (video.moderatedAt) {
        const time = document.createElement("time");
        time.dateTime = video.moderatedAt;
        time.dataset.local = "date";
        time.textContent =
          formatDate(video.moderatedAt, { dateOnly: true }) || video.moderatedAt.slice(0, 10);
        time.title = formatDate(video.moderatedAt);
        box.append(" on ", time);
      }
    } else {
      box.textContent = "";
    }
    box.hidden = !box.textContent;
  }

  function setText(row, role, text) {
    const cell = part(row, role);
    if (cell && cell.textContent !== text) cell.textContent = text;
  }

  function setCreated(row, iso) {
    const cell = part(row, "created");
    if (!cell || !iso || cell.querySelector("time")) return;
    const time = document.createElement("time");
    time.dateTime = iso;
    time.dataset.local = "";
    time.textContent = formatDate(iso) || iso.slice(0, 10);
    cell.replaceChildren(time);
  }

  function announce(video, before) {
    if (!announcer || before === video.status) return;
    const title = video.title || "Untitled";
    let message = `${title}: ${LABELS[video.status] || video.status}.`;
    if (video.status === "READY" || video.status === "APPROVED") message = `${title} is ready to watch.`;
    if (video.status === "FAILED") message = `${title} failed${video.error ? `: ${video.error}` : "."}`;
    announcer.textContent = message;
  }

  function update(video) {
    if (!video || !video.id || !video.status) return;
    let row = findRow(video.id);
    let before = row ? row.dataset.status : null;
    if (!row) {
      if (!firstPage) return;
      row = newRow(video);
      if (!row) return;
      before = null;
    }
    setStatus(row, video.status);
    setTitle(row, video);
    setPoster(row, video);
    setProgress(row, video);
    setError(row, video);
    setText(row, "note", NOTES[video.status] || "");
    if ("moderationReason" in video || "moderatedAt" in video) setModeration(row, video);
    if ("originalFilename" in video) setText(row, "filename", video.originalFilename || "");
    if (video.size) setText(row, "size", formatBytes(video.size));
    setCreated(row, video.createdAt);
    if (before) announce(video, before);
  }

  function onMessage(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    update(data && data.video && !data.id ? data.video : data);
  }

  let source = null;

  function connect() {
    const stream = new EventSource(EVENTS_URL);
    source = stream;
    stream.addEventListener("video", onMessage);
    stream.addEventListener("message", onMessage);
    stream.addEventListener("open", () => {
      if (liveStatus) liveStatus.hidden = true;
    });
    // The session ended (signed out, account changed): the server's last event says why.
    // Closing stops EventSource from reconnecting to a stream it may no longer open.
    stream.addEventListener("signed-out", (event) => {
      stream.close();
      let message = "Your session has ended. Please sign in again.";
      try {
        message = JSON.parse(event.data).message || message;
      } catch {
        // keep the default
      }
      if (liveStatus) {
        liveStatus.textContent = `Live updates stopped: ${message}`;
        liveStatus.hidden = false;
      }
    });
    stream.addEventListener("error", () => {
      // EventSource reconnects by itself; CLOSED means it gave up (e.g. signed out).
      if (stream.readyState === EventSource.CLOSED && liveStatus) {
        liveStatus.textContent = "Live updates stopped. Reload the page to see the latest status.";
        liveStatus.hidden = false;
      }
    });
    window.clipsyncMyVideos.source = stream;
  }

  // Closed while the page is hidden in the back/forward cache, reopened when it is back.
  window.addEventListener("pagehide", () => {
    if (source) source.close();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect();
  });

  window.clipsyncMyVideos = { source: null, update };
  connect();
})();
