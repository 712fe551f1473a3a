// Shared helpers for ClipSync's pages: CSRF, talking to the JSON API, formatting.
// Loaded on every page by base.html; each page's own script uses window.ClipSync.
(() => {
  "use strict";

  const CSRF_COOKIE = "clipsync_csrf";

  function readCookie(name) {
    for (const part of document.cookie ? document.cookie.split("; ") : []) {
      const eq = part.indexOf("=");
      if (part.slice(0, eq) === name) return decodeURIComponent(part.slice(eq + 1));
    }
    return "";
  }

  // The double-submit token: the cookie is the reference; the <meta> rendered into
  // the page holds the same value (and covers a first page whose cookie is not set yet).
  function csrfToken() {
    const fromCookie = readCookie(CSRF_COOKIE);
    if (fromCookie) return fromCookie;
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function csrfHeaders(extra = {}) {
    return { "X-CSRF-Token": csrfToken(), ...extra };
  }

  // A message for a person: the server's own when it sent {"error": {"message"}},
  // else one made from the HTTP status (0: no answer at all).
  function errorMessage(status, body) {
    if (body && body.error && body.error.message) return body.error.message;
    if (!status) return "The server could not be reached. Check your connection and try again.";
    if (status === 401) return "Your session has ended. Please sign in again.";
    if (status === 403) return "You are not allowed to do that. Reload the page and try again.";
    if (status === 404) return "That could not be found. It may have been deleted.";
    if (status === 413) return "The file is larger than this server accepts.";
    if (status === 429) return "Too many attempts. Please wait a minute and try again.";
    if (status >= 500) return "Something went wrong on the server. Please try again.";
    return `The request failed (HTTP ${status}).`;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(errorMessage(status, body));
      this.name = "ApiError";
      this.status = status;
      this.body = body || null;
      const error = (body && body.error) || {};
      this.code = error.code || null;
      this.field = error.field || null;
    }
  }

  // Parse a response body as JSON, or null when it is empty or not JSON.
  function parseJson(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  // Call the JSON API. Resolves to the parsed body; rejects with an ApiError.
  // `keepalive: true` lets the request outlive the page (pagehide).
  async function api(method, url, data, { keepalive = false } = {}) {
    const init = {
      method,
      credentials: "same-origin",
      headers: csrfHeaders({ Accept: "application/json" }),
      keepalive,
    };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, null);
    }
    const body = parseJson(await response.text());
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  const pad2 = (n) => String(n).padStart(2, "0");

  // 83 -> "1:23", 3723 -> "1:02:03"; anything unusable -> "0:00".
  function formatTime(seconds) {
    let total = Math.floor(Number(seconds));
    if (!Number.isFinite(total) || total < 0) total = 0;
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    return h ? `${h}:${pad2(m)}:${pad2(s)}` : `${m}:${pad2(s)}`;
  }

  // Binary units, the way the settings count ([uploads] max_size = 2 GiB):
  // 1 -> "1 byte", 1572864 -> "1.5 MiB", 2147483648 -> "2 GiB". The same rules as the
  // server's clipsync/sizes.py `format_size` (the `filesize` template filter), so a
  // size reads the same whichever side wrote it.
  const SIZE_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

  function formatBytes(bytes) {
    const size = Number(bytes);
    if (!Number.isFinite(size) || size < 0) return "";
    if (size < 1024) return size === 1 ? "1 byte" : `${Math.trunc(size)} bytes`;
    let value = size / 1024;
    let unit = 0;
    // Round first, then pick the unit: 1023.96 KiB reads "1 MiB", not "1024 KiB".
    while (Math.floor(value * 10 + 0.5) >= 10240 && unit < SIZE_UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const tenths = Math.floor(value * 10 + 0.5);
    const whole = Math.floor(tenths / 10);
    const tenth = tenths % 10;
    return `${tenth ? `${whole}.${tenth}` : whole} ${SIZE_UNITS[unit]}`;
  }

  // "Nov 21, 2026, 9:00 AM" in the reader's language and time zone; dateOnly: no time.
  function formatDate(iso, { dateOnly = false } = {}) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const style = dateOnly ? { dateStyle: "medium" } : { dateStyle: "medium", timeStyle: "short" };
    return date.toLocaleString(undefined, style);
  }

  // <time data-local datetime="…"> elements are rendered in UTC; show local time
  // (data-local="date": the date only). The full date and time go in the tooltip.
  function localizeTimes(root = document) {
    for (const time of root.querySelectorAll("time[data-local][datetime]")) {
      const iso = time.getAttribute("datetime");
      const text = formatDate(iso, { dateOnly: time.dataset.local === "date" });
      if (text) time.textContent = text;
      if (text) time.title = formatDate(iso);
    }
  }

  window.ClipSync = {
    csrfToken,
    csrfHeaders,
    errorMessage,
    ApiError,
    parseJson,
    api,
    formatTime,
    formatBytes,
    formatDate,
    localizeTimes,
  };

  localizeTimes();
})();
