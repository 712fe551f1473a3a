// Watch analytics for the watch page: reports what the viewer does with the player.
//
// Events (PLAY, PAUSE, PROGRESS every 5 s of playback, SEEK, COMPLETE,
// QUALITY_CHANGE, BUFFER_START/END, ERROR, FOCUS_START/END) carry the position,
// the rendition and `played`: the seconds really played since the previous event,
// seeks and pauses excluded. They are queued and sent in batches every 10 s, and
// with navigator.sendBeacon when the page is hidden or closed.
(function () {
  "use strict";

  const player = window.clipsyncPlayer;
  const video = player && player.video;
  if (!video || !video.dataset.videoId) return;

  const ENDPOINT = "/api/analytics/event";
  const FLUSH_MS = 10000;
  const PROGRESS_EVERY = 5;
  const MAX_BATCH = 50;
  const videoId = video.dataset.videoId;
  const sessionId = window.crypto && crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();

  let queue = [];
  let played = 0; // seconds played since the last event
  let sinceProgress = 0; // seconds played since the last PROGRESS
  let lastTime = video.currentTime || 0;
  let seekFrom = null;
  let bufferingSince = null;
  // Rebuffering is a stall of playback that was under way. The wait before the first
  // frame is start-up delay, not rebuffering, and neither is the wait for a position
  // the viewer seeked to: they asked for the jump, and the same stall after a seek
  // happens however good the connection is. Both would also inflate the rebuffering
  // ratio of short views most. So stalls count only once playback has started, and
  // not from a seek until playback moves on again.
  let started = false;
  let seekWait = false;

  // Named as in the quality menu (player_menus.js): by the short side, as in
  // [transcoder] ladder, so a portrait video's 720p is not reported as "1280p".
  function shortSide(width, height) {
    const side = width && height ? Math.min(width, height) : height || 0;
    return side ? `${side}p` : "";
  }

  function rendition() {
    const hls = player.hls;
    const level = hls && hls.levels && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel] : null;
    if (level) {
      const label = typeof player.levelLabel === "function" ? player.levelLabel(hls.currentLevel) : "";
      return label || shortSide(level.width, level.height);
    }
    return shortSide(video.videoWidth, video.videoHeight);
  }

  function track(type, extra = {}) {
    queue.push({
      type,
      videoId,
      sessionId,
      position: Math.max(0, video.currentTime || 0),
      rendition: rendition(),
      played: Math.round(played * 1000) / 1000,
      ...extra,
    });
    played = 0;
    if (queue.length >= MAX_BATCH) flush();
  }

  function batchUrl() {
    return `${ENDPOINT}?csrf=${encodeURIComponent(window.ClipSync.csrfToken())}`;
  }

  function flush(leaving = false) {
    if (!queue.length) return;
    const batch = queue.splice(0, MAX_BATCH);
    const body = JSON.stringify(batch);
    if (leaving && navigator.sendBeacon) {
      navigator.sendBeacon(batchUrl(), new Blob([body], { type: "application/json" }));
    } else {
      fetch(ENDPOINT, {
        method: "POST",
        headers: window.ClipSync.csrfHeaders({ "Content-Type": "application/json" }),
        body,
        keepalive: leaving,
      }).then(
        // Read the answer: an unread body (never cached: answers are no-store) keeps
        // the request open, and its connection busy, until it is garbage-collected.
        (response) => response.arrayBuffer().catch(() => {}),
        () => {
          // Offline for a moment: keep the events for the next try.
          queue = batch.concat(queue).slice(-500);
        },
      );
    }
    if (queue.length) flush(leaving);
  }

  // Playback time: count forward steps of normal playback only, so seeks never count.
  video.addEventListener("timeupdate", () => {
    const now = video.currentTime;
    const step = now - lastTime;
    lastTime = now;
    if (video.paused || video.seeking || step <= 0 || step > 2) return;
    seekWait = false; // playing on from where the seek landed
    played += step;
    sinceProgress += step;
    if (sinceProgress >= PROGRESS_EVERY) {
      sinceProgress = 0;
      track("PROGRESS");
    }
  });
  video.addEventListener("play", () => track("PLAY"));
  video.addEventListener("pause", () => {
    if (!video.ended) track("PAUSE");
  });
  video.addEventListener("ended", () => track("COMPLETE"));
  video.addEventListener("seeking", () => {
    if (seekFrom === null) seekFrom = lastTime;
    seekWait = true;
  });
  video.addEventListener("seeked", () => {
    const to = video.currentTime;
    if (seekFrom !== null && Math.abs(to - seekFrom) > 0.5) {
      track("SEEK", { seekFrom, seekTo: to });
    }
    seekFrom = null;
    lastTime = to;
  });
  video.addEventListener("waiting", () => {
    if (!started || seekWait || video.seeking || bufferingSince !== null) return;
    bufferingSince = performance.now();
    track("BUFFER_START");
  });
  video.addEventListener("playing", () => {
    started = true;
    seekWait = false;
    if (bufferingSince === null) return;
    const stalled = (performance.now() - bufferingSince) / 1000;
    bufferingSince = null;
    track("BUFFER_END", { stalled: Math.round(stalled * 1000) / 1000 });
  });
  video.addEventListener("error", () => {
    const error = video.error;
    track("ERROR", { detail: error ? `media error ${error.code}` : "media error" });
  });

  function watchQuality() {
    const hls = player.hls;
    if (!hls || !window.Hls) return;
    hls.on(window.Hls.Events.LEVEL_SWITCHED, () => track("QUALITY_CHANGE"));
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data && data.fatal) track("ERROR", { detail: String(data.details || data.type).slice(0, 200) });
    });
  }
  watchQuality();

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      track("FOCUS_END");
      flush(true);
    } else {
      track("FOCUS_START");
    }
  });
  window.addEventListener("pagehide", () => flush(true));
  setInterval(flush, FLUSH_MS);

  window.clipsyncAnalytics = { flush, queue: () => queue.slice(), sessionId };
})();
