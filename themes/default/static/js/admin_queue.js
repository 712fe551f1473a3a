// The moderation queue (/admin): preview, approve, reject (with a reason), re-transcode
// and try again, one video or several at once, without reloading the page.
//
// Each video is an <li class="queue-item" data-video-id data-status data-title
// data-category data-category-label data-hls data-poster> whose buttons carry
// data-action (preview, approve, reject, retranscode, requeue, move) and whose parts
// have a data-role: status (the badge), select (the bulk checkbox), note, error,
// message, preview (the player's box), category, move-to (admins: the category to move
// it to). The buttons a status offers are the same as in admin/queue.html; moving to
// another category is offered in every status.
(() => {
  "use strict";

  const { api } = window.ClipSync;
  const { statusLabel, setBadge, say, part, openPreview, closePreview } = window.ClipSyncAdmin;

  const root = document.getElementById("admin-queue");
  if (!root) return;

  const SHOWN = {
    preview: ["READY", "APPROVED"],
    approve: ["READY"],
    reject: ["PROCESSING", "READY"],
    retranscode: ["READY"],
    requeue: ["FAILED"],
  };
  const SELECTABLE = ["PROCESSING", "READY"];
  const NOTES = {
    UPLOADED: "Waiting to be processed.",
    PROCESSING: "Being processed: it can be approved once it is ready.",
  };
  const DOING = {
    approve: "approved",
    reject: "rejected",
    retranscode: "transcoded again",
    requeue: "queued again",
    move: "moved",
  };

  const bulkBar = document.getElementById("bulk-bar");
  const selectAll = document.getElementById("select-all");
  const selectedCount = document.getElementById("selected-count");
  const bulkApprove = document.getElementById("bulk-approve");
  const bulkReject = document.getElementById("bulk-reject");
  const bulkStatus = document.getElementById("bulk-status");

  const dialog = document.getElementById("reject-dialog");
  const rejectForm = document.getElementById("reject-form");
  const rejectTitle = document.getElementById("reject-title");
  const rejectSubject = document.getElementById("reject-subject");
  const rejectError = document.getElementById("reject-error");
  const rejectReason = document.getElementById("reject-reason");
  const rejectDelete = document.getElementById("reject-delete-files");
  const rejectSubmit = document.getElementById("reject-submit");
  const rejectCancel = document.getElementById("reject-cancel");

  // The count in the heading: what is still waiting, on every page.
  const queueList = document.getElementById("queue-list");
  const queueTotal = document.getElementById("queue-total");
  // What was waiting when the page was made; `refresh` brings it up to date.
  let totalAtLoad = queueTotal ? Number(queueTotal.textContent) || 0 : 0;
  const PENDING = ["UPLOADED", "PROCESSING", "READY"];

  // Videos on this page no longer waiting: decided here or elsewhere, or gone.
  function decidedOnPage() {
    const shown = queueList ? Array.from(queueList.querySelectorAll(".queue-item")) : [];
    return shown.filter(
      (item) => !PENDING.includes(item.dataset.status) || item.classList.contains("is-gone")
    ).length;
  }

  function updateTotal() {
    if (queueTotal) queueTotal.textContent = String(Math.max(0, totalAtLoad - decidedOnPage()));
  }

  const items = () => Array.from(root.querySelectorAll(".queue-item[data-video-id]"));
  const findItem = (id) => items().find((item) => item.dataset.videoId === id) || null;
  const titleOf = (item) => item.dataset.title || "Untitled";
  const videoUrl = (item, action = "") =>
    `/api/admin/videos/${encodeURIComponent(item.dataset.videoId)}${action ? `/${action}` : ""}`;

  // --- showing a status ------------------------------------------------------------------

  function applyStatus(item, status, video = null) {
    item.dataset.status = status;
    setBadge(part(item, "status"), status);
    if (video) {
      item.dataset.hls = video.playable && video.hls ? video.hls : "";
      if ("poster" in video) item.dataset.poster = video.poster || "";
    } else if (!SHOWN.preview.includes(status)) {
      item.dataset.hls = "";
    }
    for (const button of item.querySelectorAll("button[data-action]")) {
      const allowed = SHOWN[button.dataset.action] || [];
      button.hidden =
        !allowed.includes(status) || (button.dataset.action === "preview" && !item.dataset.hls);
    }
    const select = part(item, "select");
    if (select) {
      select.disabled = !SELECTABLE.includes(status);
      if (select.disabled) select.checked = false;
    }
    const note = part(item, "note");
    if (note) {
      note.textContent = NOTES[status] || "";
      note.hidden = !note.textContent;
    }
    const error = part(item, "error");
    if (error && status !== "FAILED") error.hidden = true;
    const box = part(item, "preview");
    if (box && !box.hidden && !SHOWN.preview.includes(status)) closePreview();
    updateSelection();
  }

  function busy(item, on) {
    item.setAttribute("aria-busy", on ? "true" : "false");
    for (const button of item.querySelectorAll("button[data-action]")) {
      if (button.dataset.action !== "preview") button.disabled = on;
    }
  }

  // After an action the button pressed may be gone: keep the focus on the row's message.
  function focusMessage(item) {
    const message = part(item, "message");
    if (message && message.textContent) message.focus({ preventScroll: true });
  }

  // An error from the API (an ApiError, or a bulk result's `error`) as a row message.
  function showFailure(item, { status, code, message, current }, action) {
    const element = part(item, "message");
    if (status === 409 && current && current !== item.dataset.status) {
      applyStatus(item, current);
      say(
        element,
        `This video is now ${statusLabel(current).toLowerCase()}, so it cannot be ${DOING[action] || "changed"}.`,
        "error"
      );
      return;
    }
    if (status === 404) {
      // Deleted, or moved out of this moderator's category.
      for (const button of item.querySelectorAll("button[data-action]")) button.hidden = true;
      const select = part(item, "select");
      if (select) {
        select.checked = false;
        select.disabled = true;
      }
      item.classList.add("is-gone");
      say(element, "This video is no longer in your queue: it was deleted or moved to another category.", "error");
      updateSelection();
      return;
    }
    say(element, message || `The video could not be ${DOING[action] || "changed"} (${code || status}).`, "error");
  }

  const failureOf = (error) => ({
    status: error.status,
    code: error.code,
    message: error.message,
    current: error.body && error.body.error ? error.body.error.status : null,
  });

  function successText(action, item, deleteFiles = false) {
    if (action === "approve") {
      const category = item.dataset.categoryLabel;
      return `Approved: ${category ? `everyone in ${category}` : "its category"} can watch it now.`;
    }
    if (action === "reject") {
      return `Rejected: the uploader will see your reason.${deleteFiles ? " Its files were deleted." : ""}`;
    }
    if (action === "retranscode") return "Transcoding again: it needs approving again once it is ready.";
    if (action === "requeue") return "Queued again: it is being processed.";
    return "Done.";
  }

  // --- one video --------------------------------------------------------------------------

  async function act(item, action, body) {
    busy(item, true);
    say(part(item, "message"), "Working…", "info");
    try {
      const { video } = await api("POST", videoUrl(item, action), body);
      applyStatus(item, video.status, video);
      item.classList.add("is-decided");
      say(part(item, "message"), successText(action, item, body && body.deleteFiles), "ok");
      return true;
    } catch (error) {
      if (error.status === 422 && action === "reject") {
        say(part(item, "message"), "");
        throw error; // the dialog shows it
      }
      showFailure(item, failureOf(error), action);
      return false;
    } finally {
      busy(item, false);
      focusMessage(item);
    }
  }

  function togglePreview(item, button) {
    const box = part(item, "preview");
    if (!box || !item.dataset.hls) return;
    if (!box.hidden) {
      closePreview();
      return;
    }
    openPreview(box, item.dataset.hls, {
      poster: item.dataset.poster,
      title: titleOf(item),
      onClose: () => {
        button.setAttribute("aria-expanded", "false");
        button.textContent = "Preview";
        item.classList.remove("is-previewing");
      },
    });
    button.setAttribute("aria-expanded", "true");
    button.textContent = "Close preview";
    item.classList.add("is-previewing");
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !root.contains(button)) return;
    const item = button.closest(".queue-item");
    if (!item) return;
    const action = button.dataset.action;
    if (action === "preview") togglePreview(item, button);
    else if (action === "approve") act(item, "approve");
    else if (action === "reject") openReject([item]);
    else if (action === "retranscode") {
      const ok = window.confirm(
        `Transcode “${titleOf(item)}” again? It is processed once more and needs approving again once it is ready.`
      );
      if (ok) act(item, "retranscode");
    } else if (action === "requeue") act(item, "requeue");
    else if (action === "move") move(item);
  });

  // --- moving a video to another category (admins) -----------------------------------------

  async function move(item) {
    const select = part(item, "move-to");
    if (!select) return;
    const target = select.value;
    const label = select.options[select.selectedIndex].textContent.trim();
    const message = part(item, "message");
    if (target === item.dataset.category) {
      say(message, `It is already in ${label}. Choose another category first.`, "info");
      select.focus();
      return;
    }
    busy(item, true);
    say(message, "Working…", "info");
    try {
      const { video } = await api("PATCH", videoUrl(item), { categoryRole: target });
      item.dataset.category = video.category || target;
      item.dataset.categoryLabel = label;
      const shown = part(item, "category");
      if (shown) shown.lastChild.textContent = label;
      const who = video.status === "APPROVED" ? "can watch it now" : "will see it once it is approved";
      say(message, `Moved to ${label}: everyone in ${label} ${who}.`, "ok");
    } catch (error) {
      select.value = item.dataset.category;
      showFailure(item, failureOf(error), "move");
    } finally {
      busy(item, false);
      focusMessage(item);
    }
  }

  // --- selection and bulk actions ---------------------------------------------------------

  const selectable = () =>
    items().filter((item) => {
      const box = part(item, "select");
      return box && !box.disabled;
    });
  const selected = () => selectable().filter((item) => part(item, "select").checked);

  function updateSelection() {
    updateTotal();
    if (!bulkBar) return;
    const chosen = selected().length;
    const possible = selectable().length;
    if (selectedCount) selectedCount.textContent = chosen ? `${chosen} selected` : "None selected";
    if (bulkApprove) bulkApprove.disabled = chosen === 0;
    if (bulkReject) bulkReject.disabled = chosen === 0;
    if (selectAll) {
      selectAll.disabled = possible === 0;
      selectAll.checked = possible > 0 && chosen === possible;
      selectAll.indeterminate = chosen > 0 && chosen < possible;
    }
  }

  root.addEventListener("change", (event) => {
    if (event.target.matches('[data-role="select"]')) updateSelection();
  });
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      for (const item of selectable()) part(item, "select").checked = selectAll.checked;
      updateSelection();
    });
  }

  async function bulk(action, chosen, extra = {}) {
    if (!chosen.length) return;
    for (const item of chosen) busy(item, true);
    say(bulkStatus, "Working…", "info");
    let results = [];
    try {
      const answer = await api("POST", "/api/admin/videos/bulk", {
        action,
        videoIds: chosen.map((item) => item.dataset.videoId),
        ...extra,
      });
      results = answer.results || [];
    } catch (error) {
      say(bulkStatus, error.message, "error");
      for (const item of chosen) busy(item, false);
      bulkStatus.focus({ preventScroll: true });
      return;
    }
    let done = 0;
    for (const result of results) {
      const item = findItem(String(result.videoId));
      if (!item) continue;
      busy(item, false);
      if (result.ok) {
        done += 1;
        applyStatus(item, result.status);
        item.classList.add("is-decided");
        say(part(item, "message"), successText(action, item, extra.deleteFiles), "ok");
      } else {
        const error = result.error || {};
        showFailure(
          item,
          { status: statusOfCode(error.code), code: error.code, message: error.message, current: error.status },
          action
        );
      }
    }
    for (const item of chosen) item.removeAttribute("aria-busy");
    const failed = results.length - done;
    const verb = action === "approve" ? "approved" : "rejected";
    let summary = `${done} ${done === 1 ? "video" : "videos"} ${verb}.`;
    if (failed) summary += ` ${failed} could not be: see ${failed === 1 ? "its message" : "their messages"} below.`;
    say(bulkStatus, summary, failed ? "error" : "ok");
    updateSelection();
    bulkStatus.focus({ preventScroll: true });
  }

  // Bulk results carry the error's code, not its HTTP status.
  function statusOfCode(code) {
    return { conflict: 409, not_found: 404, invalid: 422, forbidden: 403 }[code] || 0;
  }

  if (bulkBar) {
    bulkBar.hidden = false;
    updateSelection();
    bulkApprove.addEventListener("click", () => bulk("approve", selected()));
    bulkReject.addEventListener("click", () => openReject(selected()));
  }

  // --- the reject dialog: one video or the selection ------------------------------------

  let rejecting = [];
  let opener = null;

  function openReject(chosen) {
    if (!chosen.length || !dialog) return;
    rejecting = chosen;
    opener = document.activeElement;
    rejectTitle.textContent =
      chosen.length === 1 ? "Reject this video" : `Reject ${chosen.length} videos`;
    rejectSubject.textContent =
      chosen.length === 1
        ? `“${titleOf(chosen[0])}”`
        : chosen.map((item) => `“${titleOf(item)}”`).join(", ");
    rejectError.hidden = true;
    rejectError.textContent = "";
    rejectReason.value = "";
    rejectReason.removeAttribute("aria-invalid");
    rejectDelete.checked = false;
    rejectSubmit.disabled = false;
    dialog.showModal();
    rejectReason.focus();
  }

  function closeReject() {
    if (dialog.open) dialog.close();
  }

  function showDialogError(message) {
    rejectError.textContent = message;
    rejectError.hidden = false;
    rejectReason.setAttribute("aria-invalid", "true");
    rejectReason.focus();
  }

  if (dialog) {
    dialog.addEventListener("close", () => {
      const back = opener;
      opener = null;
      if (back && back.isConnected && !back.hidden && typeof back.focus === "function") back.focus();
    });
    rejectCancel.addEventListener("click", closeReject);
    rejectForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = rejectReason.value.trim();
      if (!reason) {
        showDialogError("Say why the video is rejected: the uploader will read it.");
        return;
      }
      const deleteFiles = rejectDelete.checked;
      const chosen = rejecting;
      rejectSubmit.disabled = true;
      if (chosen.length > 1) {
        opener = null; // the focus goes to the summary instead
        closeReject();
        await bulk("reject", chosen, { reason, deleteFiles });
        return;
      }
      try {
        opener = null;
        closeReject();
        await act(chosen[0], "reject", { reason, deleteFiles });
      } catch (error) {
        // 422: the reason was refused; ask again.
        dialog.showModal();
        rejectSubmit.disabled = false;
        showDialogError(error.message);
      }
    });
  }

  // --- keeping the page current ------------------------------------------------------------
  // Uploads finish processing and other moderators decide while this page is open: the
  // server says so on a live stream (EVENTS_URL, news of the videos this moderator may
  // decide), and the same page of the queue is asked for again then (not while the tab
  // is hidden; once more when it shows). Without EventSource it is asked for every
  // REFRESH_MS. A video whose status changed shows it; one that left the queue (decided
  // elsewhere, deleted, moved) is looked up once; videos that arrived are counted in a
  // notice whose link reloads the page (the server renders queue items).
  const REFRESH_MS = 5000;
  const EVENTS_URL = "/api/admin/videos/events";
  // News often comes in bursts (a bulk decision): one refresh answers a burst.
  const SETTLE_MS = 300;
  let refreshTimer = null;
  let settleTimer = null;
  let source = null;
  const news = document.getElementById("queue-news");
  const section = document.getElementById("queue-section");
  const onPage = () => (queueList ? Array.from(queueList.querySelectorAll(".queue-item")) : []);

  function pendingUrl() {
    const here = new URLSearchParams(window.location.search);
    const query = new URLSearchParams({
      page: section.dataset.page || "1",
      pageSize: section.dataset.pageSize || "50",
    });
    for (const name of ["status", "category"]) if (here.get(name)) query.set(name, here.get(name));
    return `/api/admin/videos/pending?${query}`;
  }

  async function lookUp(item) {
    try {
      const { video } = await api("GET", `/api/videos/${encodeURIComponent(item.dataset.videoId)}`);
      if (video.status !== item.dataset.status) applyStatus(item, video.status, video);
      item.classList.add("is-decided");
    } catch (error) {
      if (error.status === 404) showFailure(item, { status: 404 }, "");
    }
  }

  async function refresh() {
    if (document.hidden) return;
    let answer;
    try {
      answer = await api("GET", pendingUrl());
    } catch (error) {
      // Signed out or no longer allowed: asking again every few seconds cannot help.
      if (error.status === 401 || error.status === 403) stopListening();
      return; // offline or signed out: the next action says so
    }
    const latest = new Map(answer.items.map((video) => [String(video.id), video]));
    for (const item of onPage()) {
      if (item.getAttribute("aria-busy") === "true" || item.classList.contains("is-gone")) continue;
      const video = latest.get(item.dataset.videoId);
      if (video && video.status !== item.dataset.status) applyStatus(item, video.status, video);
      else if (!video && PENDING.includes(item.dataset.status)) await lookUp(item);
    }
    const shown = new Set(onPage().map((item) => item.dataset.videoId));
    const arrived = answer.items.filter((video) => !shown.has(String(video.id))).length;
    if (news) {
      news.hidden = arrived === 0;
      news.querySelector("[data-role=text]").textContent =
        arrived === 1 ? "1 new video is waiting." : `${arrived} new videos are waiting.`;
    }
    // The heading counts what is waiting now, on every page.
    totalAtLoad = answer.total + decidedOnPage();
    updateTotal();
  }

  function stopListening() {
    window.clearInterval(refreshTimer);
    if (source) source.close();
  }

  function refreshSoon() {
    window.clearTimeout(settleTimer);
    settleTimer = window.setTimeout(refresh, SETTLE_MS);
  }

  function listen() {
    source = new EventSource(EVENTS_URL);
    source.addEventListener("queue", refreshSoon);
    // What changed while the stream was down (a reconnect) is asked for once.
    source.addEventListener("open", refreshSoon);
    // The session ended: closing stops EventSource from reconnecting to a refused stream.
    source.addEventListener("signed-out", stopListening);
  }

  if (section) {
    if (news) news.querySelector("a").href = window.location.href;
    if ("EventSource" in window) {
      listen();
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden) refreshSoon();
      });
    } else {
      refreshTimer = window.setInterval(refresh, REFRESH_MS);
    }
  }

  window.clipsyncQueue = { applyStatus, findItem, refresh, stream: () => source };
})();
