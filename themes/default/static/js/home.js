// The home page's infinite scroll: as the reader nears the end of the list, the next
// videos come from GET /api/videos?after=<cursor> (keyset pages, no count) and are
// added as the same cards the server renders (_video_card.html). The server's numbered
// page links stay in the page for readers without JavaScript; here they are hidden
// while the scroll can go on, and shown again if loading fails.
(() => {
  "use strict";

  const list = document.querySelector('[data-role="video-list"]');
  if (!list || !list.dataset.next) return;
  const pages = document.querySelector('[data-role="pages"]');
  const status = document.querySelector('[data-role="list-status"]');
  const namesNode = document.getElementById("category-names");
  const categoryNames = (namesNode && ClipSync.parseJson(namesNode.textContent)) || {};
  const pageSize = Number(list.dataset.pageSize) || 24;
  const STATUS_LABELS = {
    UPLOADED: "Uploaded",
    PROCESSING: "Processing",
    READY: "Ready",
    APPROVED: "Approved",
    FAILED: "Failed",
    REJECTED: "Rejected",
  };

  let next = list.dataset.next;
  let loading = false;

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
      const url = `/api/videos?after=${encodeURIComponent(next)}&pageSize=${pageSize}`;
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
