// The player, part 2 of 4: the quality, captions and speed menus of the bar. They are
// native <select>s (a labelled list a screen reader, a keyboard and a phone all know);
// this part fills them from hls.js and adds what the shortcuts call to window.clipsyncPlayer:
// toggleCaptions() and changeSpeed(step).
(() => {
  "use strict";

  const player = window.clipsyncPlayer;
  if (!player || !player.video) return;

  const { video } = player;
  const hls = player.hls;
  const Hls = window.Hls;
  const CAPTIONS_KEY = "clipsync.captions"; // the captions language last chosen, if any

  const qualityMenu = document.getElementById("quality");
  const speedMenu = document.getElementById("speed");
  const captionsMenu = document.getElementById("captions");
  const captionsOption = document.getElementById("captions-option");

  function announce(text) {
    if (player.announce) player.announce(text);
  }

  // --- quality ------------------------------------------------------------------------
  // Renditions are named by their short side, as in [transcoder] ladder: a portrait
  // video's 720p is 720 wide and 1280 high. The master playlist names each rendition's
  // folder so ("720p/index.m3u8", clipsync/media/ladder.py); the picture's short side
  // stands in for a playlist that does not.

  const levelLabels = new Map(); // level index -> "720p"

  function shortSide(level) {
    const named = /(?:^|\/)(\d+)p\/[^/]*\.m3u8(?:[?#]|$)/.exec(level.url || "");
    if (named) return Number(named[1]);
    return level.width && level.height ? Math.min(level.width, level.height) : level.height || 0;
  }

  function buildQualityMenu() {
    if (!qualityMenu || !hls) return;
    const levels = hls.levels.map((level, index) => ({
      index,
      height: shortSide(level),
      bitrate: level.bitrate || 0,
    }));
    levels.sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
    const perHeight = new Map();
    for (const level of levels) perHeight.set(level.height, (perHeight.get(level.height) || 0) + 1);

    const options = [new Option("Auto", "-1", true, true)];
    levelLabels.clear();
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

  player.levelLabel = (index) => levelLabels.get(index) || "";

  if (qualityMenu) {
    qualityMenu.addEventListener("change", () => {
      if (!hls) return;
      hls.currentLevel = Number(qualityMenu.value); // -1: automatic
      showCurrentLevel();
    });
  }

  // --- speed --------------------------------------------------------------------------

  function speeds() {
    return speedMenu ? Array.from(speedMenu.options, (option) => Number(option.value)) : [1];
  }

  function setSpeed(rate) {
    video.defaultPlaybackRate = rate;
    video.playbackRate = rate;
  }

  // One step up (1) or down (-1) the speed menu's list.
  function changeSpeed(step) {
    const list = speeds();
    const now = video.playbackRate;
    const next =
      step > 0 ? list.find((rate) => rate > now + 1e-6) : list.slice().reverse().find((rate) => rate < now - 1e-6);
    if (next === undefined) return;
    setSpeed(next);
    announce(next === 1 ? "Normal speed" : `Speed ${next}×`);
  }
  player.changeSpeed = changeSpeed;

  if (speedMenu) {
    speedMenu.addEventListener("change", () => setSpeed(Number(speedMenu.value) || 1));
    video.addEventListener("ratechange", () => {
      const value = String(video.playbackRate);
      if (speedMenu.querySelector(`option[value="${value}"]`)) speedMenu.value = value;
    });
  }

  // --- captions -----------------------------------------------------------------------
  // The master playlist lists each caption track in a SUBTITLES group
  // (clipsync/api/hls.py); hls.js loads the chosen one into a text track of the video
  // and picks the remembered language itself (`subtitlePreference`, player.js). The
  // choice (a language, or off) is remembered for the next video.

  function rememberedCaptions() {
    try {
      return window.localStorage.getItem(CAPTIONS_KEY) || "";
    } catch {
      return "";
    }
  }

  function rememberCaptions(language) {
    try {
      if (language) window.localStorage.setItem(CAPTIONS_KEY, language);
      else window.localStorage.removeItem(CAPTIONS_KEY);
    } catch {
      // Storage may be off (private mode): the choice lasts for this page only.
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

  function showCurrentCaptions() {
    if (!captionsMenu || !hls) return;
    const index = hls.subtitleDisplay ? hls.subtitleTrack : -1;
    captionsMenu.value = String(index >= 0 ? index : -1);
  }

  function chooseCaptions(index) {
    showCaptions(index);
    const track = index >= 0 && hls ? hls.subtitleTracks[index] : null;
    rememberCaptions(track ? track.lang : "");
    if (captionsMenu) captionsMenu.value = String(index);
  }

  // On and off (the c key): on means the language chosen last, else the first track.
  function toggleCaptions() {
    const tracks = (hls && hls.subtitleTracks) || [];
    if (!tracks.length) {
      announce("This video has no captions");
      return;
    }
    if (hls.subtitleDisplay && hls.subtitleTrack >= 0) {
      chooseCaptions(-1);
      announce("Captions off");
      return;
    }
    const language = rememberedCaptions();
    const index = Math.max(0, tracks.findIndex((track) => track.lang === language));
    chooseCaptions(index);
    announce(`Captions on: ${tracks[index].name || tracks[index].lang}`);
  }
  player.toggleCaptions = toggleCaptions;

  if (captionsMenu) {
    captionsMenu.addEventListener("change", () => chooseCaptions(Number(captionsMenu.value)));
  }

  if (hls && Hls) {
    hls.on(Hls.Events.MANIFEST_PARSED, buildQualityMenu);
    hls.on(Hls.Events.LEVEL_SWITCHED, showCurrentLevel);
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, buildCaptionsMenu);
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, showCurrentCaptions);
  }
})();
