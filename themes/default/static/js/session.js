// Keeps a signed-in browser signed in: renews the access token shortly before it
// runs out, in one tab at a time, so a person never notices the short tokens.
//
// The server sets `clipsync_session_expires` ("<expiry>:<lifetime>", Unix seconds)
// beside the HttpOnly session and refresh cookies (see clipsync/sessions.py). Every
// tab reads it; when it is due, a tab takes the Web Lock below, reads it again (a
// tab that held the lock before may have renewed it already: cookies are shared)
// and only then POSTs /api/auth/refresh, which sends the HttpOnly refresh cookie.
// A page rendered with an expired token was rendered signed out: it is renewed
// first, then reloaded. Loaded on every page by base.html, after common.js.
(() => {
  "use strict";

  const EXPIRY_COOKIE = "clipsync_session_expires";
  const LOCK = "clipsync-session-refresh";
  const RETRY_MS = 5000;
  let timer = 0;

  function readCookie(name) {
    for (const part of document.cookie ? document.cookie.split("; ") : []) {
      const eq = part.indexOf("=");
      if (part.slice(0, eq) === name) return decodeURIComponent(part.slice(eq + 1));
    }
    return "";
  }

  // {at, lifetime} in milliseconds, or null when this browser is not signed in.
  function expiry() {
    const [at, lifetime] = readCookie(EXPIRY_COOKIE).split(":").map(Number);
    if (!at || !lifetime) return null;
    return { at: at * 1000, lifetime: lifetime * 1000 };
  }

  // Renew a quarter of the lifetime early (a minute at most), so a slow network or
  // a throttled background timer still renews in time.
  function renewAt(info) {
    return info.at - Math.min(60000, info.lifetime / 4);
  }

  async function refresh() {
    const response = await fetch("/api/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: window.ClipSync.csrfHeaders({ Accept: "application/json" }),
    });
    return response.ok;
  }

  // True while signed in afterwards (whoever renewed); false once the session ended.
  async function renew() {
    const run = async () => {
      const info = expiry();
      if (!info) return false;
      if (renewAt(info) > Date.now()) return true;
      return refresh();
    };
    if (navigator.locks) return navigator.locks.request(LOCK, run);
    // No Web Locks (a page served over plain HTTP, not from localhost): tabs wait a
    // random moment before reading the cookie again, so one nearly always sees the
    // other's renewal. Two that still meet get one refusal, which is retried.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 1500));
    return run();
  }

  function schedule(delay) {
    clearTimeout(timer);
    const info = expiry();
    if (!info) return;
    const wait = delay ?? Math.max(0, renewAt(info) - Date.now());
    timer = setTimeout(tick, Math.min(wait, 2147483647));
  }

  async function tick() {
    try {
      await renew();
    } catch {
      schedule(RETRY_MS); // offline or the server restarting: try again soon
      return;
    }
    schedule();
  }

  const first = expiry();
  if (first && first.at <= Date.now()) {
    renew().then(
      (ok) => {
        if (ok) window.location.reload();
      },
      () => schedule(RETRY_MS),
    );
  } else {
    schedule();
  }
  // Background tabs' timers are throttled: look again when the tab is shown.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") schedule();
  });
})();
