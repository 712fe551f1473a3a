// The watch page: HLS playback, quality and speed menus, resume, progress saving,
// captions (hls.js subtitle tracks), and a seek bar with thumbnail previews and chapter
// marks.
//
// <video id="player"> carries what the page knows: data-hls (master playlist),
// data-video-id, data-resume-at (seconds), data-start-at (seconds from `?t=`, which wins
// over resuming), data-duration, data-thumbnails (a WebVTT
// file whose cues are "sprite.jpg#xywh=x,y,w,h") and data-chapters (JSON). hls.js plays
// it where Media Source Extensions exist; browsers that play HLS themselves (Safari)
// get it as `src`. The <video> has no native controls: ClipSync's bar below it has
// play/pause, mute and full screen besides the menus. A link with data-seek (a time in
// the description, clipsync/rich_text.py) seeks the player instead of reloading.
// For tests: window.clipsyncPlayer = { hls, video }.
(() => {
  "use strict";

  const { api, formatTime } = window.ClipSync;

  const SAVE_EVERY_MS = 5000; // save the position this often while playing
  const RESUME_MARGIN = 5; // resume only between 5 s in and 5 s before the end
  const EVENTS_URL = "/api/videos/events";
  const CAPTIONS_KEY = "clipsync.captions"; // the captions language last chosen, if any

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
  const thumbnailsUrl = video.dataset.thumbnails || "";

  const controls = document.getElementById("player-controls");
  const errorBox = document.getElementById("player-error");
  const qualityMenu = document.getElementById("quality");
  const speedMenu = document.getElementById("speed");
  const seek = document.getElementById("seek");
  const seekBox = document.getElementById("seek-box");
  const preview = document.getElementById("seek-preview");
  const previewImage = document.getElementById("seek-preview-image");
  const previewTime = document.getElementById("seek-preview-time");
  const currentTimeText = document.getElementById("current-time");
  const totalTimeText = document.getElementById("total-time");
  const resumeNotice = document.getElementById("resume-notice");
  const resumeText = document.getElementById("resume-text");
  const startOverButton = document.getElementById("start-over");

  const player = { hls: null, video };
  window.clipsyncPlayer = player;
  if (controls) controls.hidden = false;

  function showError(message) {
    if (!errorBox) return;
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function duration() {
    return Number.isFinite(video.duration) && video.duration > 0 ? video.duration : knownDuration;
  }

  const canResume = (total) =>
    resumeAt > RESUME_MARGIN && total > 0 && resumeAt < total - RESUME_MARGIN;

  // --- loading: hls.js, or the browser's own HLS ------------------------------------

  const Hls = window.Hls;
  let hls = null;

  if (Hls && Hls.isSupported()) {
    const captionsLanguage = rememberedCaptions();
    hls = new Hls({
      capLevelToPlayerSize: true,
      // The captions chosen last time, when this video has them in that language.
      subtitlePreference: captionsLanguage ? { lang: captionsLanguage } : undefined,
      subtitleDisplay: Boolean(captionsLanguage),
      // Start fetching where we will resume, not at 0 (checked again on loadedmetadata).
      startPosition: startAt !== null ? startAt : canResume(knownDuration) ? resumeAt : -1,
    });
    player.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, buildQualityMenu);
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, buildCaptionsMenu);
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, showCurrentCaptions);
    hls.on(Hls.Events.LEVEL_SWITCHED, showCurrentLevel);
    hls.on(Hls.Events.ERROR, onHlsError);
    hls.on(Hls.Events.FRAG_LOADED, () => {
      sourceReloads = 0;
    });
    hls.loadSource(source);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = source;
    video.addEventListener("error", () => {
      const code = video.error ? video.error.code : 0;
      showError(
        code === 4 || code === 2
          ? "The video could not be loaded. You may have been signed out; reload the page to try again."
          : "This video could not be played in this browser."
      );
    });
  } else {
    showError(
      "This browser cannot play streaming video. Please try a current version of Firefox, Chrome, Edge or Safari."
    );
  }

  let mediaRecoveries = 0;
  // With object storage, media playlists list presigned segment URLs that expire
  // (clipsync/api/hls.py). hls.js reads a VOD playlist once, so after a long pause
  // the store answers 403: load the source again (freshly signed playlists) and go
  // on from the same position. A few times in a row at most, then say so.
  let sourceReloads = 0;
  const MAX_SOURCE_RELOADS = 3;

  function reloadSource() {
    const position = video.currentTime;
    const playing = !video.paused;
    hls.config.startPosition = position; // used when the reloaded manifest starts loading
    if (playing) hls.once(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    hls.loadSource(source);
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
    let message;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      message =
        status === 401 || status === 403 || status === 404
          ? "The video could not be loaded: you may have been signed out, or it is no longer available. Reload the page to try again."
          : "The video could not be loaded. Check your connection, then reload the page.";
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      message = "This video could not be played in this browser.";
    } else {
      message = "The player stopped because of an error. Reload the page to try again.";
    }
    showError(`${message} (${data.details}${status ? `, HTTP ${status}` : ""})`);
  }

  // --- quality menu ----------------------------------------------------------------------

  const levelLabels = new Map(); // level index -> "720p"

  function buildQualityMenu() {
    if (!qualityMenu) return;
    // Renditions are named by their short side, as in [transcoder] ladder: a portrait
    // video's 720p is 720 wide and 1280 high.
    const levels = hls.levels.map((level, index) => ({
      index,
      height: level.width && level.height ? Math.min(level.width, level.height) : level.height || 0,
      bitrate: level.bitrate || 0,
    }));
    levels.sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
    const perHeight = new Map();
    for (const level of levels) perHeight.set(level.height, (perHeight.get(level.height) || 0) + 1);

    const options = [new Option("Auto", "-1", true, true)];
    for (const level of levels) {
      const kbps = `${Math.round(level.bitrate / 1000)} kbit/s`;
      let label = level.height ? `${level.height}p` : kbps;
      if (level.height && perHeight.get(level.height) > 1) label += ` (${kbps})`;
      levelLabels.set(level.index, label);
      options.push(new Option(label, String(level.index)));
    }
    qualityMenu.replaceChildren(...options);
    qualityMenu.disabled = levels.length < 2;
    showCurrentLevel();
  }

  function showCurrentLevel() {
    if (!qualityMenu || !hls) return;
    const auto = qualityMenu.querySelector('option[value="-1"]');
    const label = levelLabels.get(hls.currentLevel);
    if (auto) auto.textContent = hls.autoLevelEnabled && label ? `Auto (${label})` : "Auto";
  }

  if (qualityMenu) {
    qualityMenu.addEventListener("change", () => {
      if (!hls) return;
      hls.currentLevel = Number(qualityMenu.value); // -1: automatic
      showCurrentLevel();
    });
  }

  // --- speed menu -------------------------------------------------------------------

  if (speedMenu) {
    speedMenu.addEventListener("change", () => {
      const rate = Number(speedMenu.value) || 1;
      video.defaultPlaybackRate = rate;
      video.playbackRate = rate;
    });
    video.addEventListener("ratechange", () => {
      const value = String(video.playbackRate);
      if (speedMenu.querySelector(`option[value="${value}"]`)) speedMenu.value = value;
    });
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

  if (startOverButton) {
    startOverButton.addEventListener("click", () => {
      touched = true;
      video.currentTime = 0;
      hideResumeNotice();
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

  // --- time display and seek bar ------------------------------------------------------

  let scrubbing = false; // the person is moving the seek bar: don't fight them

  function showTimes() {
    const total = duration();
    if (totalTimeText) totalTimeText.textContent = formatTime(total);
    if (currentTimeText && !scrubbing) currentTimeText.textContent = formatTime(video.currentTime);
    if (!seek || scrubbing) return;
    if (total && Number(seek.max) !== total) seek.max = String(total);
    seek.value = String(video.currentTime);
    seek.setAttribute("aria-valuetext", `${formatTime(video.currentTime)} of ${formatTime(total)}`);
  }

  video.addEventListener("timeupdate", showTimes);
  video.addEventListener("durationchange", showTimes);
  video.addEventListener("loadedmetadata", showTimes);
  video.addEventListener("seeked", showTimes);

  // Thumbnail cues: [{start, end, url, x, y, w, h}], sorted by start.
  let cues = [];

  function parseTimestamp(text) {
    return text
      .trim()
      .split(":")
      .reduce((seconds, part) => seconds * 60 + Number.parseFloat(part), 0);
  }

  function parseVtt(text, base) {
    const found = [];
    for (const block of text.replace(/\r\n?/g, "\n").split(/\n{2,}/)) {
      const lines = block.split("\n").filter((line) => line.trim());
      const at = lines.findIndex((line) => line.includes("-->"));
      if (at < 0 || at + 1 >= lines.length) continue;
      const [from, rest] = lines[at].split("-->");
      const start = parseTimestamp(from);
      const end = parseTimestamp(rest.trim().split(/\s+/)[0]);
      const target = lines[at + 1].trim();
      const hash = target.indexOf("#xywh=");
      const file = hash >= 0 ? target.slice(0, hash) : target;
      const box = hash >= 0 ? target.slice(hash + 6).replace(/^pixel:/, "").split(",").map(Number) : [];
      const [x = 0, y = 0, w = 0, h = 0] = box;
      if (!Number.isFinite(start) || !Number.isFinite(end)) continue;
      found.push({ start, end, url: new URL(file, base).href, x, y, w, h });
    }
    return found.sort((a, b) => a.start - b.start);
  }

  async function loadThumbnails() {
    if (!thumbnailsUrl) return;
    try {
      const base = new URL(thumbnailsUrl, window.location.href);
      const response = await fetch(base, { credentials: "same-origin" });
      if (!response.ok) return;
      cues = parseVtt(await response.text(), base);
      // Fetch the sprite sheets now, so the first hover already shows a picture.
      for (const url of new Set(cues.map((cue) => cue.url))) new Image().src = url;
    } catch (error) {
      console.warn("ClipSync: no seek previews:", error.message);
    }
  }

  function cueAt(seconds) {
    let low = 0;
    let high = cues.length - 1;
    let best = null;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (cues[middle].start <= seconds) {
        best = cues[middle];
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return best || cues[0] || null;
  }

  let hideTimer = 0;

  // Show the preview for `seconds`, centred over `x` pixels from the bar's left edge.
  function showPreview(seconds, x) {
    if (!preview || !seekBox) return;
    clearTimeout(hideTimer);
    const cue = cueAt(seconds);
    if (cue && cue.w && cue.h && previewImage) {
      previewImage.style.width = `${cue.w}px`;
      previewImage.style.height = `${cue.h}px`;
      previewImage.style.backgroundImage = `url("${cue.url.replace(/"/g, "%22")}")`;
      previewImage.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      previewImage.hidden = false;
    } else if (previewImage) {
      previewImage.hidden = true;
    }
    const chapter = chapters.length >= 2 ? chapterAt(seconds) : null;
    previewTime.textContent = formatTime(seconds) + (chapter ? ` · ${chapter.title}` : "");
    preview.hidden = false;
    const width = seekBox.clientWidth;
    const half = preview.offsetWidth / 2;
    const left = Math.max(half, Math.min(width - half, x));
    preview.style.left = `${left}px`;
  }

  function hidePreview(delay = 0) {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => {
      if (preview) preview.hidden = true;
    }, delay);
  }

  function fractionAt(clientX) {
    const rect = seek.getBoundingClientRect();
    return rect.width ? Math.max(0, Math.min(1, (clientX - rect.left) / rect.width)) : 0;
  }

  if (seek) {
    seek.addEventListener("pointermove", (event) => {
      const total = duration();
      if (!total) return;
      const fraction = fractionAt(event.clientX);
      const offset = seek.getBoundingClientRect().left - seekBox.getBoundingClientRect().left;
      showPreview(fraction * total, offset + fraction * seek.clientWidth);
    });
    seek.addEventListener("pointerleave", () => {
      if (!scrubbing) hidePreview();
    });
    seek.addEventListener("input", () => {
      scrubbing = true;
      const total = duration() || Number(seek.max) || 0;
      const value = Number(seek.value);
      const fraction = total ? value / total : 0;
      const offset = seek.getBoundingClientRect().left - seekBox.getBoundingClientRect().left;
      showPreview(value, offset + fraction * seek.clientWidth);
      if (currentTimeText) currentTimeText.textContent = formatTime(value);
      seek.setAttribute("aria-valuetext", `${formatTime(value)} of ${formatTime(total)}`);
    });
    seek.addEventListener("change", () => {
      scrubbing = false;
      touched = true;
      video.currentTime = Number(seek.value);
      hidePreview(800);
    });
    // Keys move by 5 s (arrows) or a tenth of the video (Page Up/Down), not by `step`.
    seek.addEventListener("keydown", (event) => {
      const total = duration();
      if (!total || event.altKey || event.ctrlKey || event.metaKey) return;
      const now = video.currentTime;
      const targets = {
        ArrowLeft: now - 5,
        ArrowDown: now - 5,
        ArrowRight: now + 5,
        ArrowUp: now + 5,
        PageDown: now - total / 10,
        PageUp: now + total / 10,
        Home: 0,
        End: total,
      };
      if (!(event.key in targets)) return;
      event.preventDefault();
      const target = Math.max(0, Math.min(total, targets[event.key]));
      touched = true;
      seek.value = String(target);
      const offset = seek.getBoundingClientRect().left - seekBox.getBoundingClientRect().left;
      showPreview(target, offset + (target / total) * seek.clientWidth);
      hidePreview(800);
      video.currentTime = target;
      showTimes();
    });
    seek.addEventListener("blur", () => {
      scrubbing = false;
      hidePreview();
    });
  }

  // --- captions menu ----------------------------------------------------------------------
  // The master playlist lists each caption track in a SUBTITLES group
  // (clipsync/api/hls.py); hls.js loads the chosen one into a text track of the video.
  // The choice (a language, or off) is remembered for the next video.

  function rememberedCaptions() {
    try {
      return window.localStorage.getItem(CAPTIONS_KEY) || "";
    } catch {
      return "";
    }
  }

  function showCaptions(index) {
    if (!hls) return;
    hls.subtitleDisplay = index >= 0;
    hls.subtitleTrack = index;
  }

  function buildCaptionsMenu() {
    if (!captionsMenu || !hls) return;
    const tracks = hls.subtitleTracks || [];
    const options = [new Option("Off", "-1")];
    tracks.forEach((track, index) => {
      options.push(new Option(track.name || track.lang || `Track ${index + 1}`, String(index)));
    });
    captionsMenu.replaceChildren(...options);
    if (captionsOption) captionsOption.hidden = tracks.length === 0;
    showCurrentCaptions();
  }

  // hls.js picks the remembered language itself (`subtitlePreference`); the menu follows.
  function showCurrentCaptions() {
    if (!captionsMenu || !hls) return;
    const index = hls.subtitleDisplay ? hls.subtitleTrack : -1;
    captionsMenu.value = String(index >= 0 ? index : -1);
  }

  const captionsMenu = document.getElementById("captions");
  const captionsOption = document.getElementById("captions-option");
  if (captionsMenu) {
    captionsMenu.addEventListener("change", () => {
      const index = Number(captionsMenu.value);
      showCaptions(index);
      const track = index >= 0 && hls ? hls.subtitleTracks[index] : null;
      try {
        if (track && track.lang) window.localStorage.setItem(CAPTIONS_KEY, track.lang);
        else window.localStorage.removeItem(CAPTIONS_KEY);
      } catch {
        // Storage may be off (private mode): the choice lasts for this page only.
      }
    });
  }

  // --- chapters on the seek bar --------------------------------------------------------
  // data-chapters: [{start, title}] from "0:00 Title" lines of the description
  // (clipsync/media/chapters.py). Each gets a mark on the bar; the preview names the
  // chapter under the pointer.

  let chapters = [];
  try {
    chapters = JSON.parse(video.dataset.chapters || "[]").filter(
      (chapter) => Number.isFinite(chapter.start) && typeof chapter.title === "string"
    );
  } catch {
    chapters = [];
  }

  function chapterAt(seconds) {
    let found = null;
    for (const chapter of chapters) if (chapter.start <= seconds) found = chapter;
    return found;
  }

  function drawChapterMarks() {
    const total = duration();
    if (!seekBox || !seek || !total || chapters.length < 2) return;
    let marks = document.getElementById("seek-chapters");
    if (!marks) {
      marks = document.createElement("div");
      marks.id = "seek-chapters";
      marks.className = "seek-chapters";
      marks.setAttribute("aria-hidden", "true");
      Object.assign(marks.style, { position: "absolute", inset: "0", pointerEvents: "none" });
      seekBox.style.position = seekBox.style.position || "relative";
      seekBox.appendChild(marks);
    }
    const offset = seek.getBoundingClientRect().left - seekBox.getBoundingClientRect().left;
    marks.replaceChildren(
      ...chapters.slice(1).map((chapter) => {
        const mark = document.createElement("span");
        mark.className = "seek-chapter";
        mark.title = chapter.title;
        mark.dataset.start = String(chapter.start);
        const left = offset + (Math.min(chapter.start, total) / total) * seek.clientWidth;
        Object.assign(mark.style, {
          position: "absolute",
          top: "50%",
          left: `${left}px`,
          width: "2px",
          height: "0.75rem",
          transform: "translate(-1px, -50%)",
          background: "currentColor",
          opacity: "0.6",
        });
        return mark;
      })
    );
  }

  video.addEventListener("loadedmetadata", drawChapterMarks);
  window.addEventListener("resize", drawChapterMarks);

  // --- play/pause, mute, full screen -----------------------------------------------------

  const playButton = document.getElementById("play-pause");
  const muteButton = document.getElementById("mute");
  const fullscreenButton = document.getElementById("fullscreen");
  const playerBox = document.getElementById("player-box");

  function togglePlay() {
    if (video.paused || video.ended) video.play().catch(() => {});
    else video.pause();
  }

  function showPlayState() {
    if (playButton) playButton.textContent = video.paused ? "Play" : "Pause";
  }

  function showMuted() {
    if (!muteButton) return;
    const muted = video.muted || video.volume === 0;
    muteButton.textContent = muted ? "Unmute" : "Mute";
    muteButton.setAttribute("aria-pressed", String(muted));
  }

  if (playButton) playButton.addEventListener("click", togglePlay);
  video.addEventListener("click", togglePlay);
  for (const name of ["play", "pause", "ended"]) video.addEventListener(name, showPlayState);
  if (muteButton) {
    muteButton.addEventListener("click", () => {
      video.muted = !video.muted;
    });
  }
  video.addEventListener("volumechange", showMuted);
  if (fullscreenButton && playerBox) {
    if (!document.fullscreenEnabled) fullscreenButton.hidden = true;
    fullscreenButton.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else playerBox.requestFullscreen().catch(() => {});
    });
    document.addEventListener("fullscreenchange", () => {
      fullscreenButton.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
    });
  }

  // --- times in the description seek the player -----------------------------------------

  function seekTo(seconds) {
    touched = true;
    resumeHandled = true; // a chosen time wins over resuming
    hideResumeNotice();
    const total = duration();
    video.currentTime = total ? Math.min(seconds, Math.max(0, total - 0.5)) : seconds;
    video.play().catch(() => {});
  }
  player.seekTo = seekTo;

  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[data-seek]") : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const seconds = Number(link.dataset.seek);
    if (!Number.isFinite(seconds) || seconds < 0) return;
    event.preventDefault();
    seekTo(seconds);
    (playerBox || video).scrollIntoView({ block: "nearest", behavior: "smooth" });
    if (playButton) playButton.focus({ preventScroll: true });
  });

  loadThumbnails();
  showTimes();
  drawChapterMarks();
  showPlayState();
  showMuted();
})();
