// The home page: its rows above the list (Continue watching, New in your category,
// Popular this week), and the list's infinite scroll.
//
// Each row comes from its API (the section's data-source) and is shown only when it
// has videos. As the reader nears the end of the list, the next videos come from
// GET /api/videos?after=<cursor>&scope=feed (keyset pages, no count). Both add the same cards
// the server renders (_video_card.html). The server's numbered page links stay in the
// page for readers without JavaScript; here they are hidden while the scroll can go
// on, and shown again if loading fails.
(() => {
  "use strict";

  const namesNode = document.getElementById("category-names");
  const categoryNames = (namesNode && ClipSync.parseJson(namesNode.textContent)) || {};
  const STATUS_LABELS = {
    UPLOADED: "Uploaded",
    PROCESSING: "Processing",
    READY: "Ready",
    APPROVED: "Approved",
    FAILED: "Failed",
    REJECTED: "Rejected",
  };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The DOM of the card macro in _video_card.html, for one item of the API.
  function card(video) {
    const item = element("li", "video-card");
    item.dataset.videoId = video.id;
    const heading = element("h3", "video-card-title");
    const link = element("a", "video-card-link", video.title || "Untitled");
    link.href = `/watch/${encodeURIComponent(video.id)}`;
    heading.append(link);
    const thumb = element("div", "video-thumb");
    if (video.poster) {
      const img = element("img");
      img.src = video.poster;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      thumb.append(img);
    } else {
      const letter = element("span", "video-thumb-letter", ((video.title || "?").trim()[0] || "?").toUpperCase());
      letter.setAttribute("aria-hidden", "true");
      thumb.append(letter);
    }
    if (video.playable) {
      if (video.duration) {
        const badge = element("span", "thumb-badge duration-badge");
        badge.append(element("span", "visually-hidden", "Duration: "), ClipSync.formatTime(video.duration));
        thumb.append(badge);
      }
    } else {
      const state = String(video.status || "");
      let label = STATUS_LABELS[state] || state;
      if (state === "PROCESSING" && video.progress !== undefined && video.progress !== null) {
        label += ` ${video.progress}%`;
      }
      thumb.append(element("span", `thumb-badge state-badge state-${state.toLowerCase()}`, label));
    }
    const meta = element("p", "video-card-meta");
    if (video.category) {
      meta.append(element("span", "video-card-category", categoryNames[video.category] || video.category), " ");
    }
    if (video.createdAt) {
      const time = element("time", "", video.createdAt.slice(0, 10));
      time.setAttribute("datetime", video.createdAt);
      time.dataset.local = "date";
      meta.append(time);
    }
    item.append(heading, thumb, meta);
    return item;
  }

  // A Continue watching card: the same card, with how far the person got.
  function resumeCard(video) {
    const item = card(video);
    if (video.duration && video.position) {
      const bar = element("progress", "watched-progress");
      bar.max = video.duration;
      bar.value = Math.min(video.position, video.duration);
      bar.setAttribute("aria-label", `Watched ${ClipSync.formatTime(video.position)} of ${ClipSync.formatTime(video.duration)}`);
      item.querySelector(".video-thumb").append(bar);
    }
    return item;
  }

  async function fillRow(section) {
    const rowList = section.querySelector('[data-role="row-list"]');
    let items = [];
    try {
      items = (await ClipSync.api("GET", section.dataset.source)).items || [];
    } catch {
      // The row stays hidden; the list below is the page.
    }
    const make = section.id === "row-continue" ? resumeCard : card;
    rowList.replaceChildren(...items.map(make));
    ClipSync.localizeTimes(rowList);
    section.hidden = items.length === 0;
    section.dataset.loaded = "true";
  }

  document.querySelectorAll('[data-role="home-rows"] [data-source]').forEach(fillRow);

  const list = document.querySelector('[data-role="video-list"]');
  if (!list || !list.dataset.next) return;
  const pages = document.querySelector('[data-role="pages"]');
  const status = document.querySelector('[data-role="list-status"]');
  const pageSize = Number(list.dataset.pageSize) || 24;
  let next = list.dataset.next;
  let loading = false;

  function say(text) {
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
  }

  async function loadMore() {
    if (loading || !next) return;
    loading = true;
    say("Loading more videos…");
    try {
      // scope=feed: the same videos as the server's first page (published ones only).
      const url = `/api/videos?after=${encodeURIComponent(next)}&pageSize=${pageSize}&scope=feed`;
      const body = await ClipSync.api("GET", url);
      const shown = new Set(Array.from(list.children, (node) => node.dataset.videoId));
      const added = document.createDocumentFragment();
      for (const video of body.items) {
        if (!shown.has(video.id)) added.append(card(video));
      }
      list.append(added);
      ClipSync.localizeTimes(list);
      next = body.next;
      list.dataset.next = next || "";
      say(next ? "" : "That is every video.");
    } catch (error) {
      // The numbered links still work: give them back.
      next = null;
      if (pages) pages.hidden = false;
      say(error.message);
    } finally {
      loading = false;
    }
    if (next && sentinelVisible()) loadMore();
  }

  // Below the list: when it comes near the viewport, load the next videos.
  const sentinel = element("div");
  sentinel.dataset.role = "list-end";
  list.after(sentinel);
  let visible = false;
  const sentinelVisible = () => visible;

  if ("IntersectionObserver" in window) {
    if (pages) pages.hidden = true;
    new IntersectionObserver(
      (entries) => {
        visible = entries.some((entry) => entry.isIntersecting);
        if (visible) loadMore();
      },
      { rootMargin: "600px 0px" }
    ).observe(sentinel);
  }
})();
