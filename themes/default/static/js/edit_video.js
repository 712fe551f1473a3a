// The edit page's thumbnail and new-file sections (edit_video.html):
// - thumbnail: the frames the transcode made (GET /api/videos/<id>/thumbnails), one
//   picked (PUT /api/videos/<id>/thumbnail {"candidate": n}) or an image uploaded
//   (the same URL, multipart `file`); the current thumbnail updates in place;
// - new file: POST /api/videos/<id>/source (multipart `file`) with upload progress,
//   then the page reloads showing the video converting again.
(() => {
  const { api, csrfHeaders, errorMessage } = window.ClipSync;

  function shower(id) {
    const box = document.getElementById(id);
    return (message) => {
      if (!box) return;
      box.textContent = message || "";
      box.hidden = !message;
    };
  }

  // --- thumbnail -----------------------------------------------------------------------
  const section = document.getElementById("thumbnail");
  const current = document.getElementById("thumbnail-current");
  const choices = document.getElementById("thumbnail-choices");
  const showError = shower("thumbnail-error");
  const saved = document.getElementById("thumbnail-saved");

  function showPoster(url) {
    if (!url) return;
    current.src = url;
    current.hidden = false;
    saved.hidden = false;
  }

  function mark(number) {
    for (const button of choices.querySelectorAll("button[data-number]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.number) === number));
    }
  }

  async function choose(number) {
    showError("");
    saved.hidden = true;
    try {
      const answer = await api("PUT", `/api/videos/${section.dataset.videoId}/thumbnail`, {
        candidate: number,
      });
      mark(number);
      showPoster(answer.poster);
    } catch (error) {
      showError(error.message);
    }
  }

  async function loadCandidates() {
    let answer;
    try {
      answer = await api("GET", `/api/videos/${section.dataset.videoId}/thumbnails`);
    } catch (error) {
      showError(error.message);
      return;
    }
    if (!answer.candidates.length) return;
    const total = answer.candidates.length;
    for (const candidate of answer.candidates) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button button-quiet";
      button.dataset.number = String(candidate.number);
      button.setAttribute("aria-pressed", String(candidate.chosen));
      const image = document.createElement("img");
      image.src = candidate.url;
      image.alt = `Frame ${candidate.number} of ${total}`;
      image.width = 160;
      image.loading = "lazy";
      button.append(image);
      button.addEventListener("click", () => choose(candidate.number));
      item.append(button);
      choices.append(item);
    }
    document.getElementById("thumbnail-candidates").hidden = false;
  }

  const thumbnailForm = document.getElementById("thumbnail-form");
  if (section && choices) loadCandidates();
  if (thumbnailForm) {
    thumbnailForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      saved.hidden = true;
      const file = document.getElementById("thumbnail-file").files[0];
      if (!file) return showError("Choose an image file.");
      const body = new FormData();
      body.append("file", file);
      const button = document.getElementById("thumbnail-upload");
      button.disabled = true;
      try {
        const response = await fetch(`/api/videos/${section.dataset.videoId}/thumbnail`, {
          method: "PUT",
          credentials: "same-origin",
          headers: csrfHeaders({ Accept: "application/json" }),
          body,
        });
        let answer = null;
        try {
          answer = await response.json();
        } catch {
          answer = null;
        }
        if (!response.ok) return showError(errorMessage(response.status, answer));
        mark(0);
        showPoster(answer.poster);
        thumbnailForm.reset();
      } catch {
        showError(errorMessage(0, null));
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- a new file ------------------------------------------------------------------------
  const sourceForm = document.getElementById("source-form");
  if (sourceForm) {
    const showSourceError = shower("source-error");
    const progress = document.getElementById("source-progress");
    const videoId = document.getElementById("source").dataset.videoId;
    sourceForm.addEventListener("submit", (event) => {
      event.preventDefault();
      showSourceError("");
      const file = document.getElementById("source-file").files[0];
      if (!file) return showSourceError("Choose a video file.");
      const body = new FormData();
      body.append("file", file);
      const button = document.getElementById("source-upload");
      button.disabled = true;
      progress.value = 0;
      progress.hidden = false;
      // XMLHttpRequest: fetch does not report an upload's progress.
      const request = new XMLHttpRequest();
      request.open("POST", `/api/videos/${videoId}/source`);
      request.withCredentials = true;
      for (const [name, value] of Object.entries(csrfHeaders({ Accept: "application/json" }))) {
        request.setRequestHeader(name, value);
      }
      request.upload.addEventListener("progress", (step) => {
        if (step.lengthComputable) progress.value = Math.round((step.loaded / step.total) * 100);
      });
      request.addEventListener("load", () => {
        if (request.status === 202) {
          window.location.assign(`/videos/${videoId}/edit?replaced=1`);
          return;
        }
        let answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch {
          answer = null;
        }
        showSourceError(errorMessage(request.status, answer));
        button.disabled = false;
        progress.hidden = true;
      });
      request.addEventListener("error", () => {
        showSourceError(errorMessage(0, null));
        button.disabled = false;
        progress.hidden = true;
      });
      request.send(body);
    });
  }
})();
