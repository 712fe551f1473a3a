// The upload page, part 1 of 3: sending files and captions, and the drafts of the
// details typed for files still being sent. upload_entry.js (part 2) draws an entry
// of the queue; upload.js (part 3) is the queue and the form.
//
// window.ClipSyncUpload = { sendFile, sendCaptions, unfinishedUploads, worthRetrying,
//   saveDraft, findDraft, forgetDraft, signature }.
(() => {
  "use strict";

  const { ApiError, parseJson, csrfHeaders } = window.ClipSync;

  const UPLOAD_ENDPOINT = new URL("/api/uploads/", window.location.origin).href;
  // Waits before each automatic retry after a failed request (a dropped connection,
  // a server restart): about two minutes in all before the upload is said to fail.
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 15000, 20000, 30000, 30000];

  // Whether a failed request is worth trying again: no answer, a server error, an
  // offset conflict or a locked upload. A refusal (too large, not allowed) is final.
  function worthRetrying(status) {
    return status === 0 || status >= 500 || status === 409 || status === 423;
  }

  // The person-readable reason of a tus error: the server's own message when it sent one.
  function uploadError(error) {
    const response = error && error.originalResponse;
    if (!response) return new ApiError(0, null);
    return new ApiError(response.getStatus(), parseJson(response.getBody()));
  }

  // tus-js-client keeps the URL of an unfinished upload in localStorage, keyed by the
  // file's name, type, size and modification time: choosing the same file after a
  // reload finds it, and the upload carries on from the server's offset.
  function unfinishedUploads() {
    const storage = window.tus && window.tus.defaultOptions.urlStorage;
    return storage ? storage.findAllUploads().catch(() => []) : Promise.resolve([]);
  }

  // Send `file` with tus. Returns {done, upload, reject}: `done` resolves to the new
  // video's id once every byte is stored; `upload.abort()` pauses, `upload.start()`
  // goes on, `reject(error)` gives up. Hooks: onProgress(sent), onRetrying(),
  // onResumed() (an earlier upload of the same file continues), paused() (whether to
  // wait for start() instead of starting at once).
  function sendFile(file, { onProgress, onRetrying, onResumed, paused }) {
    let resolve;
    let reject;
    const done = new Promise((yes, no) => {
      resolve = yes;
      reject = no;
    });
    const upload = new window.tus.Upload(file, {
      endpoint: UPLOAD_ENDPOINT,
      retryDelays: RETRY_DELAYS,
      metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
      headers: { ...csrfHeaders(), Accept: "application/json" },
      removeFingerprintOnSuccess: true,
      onShouldRetry: (error) => {
        const retry = worthRetrying(error.originalResponse ? error.originalResponse.getStatus() : 0);
        if (retry) onRetrying();
        return retry;
      },
      onProgress: (sent) => onProgress(sent),
      onSuccess: () => resolve(upload.url.replace(/\/+$/, "").split("/").pop()),
      onError: (error) => reject(uploadError(error)),
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (previous.length) {
          // The newest one; older leftovers expire on the server.
          previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
          upload.resumeFromPreviousUpload(previous[0]);
          onResumed();
        }
        if (!paused()) upload.start();
      })
      .catch(reject);
    return { done, upload, reject };
  }

  // Attach a caption file to a registered video (POST /api/videos/<id>/captions).
  async function sendCaptions(videoId, file, language) {
    const body = new FormData();
    body.append("language", language);
    body.append("file", file, file.name);
    let response;
    try {
      response = await fetch(`/api/videos/${encodeURIComponent(videoId)}/captions`, {
        method: "POST",
        credentials: "same-origin",
        headers: csrfHeaders({ Accept: "application/json" }),
        body,
      });
    } catch {
      throw new ApiError(0, null);
    }
    if (!response.ok) throw new ApiError(response.status, parseJson(await response.text()));
    return parseJson(await response.text());
  }

  // --- drafts: {signature of the file: its details}, kept until it is registered ------

  const DRAFT_KEY = "clipsync.upload-draft";
  const signature = (file) => [file.name, file.size, file.lastModified].join("/");

  function drafts() {
    const found = parseJson(window.localStorage.getItem(DRAFT_KEY) || "");
    // (One draft of the single-file page, {file, title, ...}, is not a map: dropped.)
    return found && typeof found === "object" && !("file" in found) ? found : {};
  }

  function writeDrafts(all) {
    try {
      if (Object.keys(all).length) window.localStorage.setItem(DRAFT_KEY, JSON.stringify(all));
      else window.localStorage.removeItem(DRAFT_KEY);
    } catch {
      // Private browsing may refuse storage: only the drafts are lost, not the uploads.
    }
  }

  function saveDraft(file, details) {
    writeDrafts({ ...drafts(), [signature(file)]: details });
  }

  function findDraft(file) {
    return drafts()[signature(file)] || null;
  }

  function forgetDraft(file) {
    const all = drafts();
    delete all[signature(file)];
    writeDrafts(all);
  }

  window.ClipSyncUpload = {
    sendFile,
    sendCaptions,
    unfinishedUploads,
    worthRetrying,
    saveDraft,
    findDraft,
    forgetDraft,
    signature,
  };
})();
