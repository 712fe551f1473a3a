// The player of the watch and embed pages, part 1 of 4: loading (hls.js, or the
// browser's own HLS), the start quality, errors with a retry, resume, and saving the
// position. It also follows a video that is still being processed.
//
// The other parts, loaded after this one by _player_scripts.html, build on the object
// this one publishes as window.clipsyncPlayer (tests and analytics.js read it too):
// player_menus.js (quality, captions, speed), player_controls.js (the bar over the
// video) and player_keys.js (keyboard shortcuts).
//
// <video id="player"> carries what the page knows: data-hls (master playlist),
// data-video-id, data-resume-at (seconds), data-start-at (seconds from `?t=`, which wins
// over resuming), data-duration, data-thumbnails (a WebVTT file whose cues are
// "sprite.jpg#xywh=x,y,w,h") and data-chapters (JSON). A link with data-seek (a time in
// the description, clipsync/rich_text.py) seeks the player instead of reloading.
//
// A video still transcoding, shown to its uploader and moderators (#early-playback,
// player_early.js): its playlists grow (HLS EVENT), so it starts at 0, not at the live
// edge, and loads only once player_early.js calls player.load() (its master stored).
(() => {
  "use strict";

  const { api, formatTime } = window.ClipSync;

  const SAVE_EVERY_MS = 5000; // save the position this often while playing
  const RESUME_MARGIN = 5; // resume only between 5 s in and 5 s before the end
  const EVENTS_URL = "/api/videos/events";
  // The bandwidth hls.js last measured (bit/s): the next video starts at the quality
  // it allows instead of at the lowest.
  const BANDWIDTH_KEY = "clipsync.bandwidth";

  // --- a video that is not ready yet: follow its processing ---------------------------

  const placeholder = document.getElementById("player-placeholder");
  if (placeholder) {
    followProcessing(placeholder);
    return;
  }

  function followProcessing(box) {
    if (box.dataset.follow !== "1" || !("EventSource" in window)) return;
    const bar = document.getElementById("processing-progress");
    const text = document.getElementById("processing-text");
    const stream = new EventSource(EVENTS_URL);
    stream.addEventListener("video", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!data || data.id !== box.dataset.videoId) return;
      if (data.playable || data.status !== box.dataset.status) {
        // Ready (or failed): the page itself shows the new state.
        stream.close();
        window.location.reload();
        return;
      }
      const percent = Math.max(0, Math.min(100, Math.round(Number(data.progress) || 0)));
      if (bar) bar.value = percent;
      if (bar && text) text.textContent = `${percent}% done. It will play here when it is ready.`;
    });
    // The session ended: stop listening rather than reconnect (the next load signs in).
    stream.addEventListener("signed-out", () => stream.close());
    window.addEventListener("pagehide", () => stream.close());
  }

  // --- the player -----------------------------------------------------------------------

  const video = document.getElementById("player");
  if (!video || !video.dataset.hls) return;

  const source = video.dataset.hls;
  const videoId = video.dataset.videoId || "";
  const resumeAt = Number(video.dataset.resumeAt) || 0;
  const startAtText = video.dataset.startAt || "";
  const startAt = startAtText !== "" && Number(startAtText) >= 0 ? Number(startAtText) : null;
  const knownDuration = Number(video.dataset.duration) || 0;
  const early = document.getElementById("early-playback");

  const box = document.getElementById("player-box");
  const errorBox = document.getElementById("player-error");
  const errorText = document.getElementById("player-error-text");
  const errorDetail = document.getElementById("player-error-detail");
  const retryButton = document.getElementById("player-retry");
  const resumeNotice = document.getElementById("resume-notice");
  const resumeText = document.getElementById("resume-text");
  const startOverButton = document.getElementById("start-over");

  function duration() {
    return Number.isFinite(video.duration) && video.duration > 0 ? video.duration : knownDuration;
  }

  const canResume = (total) =>
    resumeAt > RESUME_MARGIN && total > 0 && resumeAt < total - RESUME_MARGIN;

  function stored(key) {
    try {
      return window.localStorage.getItem(key) || "";
    } catch {
      return ""; // storage may be off (private mode)
    }
  }

  function store(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value);
      else window.localStorage.removeItem(key);
    } catch {
      // Storage may be off (private mode): the choice lasts for this page only.
    }
  }

  // --- the start quality --------------------------------------------------------------
  // hls.js picks the first rendition from a bandwidth estimate (`startLevel: -1`): the
  // one measured on this browser's last video, else the browser's own guess
  // (navigator.connection, Chromium), else it measures on the lowest rendition's first
  // segment (`testBandwidth`). `capLevelToPlayerSize` keeps it to the player's size.

  function startEstimate() {
    const remembered = Number(stored(BANDWIDTH_KEY));
    if (Number.isFinite(remembered) && remembered > 0) return remembered;
    const connection = navigator.connection;
    const downlink = connection ? Number(connection.downlink) : 0; // Mbit/s
    return Number.isFinite(downlink) && downlink > 0 ? downlink * 1e6 : 0;
  }

  // --- errors ---------------------------------------------------------------------------

  const retryActions = [];

  // Says what happened in the player and offers a retry; `detail` is for a bug report.
  function showError(message, detail = "") {
    if (!errorBox) return;
    errorText.textContent = message;
    errorDetail.textContent = detail;
    errorDetail.hidden = !detail;
    errorBox.hidden = false;
    if (box) box.classList.add("player-failed");
  }

  function hideError() {
    if (errorBox) errorBox.hidden = true;
    if (box) box.classList.remove("player-failed");
  }

  if (retryButton) {
    retryButton.addEventListener("click", () => {
      hideError();
      for (const action of retryActions) action();
    });
  }

  const player = { hls: null, video, box, duration, showError, hideError };
  window.clipsyncPlayer = player;

  // --- loading: hls.js, or the browser's own HLS ------------------------------------

  const Hls = window.Hls;
  let hls = null;
  let mediaRecoveries = 0;
  // With object storage, media playlists list presigned segment URLs that expire
  // (clipsync/api/hls.py). hls.js reads a VOD playlist once, so after a long pause
  // the store answers 403: load the source again (freshly signed playlists) and go
  // on from the same position. A few times in a row at most, then say so.
  let sourceReloads = 0;
  const MAX_SOURCE_RELOADS = 3;
  let lastFatal = null;

  function hlsConfig() {
    const estimate = startEstimate();
    const config = {
      startLevel: -1,
      capLevelToPlayerSize: true,
      testBandwidth: !estimate,
      // Start fetching where we will resume, not at 0 (checked again on loadedmetadata).
      startPosition: startAt !== null ? startAt : canResume(knownDuration) ? resumeAt : -1,
    };
    // A growing (EVENT) playlist would start at its live edge: watch from the start.
    if (early && config.startPosition < 0) config.startPosition = 0;
    if (estimate) config.abrEwmaDefaultEstimate = estimate;
    // The captions chosen last time, when this video has them in that language
    // (player_menus.js keeps the choice).
    const captions = stored("clipsync.captions");
    if (captions) config.subtitlePreference = { lang: captions };
    config.subtitleDisplay = Boolean(captions);
    return config;
  }

  function reloadSource() {
    const position = video.currentTime;
    const playing = !video.paused;
    hls.config.startPosition = position; // used when the reloaded manifest starts loading
    if (playing) hls.once(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    hls.loadSource(source);
  }

  // What a person can understand of a fatal hls.js error, and what a bug report needs.
  function describeError(data) {
    const status = data.response && data.response.code;
    const detail = `${data.details}${status ? `, HTTP ${status}` : ""}`;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      if (status === 401 || status === 403) {
        return [
          "Not allowed: you may have been signed out, or may no longer watch this video. Sign in again, then try again.",
          detail,
        ];
      }
      if (status === 404) {
        return ["Not ready: this video is not ready to play yet, or it is no longer available.", detail];
      }
      return ["Network error: the video could not be loaded. Check your connection, then try again.", detail];
    }
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      return ["Media error: this video could not be played in this browser.", detail];
    }
    return ["The player stopped because of an error.", detail];
  }

  function onHlsError(event, data) {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
      mediaRecoveries += 1;
      hls.recoverMediaError();
      return;
    }
    const status = data.response && data.response.code;
    const expired = data.type === Hls.ErrorTypes.NETWORK_ERROR && data.frag && status === 403;
    if (expired && sourceReloads < MAX_SOURCE_RELOADS) {
      sourceReloads += 1;
      reloadSource();
      return;
    }
    lastFatal = data;
    showError(...describeError(data));
  }

  function rememberBandwidth(event, data) {
    if (!data.frag || data.frag.type !== "main") return;
    const estimate = Math.round(hls.bandwidthEstimate);
    if (Number.isFinite(estimate) && estimate > 0) store(BANDWIDTH_KEY, String(estimate));
  }

  function start() {
    if (hls) {
      hls.loadSource(source);
      hls.attachMedia(video);
    }
  }
  Object.assign(player, { source, load: start, reloadSource: () => hls && reloadSource() });

  if (Hls && Hls.isSupported()) {
    hls = new Hls(hlsConfig());
    player.hls = hls;
    hls.on(Hls.Events.ERROR, onHlsError);
    hls.on(Hls.Events.FRAG_LOADED, () => {
      sourceReloads = 0;
    });
    hls.on(Hls.Events.FRAG_BUFFERED, rememberBandwidth);
    retryActions.push(() => {
      mediaRecoveries = 0;
      sourceReloads = 0;
      if (lastFatal && lastFatal.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      lastFatal = null;
      reloadSource();
    });
    // The other parts of the player subscribe to hls.js first: load once they have run.
    // Still transcoding with nothing stored yet: player_early.js loads it when it is.
    if (early && early.dataset.ready !== "1") {
      // waits for player.load()
    } else if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start);
    } else {
      setTimeout(start, 0);
    }
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    const load = () => {
      const position = video.currentTime;
      video.src = source;
      if (position) video.currentTime = position;
    };
    Object.assign(player, { load, reloadSource: load });
    if (!early || early.dataset.ready === "1") video.src = source;
    video.addEventListener("error", () => {
      const code = video.error ? video.error.code : 0;
      showError(
        code === 4 || code === 2
          ? "The video could not be loaded: you may have been signed out, or it is no longer available."
          : "Media error: this video could not be played in this browser.",
        code ? `media error ${code}` : ""
      );
    });
    retryActions.push(() => {
      const position = video.currentTime;
      video.load();
      video.currentTime = position;
    });
  } else {
    showError(
      "This browser cannot play streaming video. Please try a current version of Firefox, Chrome, Edge or Safari."
    );
    if (retryButton) retryButton.hidden = true;
  }

  // --- resume -------------------------------------------------------------------------

  let resumeHandled = false;
  let touched = false; // played or sought: only then is the position worth saving

  function applyResume() {
    if (resumeHandled) return;
    const total = duration();
    if (!total) return;
    resumeHandled = true;
    if (startAt !== null) {
      // A shared link's ?t= (or a description time followed without JavaScript).
      const target = Math.min(startAt, Math.max(0, total - 0.5));
      if (Math.abs(video.currentTime - target) > 0.5) video.currentTime = target;
      return;
    }
    if (!canResume(total)) return;
    if (Math.abs(video.currentTime - resumeAt) > 0.5) video.currentTime = resumeAt;
    if (resumeNotice && resumeText) {
      resumeText.textContent = `Resumed at ${formatTime(resumeAt)}`;
      resumeNotice.hidden = false;
    }
  }

  function hideResumeNotice() {
    if (resumeNotice) resumeNotice.hidden = true;
  }

  video.addEventListener("loadedmetadata", applyResume);
  video.addEventListener("durationchange", applyResume);

  // --- moving around: what the bar, the shortcuts and the description's links call -----

  function seek(seconds) {
    touched = true;
    resumeHandled = true; // a chosen time wins over resuming
    hideResumeNotice();
    const total = duration();
    video.currentTime = Math.max(0, total ? Math.min(seconds, total) : seconds);
  }

  // A time to watch from (a description's link): seek there and play.
  function seekTo(seconds) {
    const total = duration();
    seek(total ? Math.min(seconds, Math.max(0, total - 0.5)) : seconds);
    video.play().catch(() => {});
  }

  function togglePlay() {
    if (video.paused || video.ended) video.play().catch(() => {});
    else video.pause();
  }

  Object.assign(player, {
    seek,
    seekTo,
    seekBy: (seconds) => seek(video.currentTime + seconds),
    togglePlay,
  });

  if (startOverButton) {
    startOverButton.addEventListener("click", () => {
      seek(0);
      video.focus();
    });
  }

  // --- saving the position --------------------------------------------------------------

  let lastSavedAt = 0;
  let lastSavedPosition = resumeAt;

  function savePosition({ keepalive = false } = {}) {
    if (!touched || !videoId) return null;
    const position = Math.round(video.currentTime * 10) / 10;
    if (!Number.isFinite(position) || Math.abs(position - lastSavedPosition) < 0.5) return null;
    lastSavedPosition = position;
    lastSavedAt = performance.now();
    return api("PUT", `/api/videos/${encodeURIComponent(videoId)}/progress`, { position }, { keepalive })
      .catch((error) => {
        // Not worth interrupting the film for; the next save will try again.
        lastSavedPosition = Number.NaN;
        console.warn("ClipSync: could not save the position:", error.message);
      });
  }
  player.savePosition = savePosition;

  video.addEventListener("playing", () => {
    touched = true;
    if (!lastSavedAt) lastSavedAt = performance.now();
  });
  video.addEventListener("timeupdate", () => {
    if (!video.paused && !video.seeking && performance.now() - lastSavedAt >= SAVE_EVERY_MS) {
      savePosition();
    }
    if (resumeNotice && !resumeNotice.hidden && video.currentTime > resumeAt + 15) hideResumeNotice();
  });
  video.addEventListener("pause", () => savePosition());
  video.addEventListener("ended", () => savePosition());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") savePosition({ keepalive: true });
  });
  window.addEventListener("pagehide", () => savePosition({ keepalive: true }));

  // --- times in the description seek the player -----------------------------------------

  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[data-seek]") : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const seconds = Number(link.dataset.seek);
    if (!Number.isFinite(seconds) || seconds < 0) return;
    event.preventDefault();
    seekTo(seconds);
    (box || video).scrollIntoView({ block: "nearest", behavior: "smooth" });
    const playButton = document.getElementById("play-pause");
    if (playButton) playButton.focus({ preventScroll: true });
  });
})();
