// The upload page: send the file resumably with tus, register it, then go to "My videos".
//
// 1. The file goes to /api/uploads/ with tus-js-client (the tus 1.0 protocol): the
//    server keeps every byte it receives, so "Pause" and "Resume", a dropped
//    connection (retried on its own) or a reload of the page (choose the same file
//    again) continue from the last byte stored. "Cancel" deletes the partial upload.
// 2. POST /api/videos/register {videoId, title, description}; the upload's id is the
//    video's id.
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
  const tagsInput = document.getElementById("tags");
  const submitButton = document.getElementById("upload-submit");
  const pauseButton = document.getElementById("upload-pause");
  const cancelButton = document.getElementById("upload-cancel");
  const resumeNotice = document.getElementById("upload-unfinished");
  const errorBox = document.getElementById("upload-error");
  const progressBox = document.getElementById("upload-progress-box");
  const progressBar = document.getElementById("upload-progress");
  const statusText = document.getElementById("upload-status");
  const announcer = document.getElementById("upload-announce");
  const maxSize = Number(form.dataset.maxSize) || 0;

  const UPLOAD_ENDPOINT = "/api/uploads/";
  const REGISTER_URL = "/api/videos/register";
  const DONE_URL = "/videos";

  // The tus upload while the file is being sent: {upload, reject, paused}.
  let transfer = null;
  let busy = false;
  let lastAnnounced = -1;
  // The last progress shown, for the message of a paused upload.
  let lastSent = 0;
  let lastTotal = 0;
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
    if (file) restoreDraft(file);
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
    for (const field of [fileInput, titleInput, descriptionInput, tagsInput]) {
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
    lastSent = sent;
    lastTotal = total;
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
    pauseButton.hidden = !cancellable;
    pauseButton.disabled = !cancellable;
    pauseButton.textContent = "Pause";
    pauseButton.setAttribute("aria-pressed", "false");
    form.classList.remove("is-paused");
    if (on) progressBox.hidden = false;
  }

  // A paused upload is not "Uploading…": the main button says it is paused, the
  // toggle next to it offers Resume, and the form is no longer busy.
  function showPaused(paused) {
    form.classList.toggle("is-paused", paused);
    form.setAttribute("aria-busy", String(!paused));
    submitButton.textContent = paused ? "Upload paused" : "Uploading…";
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
  }

  // --- sending -----------------------------------------------------------------------

  const ENDPOINT = new URL(UPLOAD_ENDPOINT, window.location.origin).href;
  // Waits before each automatic retry after a failed request (a dropped connection,
  // a server restart): about two minutes in all before the page gives up and says so.
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 15000, 20000, 30000, 30000];

  // tus-js-client keeps the URL of an unfinished upload in localStorage, keyed by the
  // file's name, type, size and modification time: choosing the same file after a
  // reload finds it, and the upload carries on from the server's offset.
  function unfinishedUploads() {
    const storage = window.tus && window.tus.defaultOptions.urlStorage;
    return storage ? storage.findAllUploads().catch(() => []) : Promise.resolve([]);
  }

  async function showUnfinished() {
    const previous = (await unfinishedUploads()).filter((u) => u.metadata && u.metadata.filename);
    if (!previous.length || busy) return;
    const names = previous.map((u) => `“${u.metadata.filename}” (${formatBytes(u.size)})`);
    resumeNotice.textContent =
      `${previous.length === 1 ? "An upload" : "Uploads"} of ${names.join(", ")} did not finish. ` +
      "Choose the same file to continue where it stopped.";
    resumeNotice.hidden = false;
  }

  // The title and description typed for a file, kept until it is registered, so a
  // reload in the middle of an upload does not lose them.
  const DRAFT_KEY = "clipsync.upload-draft";

  function fileSignature(file) {
    return [file.name, file.size, file.lastModified].join("/");
  }

  function saveDraft() {
    const file = chosenFile();
    if (!file || !busy) return;
    const draft = {
      file: fileSignature(file),
      title: titleInput.value,
      description: descriptionInput.value,
      tags: tagsInput.value,
    };
    try {
      window.localStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
    } catch {
      // Private browsing may refuse storage: only the draft is lost, not the upload.
    }
  }

  function restoreDraft(file) {
    const draft = parseJson(window.localStorage.getItem(DRAFT_KEY) || "");
    if (!draft || draft.file !== fileSignature(file)) return;
    if (!titleInput.value.trim()) titleInput.value = draft.title || "";
    if (!descriptionInput.value) descriptionInput.value = draft.description || "";
    if (!tagsInput.value) tagsInput.value = draft.tags || "";
  }

  function forgetDraft() {
    try {
      window.localStorage.removeItem(DRAFT_KEY);
    } catch {
      // nothing kept, nothing to forget
    }
  }

  titleInput.addEventListener("input", saveDraft);
  descriptionInput.addEventListener("input", saveDraft);
  tagsInput.addEventListener("input", saveDraft);

  // The person-readable reason of a tus error: the server's own message when it sent one.
  function uploadError(error) {
    const response = error && error.originalResponse;
    if (!response) return new ApiError(0, null);
    return new ApiError(response.getStatus(), parseJson(response.getBody()));
  }

  // Whether a failed request is worth trying again: no answer, a server error, an
  // offset conflict or a locked upload. A refusal (too large, not allowed) is final.
  function worthRetrying(error) {
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    const retry = status === 0 || status >= 500 || status === 409 || status === 423;
    if (retry) setStatus("The connection was interrupted. Trying again…");
    return retry;
  }

  // Send the file; resolves to the new video's id once every byte is stored.
  function sendFile(file) {
    return new Promise((resolve, reject) => {
      const upload = new window.tus.Upload(file, {
        endpoint: ENDPOINT,
        retryDelays: RETRY_DELAYS,
        metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
        headers: { "X-CSRF-Token": window.ClipSync.csrfToken(), Accept: "application/json" },
        removeFingerprintOnSuccess: true,
        onShouldRetry: worthRetrying,
        // A request cut short by Pause may still report: the paused state stays shown.
        onProgress: (sent, total) => {
          if (!(transfer && transfer.paused)) showProgress(sent, total);
        },
        onSuccess: () => {
          transfer = null;
          showProgress(file.size, file.size);
          resolve(upload.url.replace(/\/+$/, "").split("/").pop());
        },
        onError: (error) => {
          transfer = null;
          reject(uploadError(error));
        },
      });
      transfer = { upload, reject, paused: false };
      lastAnnounced = -1;
      showProgress(0, file.size);
      upload
        .findPreviousUploads()
        .then((previous) => {
          if (previous.length) {
            // The newest one; older leftovers expire on the server.
            previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
            upload.resumeFromPreviousUpload(previous[0]);
            setStatus("Continuing an earlier upload of this file…");
          }
          upload.start();
        })
        .catch(reject);
    });
  }

  function pause() {
    if (!transfer || transfer.paused) return;
    transfer.paused = true;
    transfer.upload.abort(); // keeps what the server has stored
    showPaused(true);
    setStatus(
      `Paused at ${progressBar.value}% (${formatBytes(lastSent)} of ${formatBytes(lastTotal)} sent). ` +
        "Choose Resume to continue, or Cancel to stop."
    );
  }

  function resume() {
    if (!transfer || !transfer.paused) return;
    transfer.paused = false;
    showPaused(false);
    setStatus("Upload resumed.");
    transfer.upload.start(); // asks the server for its offset first
  }

  async function cancel() {
    if (!transfer) return;
    const { upload, reject } = transfer;
    transfer = null;
    forgetDraft();
    try {
      await upload.abort(true); // deletes the partial upload on the server
    } catch {
      // Already gone, or the server is unreachable: it expires there on its own.
    }
    reject(new Cancelled("Upload cancelled."));
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
    resumeNotice.hidden = true;
    saveDraft();
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
        tags: tagsInput.value, // "a, b": the server splits it (services/tags.py)
      });
      uploaded = null;
      forgetDraft();
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
      else if (stage === "register" && error.field === "tags") field = tagsInput;
      // Anything but a title/description problem means the upload itself is gone
      // (refused file, expired upload): a retry sends the file again.
      if (stage !== "register" || !field) uploaded = null;
      if (!field && (error.status === 413 || error.status === 422)) field = fileInput;
      showError(error.message || "The upload failed. Please try again.", field);
    }
  });

  pauseButton.addEventListener("click", () => {
    if (transfer && transfer.paused) resume();
    else pause();
  });
  cancelButton.addEventListener("click", cancel);
  showUnfinished();

  // Leaving while bytes are on their way asks first; a paused upload can be left
  // (and continued later by choosing the same file again).
  window.addEventListener("beforeunload", (event) => {
    if (busy && !(transfer && transfer.paused)) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
