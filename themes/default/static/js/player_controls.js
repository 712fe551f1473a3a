// The player, part 3 of 4: ClipSync's control bar over the video. Play/pause, the seek
// bar (thumbnail previews from data-thumbnails, chapter marks from data-chapters),
// time, mute and volume, picture-in-picture and full screen (of the player box, so
// the bar stays). The bar hides while the video plays and nothing happens, and comes
// back on a mouse move, a touch, a key or focus. On a touch screen a tap shows or
// hides it and a double tap on the left or right third seeks 10 s back or on.
//
// Adds to window.clipsyncPlayer what the shortcuts call: toggleMute(),
// changeVolume(delta), toggleFullscreen(), showControls() and announce(text).
(() => {
  "use strict";

  const player = window.clipsyncPlayer;
  if (!player || !player.video) return;

  const { formatTime } = window.ClipSync;
  const { video, duration } = player;
  const box = player.box || video.parentElement;

  const HIDE_AFTER_MS = 3000; // the bar hides this long after the last activity
  const DOUBLE_TAP_MS = 300;
  const TAP_SEEK = 10;

  const controls = document.getElementById("player-controls");
  const seek = document.getElementById("seek");
  const seekBox = document.getElementById("seek-box");
  const preview = document.getElementById("seek-preview");
  const previewImage = document.getElementById("seek-preview-image");
  const previewTime = document.getElementById("seek-preview-time");
  const currentTimeText = document.getElementById("current-time");
  const totalTimeText = document.getElementById("total-time");
  const playButton = document.getElementById("play-pause");
  const muteButton = document.getElementById("mute");
  const volumeSlider = document.getElementById("volume");
  const pipButton = document.getElementById("pip");
  const fullscreenButton = document.getElementById("fullscreen");
  const osd = document.getElementById("player-osd");
  const thumbnailsUrl = video.dataset.thumbnails || "";

  if (controls) controls.hidden = false;

  // --- what the player says: a short line over the video, read out by screen readers --

  let osdTimer = 0;
  function announce(text) {
    if (!osd) return;
    osd.textContent = text;
    osd.classList.add("player-osd-shown");
    clearTimeout(osdTimer);
    osdTimer = setTimeout(() => osd.classList.remove("player-osd-shown"), 1200);
  }

  // "1 minute 23 seconds": how a screen reader should say a position.
  function spokenTime(seconds) {
    const total = Math.max(0, Math.floor(Number(seconds) || 0));
    const units = [
      [Math.floor(total / 3600), "hour"],
      [Math.floor((total % 3600) / 60), "minute"],
      [total % 60, "second"],
    ];
    const parts = units.filter(([n]) => n > 0).map(([n, unit]) => `${n} ${unit}${n === 1 ? "" : "s"}`);
    return parts.length ? parts.join(" ") : "0 seconds";
  }

  // --- showing and hiding the bar --------------------------------------------------

  let idleTimer = 0;
  let pointerOnBar = false;

  function mayHide() {
    if (video.paused || video.ended || pointerOnBar || box.classList.contains("player-failed")) return false;
    // An open <select> cannot be seen from here: keep the bar while one has focus.
    return !(document.activeElement instanceof HTMLSelectElement && box.contains(document.activeElement));
  }

  function hideControls() {
    clearTimeout(idleTimer);
    if (mayHide()) box.classList.add("player-idle");
  }

  function showControls() {
    box.classList.remove("player-idle");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(hideControls, HIDE_AFTER_MS);
  }

  box.addEventListener("pointermove", (event) => {
    if (event.pointerType !== "touch") showControls();
  });
  box.addEventListener("focusin", showControls);
  box.addEventListener("keydown", showControls); // Space on a focused button of the bar
  box.addEventListener("pointerleave", () => {
    if (!video.paused) hideControls();
  });
  if (controls) {
    controls.addEventListener("pointerenter", () => {
      pointerOnBar = true;
    });
    controls.addEventListener("pointerleave", () => {
      pointerOnBar = false;
    });
  }
  video.addEventListener("play", showControls);
  video.addEventListener("pause", showControls);

  // --- play / pause -------------------------------------------------------------------

  function showPlayState() {
    const paused = video.paused || video.ended;
    box.classList.toggle("player-playing", !paused);
    if (!playButton) return;
    const label = paused ? "Play" : "Pause";
    playButton.setAttribute("aria-label", label);
    playButton.title = `${label} (k)`;
  }

  if (playButton) playButton.addEventListener("click", player.togglePlay);
  for (const name of ["play", "pause", "ended"]) video.addEventListener(name, showPlayState);

  // --- mute and volume ----------------------------------------------------------------

  function showVolume() {
    const muted = video.muted || video.volume === 0;
    box.classList.toggle("player-muted", muted);
    if (muteButton) muteButton.setAttribute("aria-pressed", String(muted));
    if (volumeSlider) {
      volumeSlider.value = String(muted ? 0 : video.volume);
      volumeSlider.setAttribute("aria-valuetext", muted ? "Muted" : `${Math.round(video.volume * 100)}%`);
    }
  }

  function toggleMute() {
    if (video.muted || video.volume === 0) {
      video.muted = false;
      if (video.volume === 0) video.volume = 0.5;
      announce(`Volume ${Math.round(video.volume * 100)}%`);
    } else {
      video.muted = true;
      announce("Muted");
    }
  }

  function changeVolume(delta) {
    const volume = Math.round(Math.max(0, Math.min(1, (video.muted ? 0 : video.volume) + delta)) * 100) / 100;
    video.volume = volume;
    video.muted = volume === 0;
    announce(volume === 0 ? "Muted" : `Volume ${Math.round(volume * 100)}%`);
  }

  if (muteButton) muteButton.addEventListener("click", toggleMute);
  if (volumeSlider) {
    volumeSlider.addEventListener("input", () => {
      const volume = Number(volumeSlider.value);
      video.volume = volume;
      video.muted = volume === 0;
    });
  }
  video.addEventListener("volumechange", showVolume);

  // --- full screen and picture-in-picture ---------------------------------------------

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (document.fullscreenEnabled && box.requestFullscreen) {
      box.requestFullscreen().catch(() => {});
    } else if (video.webkitEnterFullscreen) {
      video.webkitEnterFullscreen(); // iPhone: only the video itself can fill the screen
    }
  }

  function showFullscreen() {
    const full = document.fullscreenElement === box;
    box.classList.toggle("player-fullscreen", full);
    if (fullscreenButton) {
      fullscreenButton.setAttribute("aria-pressed", String(full));
      fullscreenButton.title = full ? "Exit full screen (f)" : "Full screen (f)";
    }
  }

  if (fullscreenButton) {
    fullscreenButton.hidden = !(document.fullscreenEnabled || video.webkitEnterFullscreen);
    fullscreenButton.addEventListener("click", toggleFullscreen);
  }
  document.addEventListener("fullscreenchange", showFullscreen);

  if (pipButton && document.pictureInPictureEnabled && !video.disablePictureInPicture) {
    pipButton.hidden = false;
    pipButton.addEventListener("click", () => {
      if (document.pictureInPictureElement === video) document.exitPictureInPicture().catch(() => {});
      else video.requestPictureInPicture().catch(() => {});
    });
    video.addEventListener("enterpictureinpicture", () => pipButton.setAttribute("aria-pressed", "true"));
    video.addEventListener("leavepictureinpicture", () => pipButton.setAttribute("aria-pressed", "false"));
  }

  // --- clicks and taps on the picture -------------------------------------------------

  let lastPointer = "mouse";
  let lastTap = { at: 0, zone: "" };
  let tapTimer = 0;

  video.addEventListener("pointerdown", (event) => {
    lastPointer = event.pointerType;
  });
  video.addEventListener("click", () => {
    if (lastPointer !== "touch") player.togglePlay();
  });
  video.addEventListener("pointerup", (event) => {
    if (event.pointerType !== "touch") return;
    const rect = video.getBoundingClientRect();
    const x = rect.width ? (event.clientX - rect.left) / rect.width : 0.5;
    const zone = x < 1 / 3 ? "back" : x > 2 / 3 ? "on" : "middle";
    const now = performance.now();
    clearTimeout(tapTimer);
    if (zone !== "middle" && zone === lastTap.zone && now - lastTap.at < DOUBLE_TAP_MS) {
      player.seekBy(zone === "back" ? -TAP_SEEK : TAP_SEEK);
      announce(zone === "back" ? `−${TAP_SEEK} s` : `+${TAP_SEEK} s`);
      lastTap = { at: now, zone }; // a third tap seeks again
      return;
    }
    lastTap = { at: now, zone };
    // One tap: show the bar, or hide it, once it is clear no second tap follows.
    tapTimer = setTimeout(() => {
      if (box.classList.contains("player-idle") || video.paused) showControls();
      else hideControls();
    }, DOUBLE_TAP_MS);
  });

  // --- time and seek bar --------------------------------------------------------------

  let scrubbing = false; // the person is moving the seek bar: don't fight them

  function describePosition(seconds, total) {
    if (seek) seek.setAttribute("aria-valuetext", `${spokenTime(seconds)} of ${spokenTime(total)}`);
  }

  function showTimes() {
    const total = duration();
    if (totalTimeText) totalTimeText.textContent = formatTime(total);
    if (currentTimeText && !scrubbing) currentTimeText.textContent = formatTime(video.currentTime);
    if (!seek || scrubbing) return;
    if (total && Number(seek.max) !== total) seek.max = String(total);
    seek.value = String(video.currentTime);
    seek.style.setProperty("--seek-fraction", total ? String(video.currentTime / total) : "0");
    describePosition(video.currentTime, total);
  }

  for (const name of ["timeupdate", "durationchange", "loadedmetadata", "seeked"]) {
    video.addEventListener(name, showTimes);
  }

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
      const area = hash >= 0 ? target.slice(hash + 6).replace(/^pixel:/, "").split(",").map(Number) : [];
      const [x = 0, y = 0, w = 0, h = 0] = area;
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

  let previewTimer = 0;

  // Where `seconds` lies on the bar, in pixels from the seek box's left edge.
  function offsetOf(seconds, total) {
    const offset = seek.getBoundingClientRect().left - seekBox.getBoundingClientRect().left;
    return offset + (total ? Math.min(seconds, total) / total : 0) * seek.clientWidth;
  }

  function showPreview(seconds) {
    if (!preview || !seekBox) return;
    clearTimeout(previewTimer);
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
    const half = preview.offsetWidth / 2;
    const x = offsetOf(seconds, duration() || Number(seek.max) || 0);
    preview.style.left = `${Math.max(half, Math.min(seekBox.clientWidth - half, x))}px`;
  }

  function hidePreview(delay = 0) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => {
      if (preview) preview.hidden = true;
    }, delay);
  }

  if (seek) {
    seek.addEventListener("pointermove", (event) => {
      const total = duration();
      if (!total) return;
      const rect = seek.getBoundingClientRect();
      const fraction = rect.width ? Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width)) : 0;
      showPreview(fraction * total);
    });
    seek.addEventListener("pointerleave", () => {
      if (!scrubbing) hidePreview();
    });
    seek.addEventListener("input", () => {
      scrubbing = true;
      const total = duration() || Number(seek.max) || 0;
      const value = Number(seek.value);
      showPreview(value);
      if (currentTimeText) currentTimeText.textContent = formatTime(value);
      describePosition(value, total);
    });
    seek.addEventListener("change", () => {
      scrubbing = false;
      player.seek(Number(seek.value));
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
      seek.value = String(target);
      showPreview(target);
      hidePreview(800);
      player.seek(target);
      showTimes();
    });
    seek.addEventListener("blur", () => {
      scrubbing = false;
      hidePreview();
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
      seekBox.appendChild(marks);
    }
    marks.replaceChildren(
      ...chapters.slice(1).map((chapter) => {
        const mark = document.createElement("span");
        mark.className = "seek-chapter";
        mark.title = chapter.title;
        mark.dataset.start = String(chapter.start);
        mark.style.left = `${offsetOf(chapter.start, total)}px`;
        return mark;
      })
    );
  }

  video.addEventListener("loadedmetadata", drawChapterMarks);
  window.addEventListener("resize", drawChapterMarks);
  document.addEventListener("fullscreenchange", drawChapterMarks);

  Object.assign(player, { announce, showControls, toggleMute, changeVolume, toggleFullscreen, spokenTime });

  loadThumbnails();
  showTimes();
  drawChapterMarks();
  showPlayState();
  showVolume();
  showFullscreen();
})();
