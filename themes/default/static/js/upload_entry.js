// The upload page, part 2 of 3: one entry of the queue, drawn from its state (a
// <li> from #upload-entry-template). upload.js (part 3) keeps the state.
//
// Adds to window.ClipSyncUpload: renderEntry(template, entry, handlers, view) and
// paintEntry(entry, view), where view is {selected, paused}.
(() => {
  "use strict";

  const { formatBytes } = window.ClipSync;

  function renderEntry(template, entry, { onPick, onRetry, onRemove }, view) {
    const item = template.content.firstElementChild.cloneNode(true);
    const part = (role) => item.querySelector(`[data-role="${role}"]`);
    entry.el = {
      item,
      pick: part("pick"),
      title: part("title"),
      file: part("file"),
      progress: part("progress"),
      status: part("status"),
      error: part("error"),
      captionError: part("caption-error"),
      links: part("links"),
      watch: part("watch"),
      edit: part("edit"),
      retry: part("retry"),
      remove: part("remove"),
    };
    const statusId = `upload-entry-${entry.id}-status`;
    entry.el.status.id = statusId;
    entry.el.progress.setAttribute("aria-describedby", statusId);
    entry.el.file.textContent = `${entry.file.name} · ${formatBytes(entry.file.size)}`;
    entry.el.pick.addEventListener("click", () => onPick(entry));
    entry.el.retry.addEventListener("click", () => onRetry(entry));
    entry.el.remove.addEventListener("click", () => onRemove(entry));
    paintEntry(entry, view);
    return item;
  }

  const STATE_TEXT = {
    waiting: () => "Ready to upload.",
    queued: () => "Waiting for its turn…",
    registering: () => "Uploaded. Checking the video…",
    captioning: () => "Adding its captions…",
    done: () => "Uploaded. It is being processed and plays once ready.",
    failed: (entry) => (entry.retryable ? "Stopped." : "Not uploaded."),
  };

  function paintEntry(entry, { selected, paused }) {
    const { el, state, file } = entry;
    el.item.dataset.state = state;
    el.title.textContent = entry.title.trim() || file.name;
    el.pick.setAttribute("aria-pressed", String(entry === selected));
    el.item.classList.toggle("is-selected", entry === selected);
    el.progress.setAttribute("aria-label", `Upload of ${file.name}`);
    const percent = file.size ? Math.min(100, Math.floor((entry.sent / file.size) * 100)) : 0;
    if (state === "registering" || state === "captioning") el.progress.removeAttribute("value");
    else el.progress.value = state === "done" ? 100 : percent;
    el.progress.textContent = `${el.progress.value || 0}%`;
    if (state === "uploading") {
      el.status.textContent = paused
        ? `Paused at ${percent}% · ${formatBytes(entry.sent)} of ${formatBytes(file.size)} sent`
        : `${percent}% · ${formatBytes(entry.sent)} of ${formatBytes(file.size)} sent`;
    } else {
      el.status.textContent = STATE_TEXT[state](entry);
    }
    el.error.textContent = entry.error;
    el.error.hidden = !(state === "failed" && entry.error);
    el.captionError.textContent = entry.captionError;
    el.captionError.hidden = !entry.captionError;
    el.links.hidden = state !== "done";
    if (state === "done") {
      el.watch.href = `/watch/${entry.videoId}`;
      el.watch.setAttribute("aria-label", `Watch “${entry.title}”`);
      el.edit.href = `/videos/${entry.videoId}/edit`;
      el.edit.setAttribute("aria-label", `Edit “${entry.title}”`);
    }
    el.retry.hidden = !(state === "failed" && entry.retryable);
    el.retry.setAttribute("aria-label", `Retry “${file.name}”`);
    const cancels = state === "uploading" || state === "queued";
    el.remove.textContent = cancels ? "Cancel" : "Remove";
    el.remove.setAttribute("aria-label", `${cancels ? "Cancel" : "Remove"} “${file.name}”`);
    el.remove.hidden = state === "registering" || state === "captioning" || state === "done";
  }

  Object.assign(window.ClipSyncUpload, { renderEntry, paintEntry });
})();
