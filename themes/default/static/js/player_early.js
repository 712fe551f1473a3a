// Watching a video while it transcodes (its uploader and moderators; watch.html's
// #early-playback, services/early_playback.py). Loaded after the other player parts.
//
// Until the master playlist is stored (data-ready="0"), the box says the first seconds
// are being prepared and asks for the master again on each live status event of the
// video and on a timer that backs off: no page reload. Once it is there, the player
// loads it (a growing HLS EVENT playlist, which hls.js reloads itself).
//
// When the video is READY (its live status event, or, for a moderator whose page gets
// no events of others' videos, a media playlist that has come back finished), the
// player loads the finished playlists at the same position: the measured ladder, every
// level in the quality menu. A failure reloads the page once, which then says why.
(() => {
  "use strict";

  const box = document.getElementById("early-playback");
  const player = window.clipsyncPlayer;
  if (!box || !player || !player.load) return;

  const EVENTS_URL = "/api/videos/events";
  const FIRST_WAIT_MS = 1000;
  const LONGEST_WAIT_MS = 5000;
  const videoId = box.dataset.videoId;
  const note = document.getElementById("early-note");
  const preparing = document.getElementById("early-preparing");
  const progressText = document.getElementById("processing-text");

  let loaded = box.dataset.ready === "1";
  let finished = false;
  let wait = FIRST_WAIT_MS;
  let timer = null;
  let checking = false;

  function showLoaded() {
    loaded = true;
    box.dataset.ready = "1";
    if (preparing) preparing.hidden = true;
    player.load();
  }

  // Is the master stored yet? Asked on a timer and on each status event until it is.
  async function check() {
    if (loaded || finished || checking) return;
    checking = true;
    clearTimeout(timer);
    try {
      const answer = await fetch(player.source, {
        method: "HEAD",
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.ok) {
        showLoaded();
        return;
      }
    } catch {
      // Offline for a moment: the next try will tell.
    } finally {
      checking = false;
    }
    timer = setTimeout(check, wait);
    wait = Math.min(LONGEST_WAIT_MS, Math.round(wait * 1.5));
  }

  // Done: the finished playlists, from where the player is now.
  function switchToFinished() {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    box.dataset.status = "READY";
    if (note) note.textContent = "Transcoding finished: every quality is available.";
    if (loaded) player.reloadSource();
    else showLoaded();
  }

  const Hls = window.Hls;
  if (player.hls && Hls) {
    // A media playlist reloaded with an end: the transcode finished (no event needed).
    player.hls.on(Hls.Events.LEVEL_LOADED, (event, data) => {
      if (loaded && !finished && data.details && !data.details.live) switchToFinished();
    });
  }

  if (!loaded) timer = setTimeout(check, 0);

  if ("EventSource" in window) {
    const stream = new EventSource(EVENTS_URL);
    stream.addEventListener("video", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!data || data.id !== videoId) return;
      if (data.playable) {
        stream.close();
        switchToFinished();
      } else if (data.status !== "PROCESSING") {
        // Failed, or taken off: the page itself says what happened.
        stream.close();
        window.location.reload();
      } else {
        const percent = Math.max(0, Math.min(100, Math.round(Number(data.progress) || 0)));
        if (progressText) progressText.textContent = `${percent}% done.`;
        check();
      }
    });
    stream.addEventListener("signed-out", () => stream.close());
    window.addEventListener("pagehide", () => stream.close());
  }
})();
