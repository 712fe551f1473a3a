// The watch page's Up next panel: the list from GET /api/videos/<id>/next, and
// autoplay. Autoplay is off unless the person turned it on (remembered per person in
// this browser's localStorage); when it is on and the video ends, a 5-second countdown
// (with Cancel and Play now) leads to the first video of the list. It only listens to
// the <video> element's own events, so it works with whatever player drives it.
(() => {
  "use strict";

  const panel = document.getElementById("up-next");
  if (!panel) return;
  const list = document.getElementById("up-next-list");
  const toggle = document.getElementById("autoplay-next");
  const countdown = document.getElementById("up-next-countdown");
  const countdownText = document.getElementById("up-next-countdown-text");
  const playNow = document.getElementById("up-next-now");
  const cancel = document.getElementById("up-next-cancel");
  const video = document.querySelector("video#player");
  const COUNTDOWN_SECONDS = 5;
  const STORAGE_KEY = `clipsync.autoplayNext.${panel.dataset.userId || "anonymous"}`;
  const REASONS = {
    co_watched: "Watched by people who watched this",
    same_uploader: "From the same uploader",
    newest: "New",
  };

  let first = null;
  let timer = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function remembered() {
    try {
      return window.localStorage.getItem(STORAGE_KEY) === "on";
    } catch {
      return false; // storage refused (a private window): off, as by default
    }
  }

  function remember(on) {
    try {
      window.localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
    } catch {
      // Not remembered, but still on for this page.
    }
  }

  function entry(item) {
    const li = element("li", "up-next-item");
    li.dataset.videoId = item.id;
    const link = element("a", "up-next-link");
    link.href = `/watch/${encodeURIComponent(item.id)}`;
    const thumb = element("span", "up-next-thumb");
    if (item.poster) {
      const img = element("img");
      img.src = item.poster;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      thumb.append(img);
    } else {
      const letter = element("span", "video-thumb-letter", ((item.title || "?").trim()[0] || "?").toUpperCase());
      letter.setAttribute("aria-hidden", "true");
      thumb.append(letter);
    }
    if (item.duration) {
      const badge = element("span", "thumb-badge duration-badge");
      badge.append(element("span", "visually-hidden", "Duration: "), ClipSync.formatTime(item.duration));
      thumb.append(badge);
    }
    const text = element("span", "up-next-text");
    text.append(
      element("span", "up-next-title", item.title || "Untitled"),
      element("span", "up-next-reason muted", REASONS[item.reason] || "")
    );
    link.append(thumb, text);
    li.append(link);
    return li;
  }

  async function load() {
    let body;
    try {
      body = await ClipSync.api("GET", `/api/videos/${encodeURIComponent(panel.dataset.videoId)}/next`);
    } catch {
      return; // no list: the panel stays hidden, the page works without it
    }
    const items = body.items || [];
    list.replaceChildren(...items.map(entry));
    first = items[0] || null;
    panel.hidden = items.length === 0;
  }

  function stopCountdown() {
    if (timer !== null) window.clearInterval(timer);
    timer = null;
    countdown.hidden = true;
    countdownText.textContent = "";
  }

  function goToFirst() {
    if (!first) return;
    stopCountdown();
    window.location.assign(`/watch/${encodeURIComponent(first.id)}`);
  }

  function say(seconds) {
    const title = first.title || "Untitled";
    countdownText.textContent = `Up next: “${title}” in ${seconds} second${seconds === 1 ? "" : "s"}`;
  }

  function startCountdown() {
    if (!first || timer !== null) return;
    let left = COUNTDOWN_SECONDS;
    countdown.hidden = false;
    say(left);
    timer = window.setInterval(() => {
      left -= 1;
      if (left <= 0) {
        goToFirst();
      } else {
        say(left);
      }
    }, 1000);
  }

  toggle.checked = remembered();
  toggle.addEventListener("change", () => {
    remember(toggle.checked);
    if (!toggle.checked) stopCountdown();
  });
  cancel.addEventListener("click", () => {
    stopCountdown();
    toggle.focus();
  });
  playNow.addEventListener("click", goToFirst);
  if (video) {
    video.addEventListener("ended", () => {
      if (toggle.checked) startCountdown();
    });
    // Watching again, or seeking back, is not "go on to the next one".
    video.addEventListener("play", stopCountdown);
    video.addEventListener("seeking", stopCountdown);
  }
  load();
})();
