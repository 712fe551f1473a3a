// The upload page, part 3 of 3: a queue of files, each sent resumably with tus, then registered.
//
// Choosing (or dropping) files adds each to the queue (#upload-queue) with details of
// its own: a title from the file's name, description, tags, category and captions,
// edited in the form for the file picked in the queue. "Upload" sends the queue, at
// most two files at a time; files added meanwhile join it. For each file:
// 1. the file goes to /api/uploads/ with tus-js-client (the tus 1.0 protocol): the
//    server keeps every byte it receives, so Pause and Resume, a dropped connection
//    (retried on its own), a Retry after a failure or a reload of the page (choose the
//    same file again) continue from the last byte stored;
// 2. POST /api/videos/register {videoId, title, description, tags, category}: the
//    upload's id is the video's id;
// 3. its caption file, if any: POST /api/videos/<id>/captions (file + language).
// Each entry shows its own progress and outcome: links to the video and its edit page,
// or the server's message (with Retry when trying again can help). One file on its
// own opens "My videos" once registered; several stay listed here.
(() => {
  "use strict";

  const { api, formatBytes } = window.ClipSync;
  const send = window.ClipSyncUpload;
  const form = document.getElementById("upload-form");
  if (!form || !send) return;

  const $ = (id) => document.getElementById(id);
  const fileInput = $("file");
  const dropzone = $("dropzone");
  const dropHint = $("drop-hint");
  const fileName = $("file-name");
  const queueBox = $("upload-queue-box");
  const queueList = $("upload-queue");
  const entryTemplate = $("upload-entry-template");
  const detailsTitle = $("upload-details-title");
  const detailsLocked = $("upload-details-locked");
  const categorySelect = $("category"); // only when the person has several
  const titleInput = $("title");
  const descriptionInput = $("description");
  const tagsInput = $("tags");
  const captionInput = $("caption-file");
  const captionLanguage = $("caption-language");
  const submitButton = $("upload-submit");
  const pauseButton = $("upload-pause");
  const cancelButton = $("upload-cancel");
  const resumeNotice = $("upload-unfinished");
  const errorBox = $("upload-error");
  const progressBox = $("upload-progress-box");
  const progressBar = $("upload-progress");
  const statusText = $("upload-status");
  const summary = $("upload-summary");
  const announcer = $("upload-announce");
  const maxSize = Number(form.dataset.maxSize) || 0;
  const detailFields = [categorySelect, titleInput, descriptionInput, tagsInput, captionInput, captionLanguage].filter(Boolean);

  const REGISTER_URL = "/api/videos/register";
  const DONE_URL = "/videos";
  // How many files are sent at once: more only split the same bandwidth.
  const PARALLEL = 2;
  // An entry's states; "sending" ones count for the queue's progress and for leaving.
  const ACTIVE = new Set(["uploading", "registering", "captioning"]);

  class Cancelled extends Error {}

  const entries = [];
  let nextId = 1;
  let selected = null;
  // A run: from "Upload" until nothing is queued or being sent.
  let running = false;
  let paused = false;
  let runEntries = [];
  let lastAnnounced = -1;
  // The details typed before any file is chosen go to the first one.
  const blank = { title: "", description: "", tags: "", captionFile: null, captionLanguage: "" };
  let pending = { ...blank, category: form.dataset.category || "" };

  submitButton.disabled = false;

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
    for (const field of [fileInput, ...detailFields]) field.removeAttribute("aria-invalid");
  }

  function announce(message) {
    announcer.textContent = message;
  }

  function setStatus(message) {
    statusText.textContent = message;
    announce(message);
  }

  function saveDraft(entry) {
    const { title, description, tags, category, captionLanguage: language } = entry;
    send.saveDraft(entry.file, { title, description, tags, category, captionLanguage: language });
  }

  // --- the queue -----------------------------------------------------------------------

  function titleFromName(name) {
    const stem = name.replace(/\.[^./\\]+$/, "").replace(/[_]+/g, " ").trim();
    return stem.slice(0, Number(titleInput.maxLength) > 0 ? titleInput.maxLength : 200);
  }

  // Why a file cannot be sent at all, before a byte goes.
  function refusal(file) {
    if (file.size === 0) return `“${file.name}” is empty. Choose another file.`;
    if (maxSize && file.size > maxSize) {
      return `“${file.name}” is ${formatBytes(file.size)}; this server accepts files up to ${formatBytes(maxSize)}.`;
    }
    return "";
  }

  function addFiles(files) {
    hideError();
    const added = [];
    for (const file of files) {
      const same = entries.find((e) => send.signature(e.file) === send.signature(file) && e.state !== "done");
      if (same) {
        announce(`“${file.name}” is already in the queue.`);
        continue;
      }
      const first = !entries.length && !added.length;
      const entry = {
        id: nextId++,
        file,
        ...(first ? pending : { ...blank, category: pending.category }),
        state: running ? "queued" : "waiting",
        sent: 0,
        videoId: null,
        video: null,
        error: "",
        retryable: false,
        errorField: null,
        captionError: "",
        transfer: null,
      };
      const draft = send.findDraft(file);
      if (draft) Object.assign(entry, draft);
      if (!entry.title.trim()) entry.title = titleFromName(file.name);
      const problem = refusal(file);
      if (problem) Object.assign(entry, { state: "failed", error: problem });
      entries.push(entry);
      added.push(entry);
      queueList.append(render(entry));
    }
    if (added.length === 1) fileName.textContent = `${added[0].file.name} (${formatBytes(added[0].file.size)})`;
    else if (added.length) {
      const total = added.reduce((sum, e) => sum + e.file.size, 0);
      fileName.textContent = `${added.length} files (${formatBytes(total)})`;
    }
    dropzone.classList.toggle("has-file", entries.length > 0);
    queueBox.hidden = !entries.length;
    if (added.length) {
      if (!selected || selected.state === "done") select(added[0]);
      else showDetailsTitle();
      if (added.length > 1) announce(`${added.length} files added to the queue.`);
    }
    if (running) pump();
  }

  function render(entry) {
    const handlers = { onPick: select, onRetry: retry, onRemove: remove };
    return send.renderEntry(entryTemplate, entry, handlers, paintState());
  }

  const paintState = () => ({ selected, paused });
  const paint = (entry) => send.paintEntry(entry, paintState());

  // --- the details of the picked entry -------------------------------------------------

  function details() {
    return selected || pending;
  }

  function showCaptionFile(file) {
    try {
      const transfer = new DataTransfer();
      if (file) transfer.items.add(file);
      captionInput.files = transfer.files;
    } catch {
      if (!file) captionInput.value = "";
    }
  }

  function showDetailsTitle() {
    const name = selected && entries.length > 1 ? selected.file.name : "";
    detailsTitle.textContent = name ? `Details of “${name}”` : "Details";
  }

  // Show `entry`'s details in the form (none: those for the next file chosen).
  function select(entry) {
    const previous = selected;
    selected = entry;
    if (previous) paint(previous);
    if (entry) paint(entry);
    const shown = details();
    titleInput.value = shown.title;
    descriptionInput.value = shown.description;
    tagsInput.value = shown.tags;
    captionLanguage.value = shown.captionLanguage;
    showCaptionFile(shown.captionFile);
    if (categorySelect && shown.category) categorySelect.value = shown.category;
    showDetailsTitle();
    // Registered (or being registered): its details are the video's now.
    const locked = Boolean(entry) && entry.videoId !== null && entry.state !== "failed";
    detailsLocked.hidden = !locked;
    for (const field of detailFields) {
      field.disabled = locked;
      field.removeAttribute("aria-invalid");
    }
    const invalid = entry && entry.state === "failed" ? entry.errorField : null;
    const fields = { title: titleInput, description: descriptionInput, tags: tagsInput };
    const field = invalid === "category" ? categorySelect : fields[invalid];
    if (field) field.setAttribute("aria-invalid", "true");
  }

  function detailChanged(key, value) {
    const target = details();
    target[key] = value;
    if (key === "category") pending.category = value; // later files start there too
    if (selected) {
      paint(selected);
      if (selected.state === "uploading" || selected.state === "queued") saveDraft(selected);
    }
  }

  titleInput.addEventListener("input", () => detailChanged("title", titleInput.value));
  descriptionInput.addEventListener("input", () => detailChanged("description", descriptionInput.value));
  tagsInput.addEventListener("input", () => detailChanged("tags", tagsInput.value));
  captionLanguage.addEventListener("input", () => detailChanged("captionLanguage", captionLanguage.value));
  captionInput.addEventListener("change", () => detailChanged("captionFile", captionInput.files[0] || null));
  if (categorySelect) categorySelect.addEventListener("change", () => detailChanged("category", categorySelect.value));

  // --- choosing and dropping files -----------------------------------------------------

  fileInput.addEventListener("change", () => {
    addFiles(Array.from(fileInput.files || []));
    fileInput.value = ""; // so that choosing the same file again says so
  });

  // Dragging files exists only with a mouse or a pen; on a touch screen the drop zone
  // is just the button that opens the file chooser, and says nothing of dragging.
  const canDrag =
    "draggable" in document.createElement("div") &&
    "ondrop" in window &&
    window.matchMedia("(any-pointer: fine)").matches;

  if (canDrag) {
    dropHint.hidden = false;
    const hasFiles = (event) =>
      Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");
    const onDragOver = (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropzone.classList.add("is-dragover");
    };
    dropzone.addEventListener("dragenter", onDragOver);
    dropzone.addEventListener("dragover", onDragOver);
    dropzone.addEventListener("dragleave", (event) => {
      if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove("is-dragover");
    });
    dropzone.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dropzone.classList.remove("is-dragover");
      addFiles(Array.from(event.dataTransfer.files));
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
  }

  // --- sending one file ----------------------------------------------------------------

  async function showUnfinished() {
    const previous = (await send.unfinishedUploads()).filter((u) => u.metadata && u.metadata.filename);
    if (!previous.length || running) return;
    const names = previous.map((u) => `“${u.metadata.filename}” (${formatBytes(u.size)})`);
    resumeNotice.textContent =
      `${previous.length === 1 ? "An upload" : "Uploads"} of ${names.join(", ")} did not finish. ` +
      "Choose the same file to continue where it stopped.";
    resumeNotice.hidden = false;
  }

  // Send the entry's file; resolves to the new video's id once every byte is stored.
  function sendFile(entry) {
    const transfer = send.sendFile(entry.file, {
      // A request cut short by Pause may still report: the paused state stays shown.
      onProgress: (sent) => {
        if (paused) return;
        entry.sent = sent;
        paint(entry);
        showProgress();
      },
      onRetrying: () => {
        entry.el.status.textContent = "The connection was interrupted. Trying again…";
      },
      onResumed: () => {
        entry.el.status.textContent = "Continuing an earlier upload of this file…";
      },
      paused: () => paused,
    });
    entry.transfer = transfer;
    return transfer.done.finally(() => {
      if (entry.transfer === transfer) entry.transfer = null;
    });
  }

  async function run(entry) {
    entry.state = "uploading";
    entry.error = "";
    entry.errorField = null;
    saveDraft(entry);
    paint(entry);
    let stage = "upload";
    try {
      if (!entry.videoId) {
        entry.videoId = await sendFile(entry);
        entry.sent = entry.file.size;
      }
      stage = "register";
      entry.state = "registering";
      paint(entry);
      if (entry === selected) select(entry); // its details are locked now
      announce(`“${entry.file.name}” is uploaded. Checking the video…`);
      const answer = await api("POST", REGISTER_URL, {
        videoId: entry.videoId,
        title: entry.title.trim(),
        description: entry.description,
        tags: entry.tags, // "a, b": the server splits it (services/tags.py)
        category: entry.category || undefined,
      });
      entry.video = answer.video;
      send.forgetDraft(entry.file);
      if (entry.captionFile) {
        entry.state = "captioning";
        paint(entry);
        try {
          await send.sendCaptions(entry.videoId, entry.captionFile, entry.captionLanguage.trim());
        } catch (error) {
          entry.captionError = `The video is uploaded, but its captions were not added: ${error.message} Add them on its edit page.`;
        }
      }
      entry.state = "done";
      announce(`“${entry.title}” is uploaded.${entry.captionError ? " Its captions were not added." : ""}`);
    } catch (error) {
      if (error instanceof Cancelled) return;
      const fields = ["title", "description", "tags", "category"];
      const field = stage === "register" && fields.includes(error.field) ? error.field : null;
      const transient = error.status === 0 || error.status >= 500 || error.status === 429;
      // Final refusals of the file itself: too large, not a video (deleted with its row).
      const refused = error.status === 413 || error.status === 415 || error.status === 422;
      let retryable = !refused;
      if (stage === "register") {
        // A title or a category the person can change (403: not one of theirs) keeps
        // the upload for a retry, as does a server that did not answer; otherwise the
        // upload is gone, and a retry sends the file again.
        const fixable = field !== null || error.status === 403;
        if (!fixable && !transient) entry.videoId = null;
        retryable = fixable || transient || !refused;
      }
      Object.assign(entry, {
        state: "failed",
        error: error.message || "The upload failed. Please try again.",
        errorField: field || (stage === "register" && error.status === 403 ? "category" : null),
        retryable,
      });
      if (entry === selected) select(entry);
      announce(`“${entry.file.name}” was not uploaded: ${entry.error}`);
    } finally {
      if (entries.includes(entry)) paint(entry);
      showProgress();
      pump();
    }
  }

  // --- the queue as a whole --------------------------------------------------------------

  // Start queued entries while fewer than PARALLEL are sending; end the run when done.
  function pump() {
    if (!running || paused) return;
    let active = entries.filter((e) => ACTIVE.has(e.state)).length;
    for (const entry of entries) {
      if (active >= PARALLEL) break;
      if (entry.state !== "queued") continue;
      if (!runEntries.includes(entry)) runEntries.push(entry);
      active += 1;
      run(entry);
    }
    if (!active) finishRun();
  }

  function showProgress() {
    const counted = runEntries.filter((e) => entries.includes(e) && e.state !== "failed");
    const total = counted.reduce((sum, e) => sum + e.file.size, 0);
    const sent = counted.reduce((sum, e) => sum + Math.min(e.sent, e.file.size), 0);
    const percent = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
    progressBar.max = 100;
    progressBar.value = percent;
    progressBar.textContent = `${percent}%`;
    if (paused || !running) return;
    const files = counted.length > 1 ? `${counted.filter((e) => e.state === "done").length} of ${counted.length} files done · ` : "";
    statusText.textContent = `${files}${percent}% · ${formatBytes(sent)} of ${formatBytes(total)} sent`;
    // Screen readers hear every 10%, not every progress event.
    const step = Math.floor(percent / 10) * 10;
    if (step !== lastAnnounced) {
      lastAnnounced = step;
      announce(`Uploading: ${step}% sent`);
    }
  }

  function setRunning(on) {
    running = on;
    paused = false;
    form.classList.toggle("is-busy", on);
    form.classList.remove("is-paused");
    form.setAttribute("aria-busy", String(on));
    submitButton.disabled = on;
    submitButton.textContent = on ? "Uploading…" : "Upload";
    for (const button of [pauseButton, cancelButton]) {
      button.hidden = !on;
      button.disabled = !on;
    }
    pauseButton.textContent = "Pause";
    pauseButton.setAttribute("aria-pressed", "false");
    if (on) progressBox.hidden = false;
  }

  function startRun() {
    hideError();
    summary.hidden = true;
    const waiting = entries.filter((e) => e.state === "waiting");
    if (!waiting.length) {
      const message = entries.length ? "Every file in the queue is uploaded or has failed. Choose more files." : "Choose a video file to upload.";
      showError(message, fileInput);
      return;
    }
    for (const entry of waiting) {
      let problem = "";
      let field = null;
      if (!entry.title.trim()) [problem, field] = ["Give the video a title.", titleInput];
      else if (entry.captionFile && !entry.captionLanguage.trim()) {
        [problem, field] = [`Give the language of the captions of “${entry.file.name}”.`, captionLanguage];
      }
      if (problem) {
        select(entry);
        showError(problem, field);
        return;
      }
    }
    resumeNotice.hidden = true;
    runEntries = [];
    lastAnnounced = -1;
    for (const entry of waiting) {
      entry.state = "queued";
      paint(entry);
    }
    setRunning(true);
    showProgress();
    pump();
  }

  function finishRun() {
    const ran = runEntries.some((e) => entries.includes(e));
    setRunning(false);
    // The queue as it stands (entries not sent yet aside).
    const settled = entries.filter((e) => e.state === "done" || e.state === "failed");
    const done = settled.filter((e) => e.state === "done");
    if (entries.length === 1 && done.length === 1 && !done[0].captionError) {
      // One video, as this page always did: follow it on "My videos".
      setStatus("Done. Opening your videos…");
      window.location.assign(DONE_URL);
      return;
    }
    if (!ran) {
      progressBox.hidden = true;
      setStatus("");
      return;
    }
    const count = settled.length;
    const parts = [`${done.length} of ${count} ${count === 1 ? "video" : "videos"} uploaded.`];
    if (count > done.length) parts.push(`${count - done.length} did not upload: see the queue.`);
    statusText.textContent = "";
    summary.querySelector('[data-role="text"]').textContent = parts.join(" ");
    summary.hidden = false;
    announce(parts.join(" "));
  }

  function pause() {
    if (!running || paused) return;
    paused = true;
    for (const entry of entries) {
      if (entry.state === "uploading" && entry.transfer) entry.transfer.upload.abort(); // keeps what the server has
      if (entry.state === "uploading") paint(entry);
    }
    form.classList.add("is-paused");
    form.setAttribute("aria-busy", "false");
    submitButton.textContent = "Upload paused";
    pauseButton.textContent = "Resume";
    pauseButton.setAttribute("aria-pressed", "true");
    const counted = runEntries.filter((e) => entries.includes(e) && e.state !== "failed");
    const total = counted.reduce((sum, e) => sum + e.file.size, 0);
    const sent = counted.reduce((sum, e) => sum + Math.min(e.sent, e.file.size), 0);
    setStatus(
      `Paused at ${progressBar.value}% (${formatBytes(sent)} of ${formatBytes(total)} sent). ` +
        "Choose Resume to continue, or Cancel to stop."
    );
  }

  function resume() {
    if (!running || !paused) return;
    paused = false;
    form.classList.remove("is-paused");
    form.setAttribute("aria-busy", "true");
    submitButton.textContent = "Uploading…";
    pauseButton.textContent = "Pause";
    pauseButton.setAttribute("aria-pressed", "false");
    setStatus("Upload resumed.");
    for (const entry of entries) {
      if (entry.state === "uploading" && entry.transfer) entry.transfer.upload.start(); // asks the server for its offset first
      if (entry.state === "uploading") paint(entry);
    }
    pump();
  }

  // Stop one entry's upload and delete what the server has of it.
  async function stop(entry) {
    const transfer = entry.transfer;
    entry.transfer = null;
    send.forgetDraft(entry.file);
    if (!transfer) return;
    transfer.reject(new Cancelled("Upload cancelled."));
    try {
      await transfer.upload.abort(true); // deletes the partial upload on the server
    } catch {
      // Already gone, or the server is unreachable: it expires there on its own.
    }
  }

  function drop(entry) {
    const index = entries.indexOf(entry);
    if (index < 0) return;
    entries.splice(index, 1);
    entry.el.item.remove();
    if (selected === entry) {
      selected = null;
      const next = entries[Math.min(index, entries.length - 1)];
      if (!next) pending = { ...blank, category: pending.category };
      select(next || null);
    }
    showDetailsTitle();
    queueBox.hidden = !entries.length;
    dropzone.classList.toggle("has-file", entries.length > 0);
    if (!entries.length) fileName.textContent = "No file chosen";
  }

  async function remove(entry) {
    if (!ACTIVE.has(entry.state) || entry.state === "uploading") {
      const name = entry.file.name;
      const wasSending = entry.state === "uploading";
      drop(entry);
      if (wasSending) await stop(entry);
      else send.forgetDraft(entry.file);
      announce(wasSending ? `The upload of “${name}” was cancelled.` : `“${name}” was removed from the queue.`);
      showProgress();
      pump();
      const focusable = entries.length ? (selected || entries[0]).el.pick : fileInput;
      focusable.focus();
    }
  }

  function retry(entry) {
    if (entry.state !== "failed") return;
    if (!entry.title.trim()) {
      select(entry);
      showError("Give the video a title.", titleInput);
      return;
    }
    entry.error = "";
    entry.state = "queued";
    paint(entry);
    if (!running) {
      runEntries = [];
      lastAnnounced = -1;
      summary.hidden = true;
      setRunning(true);
    }
    if (!runEntries.includes(entry)) runEntries.push(entry);
    showProgress();
    pump();
  }

  async function cancelAll() {
    const stopping = entries.filter((e) => e.state === "uploading" || e.state === "queued");
    for (const entry of stopping) drop(entry);
    await Promise.all(stopping.map(stop));
    announce("Upload cancelled.");
    if (!entries.some((e) => ACTIVE.has(e.state))) {
      setRunning(false);
      progressBox.hidden = true;
      statusText.textContent = "";
      submitButton.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!running) startRun();
  });
  pauseButton.addEventListener("click", () => (paused ? resume() : pause()));
  cancelButton.addEventListener("click", cancelAll);
  showUnfinished();

  // Leaving while bytes are on their way, or a video is being registered, asks first; a
  // paused upload can be left (and continued later by choosing the same file again).
  window.addEventListener("beforeunload", (event) => {
    if (running && !paused && entries.some((e) => ACTIVE.has(e.state) || e.state === "queued")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
