// A playlist's page, for its owner: move videos up and down, remove them, rename the
// playlist, choose who may open it, delete it (all through /api/playlists/<id>).
(() => {
  "use strict";

  const { api } = window.ClipSync;
  const list = document.getElementById("playlist-items");
  const settings = document.getElementById("playlist-settings");
  const errorBox = document.getElementById("playlist-error");
  const status = document.getElementById("playlist-status");
  const playlistId = encodeURIComponent((settings || list).dataset.playlistId);
  const base = `/api/playlists/${playlistId}`;

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function refreshButtons() {
    const items = Array.from(list.children);
    items.forEach((item, index) => {
      item.querySelector('[data-action="up"]').disabled = index === 0;
      item.querySelector('[data-action="down"]').disabled = index === items.length - 1;
    });
  }

  async function saveOrder() {
    const videoIds = Array.from(list.children, (item) => item.dataset.videoId);
    await api("PUT", `${base}/order`, { videoIds });
  }

  if (list) {
    list.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const item = button.closest("li");
      showError("");
      const before = Array.from(list.children);
      try {
        if (button.dataset.action === "remove") {
          await api("DELETE", `${base}/items/${encodeURIComponent(item.dataset.videoId)}`);
          item.remove();
        } else {
          if (button.dataset.action === "up" && item.previousElementSibling) {
            item.previousElementSibling.before(item);
          } else if (button.dataset.action === "down" && item.nextElementSibling) {
            item.nextElementSibling.after(item);
          }
          await saveOrder();
          list.dataset.saved = String(Date.now());
        }
        refreshButtons();
        button.focus();
      } catch (error) {
        list.replaceChildren(...before);
        refreshButtons();
        showError(error.message);
      }
    });
  }

  if (settings) {
    settings.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      status.textContent = "";
      try {
        const body = await api("PATCH", base, {
          title: settings.elements.title.value,
          audience: settings.elements.audience.value,
        });
        document.getElementById("playlist-title").textContent = body.playlist.title;
        status.textContent = "Saved.";
      } catch (error) {
        showError(error.message);
      }
    });
    document.getElementById("playlist-delete").addEventListener("click", async () => {
      if (!window.confirm("Delete this playlist? The videos stay; only the list goes.")) return;
      try {
        await api("DELETE", base);
        window.location.assign("/playlists");
      } catch (error) {
        showError(error.message);
      }
    });
  }
})();
