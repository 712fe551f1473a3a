// A category's or a tag's videos: the sort choice applies at once, and the next
// pages come as the reader nears the end of the list.
//
// The next page is the server's own ("More →", the keyset page after the cursor):
// its cards are taken from it as rendered (_video_card.html), so the cards here
// and without JavaScript are the same. When loading fails the link stays.
(() => {
  "use strict";

  const sort = document.getElementById("sort");
  if (sort) sort.addEventListener("change", () => sort.form.submit());

  const list = document.querySelector('[data-role="video-list"]');
  const pages = document.querySelector('[data-role="pages"]');
  const status = document.querySelector('[data-role="list-status"]');
  if (!list || !pages) return;
  let loading = false;

  function moreLink() {
    return pages.querySelector('a[rel="next"]');
  }

  function say(text) {
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
  }

  async function loadMore() {
    const link = moreLink();
    if (loading || !link) return;
    loading = true;
    say("Loading more videos…");
    try {
      const response = await fetch(link.href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(ClipSync.errorMessage(response.status, null));
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const shown = new Set(Array.from(list.children, (node) => node.dataset.videoId));
      for (const card of page.querySelectorAll('[data-role="video-list"] > .video-card')) {
        if (!shown.has(card.dataset.videoId)) list.append(document.adoptNode(card));
      }
      ClipSync.localizeTimes(list);
      const next = page.querySelector('[data-role="pages"] a[rel="next"]');
      if (next) link.href = next.getAttribute("href");
      else link.remove();
      say(next ? "" : "That is every video.");
    } catch (error) {
      say(error.message);
    } finally {
      loading = false;
    }
  }

  if ("IntersectionObserver" in window && moreLink()) {
    const sentinel = document.createElement("div");
    sentinel.dataset.role = "list-end";
    list.after(sentinel);
    new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) loadMore();
      },
      { rootMargin: "600px 0px" }
    ).observe(sentinel);
  }
})();
