// The watch page's playlist parts: "Add to playlist", and, while a playlist plays
// (?playlist=<id>), going on to its next video when this one ends.
(() => {
  "use strict";

  const { api, errorMessage } = window.ClipSync;

  // Playing a playlist: the <video> element's `ended` leads to the next item.
  const playing = document.getElementById("playlist-playing");
  const player = document.getElementById("player");
  if (playing && player && playing.dataset.nextId) {
    player.addEventListener("ended", () => {
      const next = encodeURIComponent(playing.dataset.nextId);
      const list = encodeURIComponent(playing.dataset.playlistId);
      window.location.assign(`/watch/${next}?playlist=${list}`);
    });
  }

  const panel = document.getElementById("playlist-add");
  if (!panel) return;
  const choice = document.getElementById("playlist-choice");
  const button = document.getElementById("playlist-add-button");
  const status = document.getElementById("playlist-add-status");
  let loaded = false;

  async function load() {
    loaded = true;
    try {
      const body = await api("GET", "/api/playlists");
      choice.replaceChildren();
      for (const playlist of body.items || []) {
        const option = document.createElement("option");
        option.value = String(playlist.id);
        option.textContent = playlist.title;
        choice.append(option);
      }
      const none = !choice.options.length;
      if (none) {
        const option = document.createElement("option");
        option.value = "";
        option.textContent = "You have no playlists yet";
        choice.append(option);
      }
      choice.disabled = none;
      button.disabled = none;
    } catch (error) {
      loaded = false;
      status.textContent = errorMessage(error.status, error.body);
    }
  }

  panel.addEventListener("toggle", () => {
    if (panel.open && !loaded) load();
  });

  button.addEventListener("click", async () => {
    if (!choice.value) return;
    button.disabled = true;
    status.textContent = "";
    try {
      await api("POST", `/api/playlists/${encodeURIComponent(choice.value)}/items`, {
        videoId: panel.dataset.videoId,
      });
      status.textContent = `Added to “${choice.selectedOptions[0].textContent}”.`;
    } catch (error) {
      status.textContent = errorMessage(error.status, error.body);
    } finally {
      button.disabled = false;
    }
  });
})();
