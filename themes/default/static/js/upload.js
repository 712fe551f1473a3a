// The upload page: send the file with progress, register it, then go to "My videos".
//
// 1. POST /api/videos/upload-local (multipart, field "file") with XMLHttpRequest, whose
//    upload progress events drive the <progress> bar; "Cancel" aborts it.
// 2. POST /api/videos/register {videoId, title, description}.
// 3. location -> /videos.
// A refused step shows the server's message in #upload-error and leaves the form filled.
(() => {
  "use strict";

  const { api, ApiError, parseJson, formatBytes } = window.ClipSync;
  const form = document.getElementById("upload-form");
  if (!form) return;

  const fileInput = document.getElementById("file");
  const dropzone = document.getElementById("dropzone");
  const fileName = document.getElementById("file-name");
  const titleInput = document.getElementById("title");
  const descriptionInput = document.getElementById("description");
  const submitButton = document.getElementById("upload-submit");
  const cancelButton = document.getElementById("upload-cancel");
  const errorBox = document.getElementById("upload-error");
  const progressBox = document.getElementById("upload-progress-box");
  const progressBar = document.getElementById("upload-progress");
  const statusText = document.getElementById("upload-status");
  const announcer = document.getElementById("upload-announce");
  const maxSize = Number(form.dataset.maxSize) || 0;

  const UPLOAD_URL = "/api/videos/upload-local";
  const REGISTER_URL = "/api/videos/register";
  const DONE_URL = "/videos";

  let request = null; // the XMLHttpRequest while the file is being sent
  let busy = false;
  let lastAnnounced = -1;
  // A file already uploaded whose registration was refused for its title or
  // description: a retry with the same file only registers it again.
  let uploaded = null;

  class Cancelled extends Error {}

  submitButton.disabled = false;

  // --- the chosen file ---------------------------------------------------------------

  function chosenFile() {
    return (fileInput.files && fileInput.files[0]) || null;
  }

  function titleFromName(name) {
    const stem = name.replace(/\.[^./\\]+$/, "").replace(/[_]+/g, " ").trim();
    return stem.slice(0, Number(titleInput.maxLength) > 0 ? titleInput.maxLength : 200);
  }

  function showChosenFile() {
    const file = chosenFile();
    fileName.textContent = file ? `${file.name} (${formatBytes(file.size)})` : "No file chosen";
    dropzone.classList.toggle("has-file", Boolean(file));
    if (file && !titleInput.value.trim()) titleInput.value = titleFromName(file.name);
    hideError();
  }

  fileInput.addEventListener("change", showChosenFile);

  // --- drag and drop -----------------------------------------------------------------

  const hasFiles = (event) =>
    Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");

  function onDragOver(event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = busy ? "none" : "copy";
    if (!busy) dropzone.classList.add("is-dragover");
  }

  dropzone.addEventListener("dragenter", onDragOver);
  dropzone.addEventListener("dragover", onDragOver);
  dropzone.addEventListener("dragleave", (event) => {
    if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove("is-dragover");
  });
  dropzone.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropzone.classList.remove("is-dragover");
    if (busy || !event.dataTransfer.files.length) return;
    const transfer = new DataTransfer();
    transfer.items.add(event.dataTransfer.files[0]);
    fileInput.files = transfer.files;
    showChosenFile();
    fileInput.focus();
  });
  // A file dropped next to the zone must not make the browser leave the page to show it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !dropzone.contains(event.target)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "none";
      }
    });
  }

  // --- messages ----------------------------------------------------------------------

  function showError(message, field) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    for (const field of [fileInput, titleInput, descriptionInput]) {
      field.removeAttribute("aria-invalid");
    }
  }

  function announce(message) {
    if (announcer) announcer.textContent = message;
  }

  function setStatus(message) {
    statusText.textContent = message;
    announce(message);
  }

  function showProgress(sent, total) {
    const percent = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
    progressBar.max = 100;
    progressBar.value = percent;
    progressBar.textContent = `${percent}%`;
    statusText.textContent = `${percent}% · ${formatBytes(sent)} of ${formatBytes(total)} sent`;
    // Screen readers hear every 10%, not every progress event.
    const step = Math.floor(percent / 10) * 10;
    if (step !== lastAnnounced) {
      lastAnnounced = step;
      announce(`Uploading: ${step}% sent`);
    }
  }

  function setBusy(on, { cancellable = on } = {}) {
    busy = on;
    form.classList.toggle("is-busy", on);
    form.setAttribute("aria-busy", String(on));
    submitButton.disabled = on;
    submitButton.textContent = on ? "Uploading…" : "Upload";
    fileInput.disabled = on;
    dropzone.classList.toggle("is-disabled", on);
    cancelButton.hidden = !cancellable;
    cancelButton.disabled = !cancellable;
    if (on) progressBox.hidden = false;
  }

  // --- sending -----------------------------------------------------------------------

  // POST the file; resolves to the new video's id.
  function sendFile(file) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      request = xhr;
      xhr.open("POST", UPLOAD_URL);
      xhr.setRequestHeader("X-CSRF-Token", window.ClipSync.csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        // event.total counts the multipart envelope too: show the file's share.
        const fraction = event.lengthComputable && event.total ? event.loaded / event.total : 0;
        showProgress(Math.round(fraction * file.size), file.size);
      });
      xhr.addEventListener("load", () => {
        request = null;
        const body = parseJson(xhr.responseText);
        if (xhr.status >= 200 && xhr.status < 300 && body && body.videoId) {
          showProgress(file.size, file.size);
          resolve(body.videoId);
        } else if (xhr.status >= 200 && xhr.status < 300) {
          reject(new Error("The server accepted the file but did not say which video it is."));
        } else {
          reject(new ApiError(xhr.status, body));
        }
      });
      xhr.addEventListener("error", () => {
        request = null;
        reject(new ApiError(0, null));
      });
      xhr.addEventListener("abort", () => {
        request = null;
        reject(new Cancelled("Upload cancelled."));
      });
      const body = new FormData();
      body.append("file", file, file.name);
      lastAnnounced = -1;
      showProgress(0, file.size);
      xhr.send(body);
    });
  }

  function validate(file) {
    if (!file) {
      showError("Choose a video file to upload.", fileInput);
      return false;
    }
    if (file.size === 0) {
      showError(`“${file.name}” is empty. Choose another file.`, fileInput);
      return false;
    }
    if (maxSize && file.size > maxSize) {
      showError(
        `“${file.name}” is ${formatBytes(file.size)}; this server accepts files up to ${formatBytes(maxSize)}.`,
        fileInput
      );
      return false;
    }
    if (!titleInput.value.trim()) {
      showError("Give the video a title.", titleInput);
      return false;
    }
    return true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    hideError();
    const file = chosenFile();
    if (!validate(file)) return;

    setBusy(true);
    let stage = "upload";
    try {
      let videoId = uploaded && uploaded.file === file ? uploaded.videoId : null;
      if (!videoId) {
        videoId = await sendFile(file);
        uploaded = { file, videoId };
      }
      stage = "register";
      setBusy(true, { cancellable: false });
      progressBar.removeAttribute("value"); // indeterminate while the server checks it
      setStatus("Uploaded. Checking the video…");
      await api("POST", REGISTER_URL, {
        videoId,
        title: titleInput.value.trim(),
        description: descriptionInput.value,
      });
      uploaded = null;
      setStatus("Done. Opening your videos…");
      busy = false;
      window.location.assign(DONE_URL);
    } catch (error) {
      setBusy(false);
      if (error instanceof Cancelled) {
        progressBox.hidden = true;
        setStatus("");
        announce("Upload cancelled.");
        submitButton.focus();
        return;
      }
      progressBox.hidden = true;
      setStatus("");
      let field = null;
      if (stage === "register" && error.field === "title") field = titleInput;
      else if (stage === "register" && error.field === "description") field = descriptionInput;
      // Anything but a title/description problem means the upload itself is gone
      // (refused file, expired upload): a retry sends the file again.
      if (stage !== "register" || !field) uploaded = null;
      if (!field && (error.status === 413 || error.status === 422)) field = fileInput;
      showError(error.message || "The upload failed. Please try again.", field);
    }
  });

  cancelButton.addEventListener("click", () => {
    if (request) request.abort();
  });

  window.addEventListener("beforeunload", (event) => {
    if (busy) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
