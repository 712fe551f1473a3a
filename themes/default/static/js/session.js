// Keeps a signed-in browser signed in: renews the access token shortly before it
// runs out, in one tab at a time, so a person never notices the short tokens.
//
// The server sets `clipsync_session_expires` ("<expiry>:<lifetime>", Unix seconds)
// beside the HttpOnly session and refresh cookies (see clipsync/sessions.py). Every
// tab reads it; when it is due, a tab takes the Web Lock below, reads it again (a
// tab that held the lock before may have renewed it already: cookies are shared)
// and only then POSTs /api/auth/refresh, which sends the HttpOnly refresh cookie.
// Without Web Locks (a page served over plain HTTP from another host than
// localhost) a lease in localStorage, which every tab of the site shares, does the
// same. The tab that renews is the only one to send the refresh token: a second tab
// sending the same token after it was used would look like a stolen copy, and the
// server would end the session (see services/auth_sessions.py).
// A page rendered with an expired token was rendered signed out: it is renewed
// first, then reloaded. Loaded on every page by base.html, after common.js.
(() => {
  "use strict";

  const EXPIRY_COOKIE = "clipsync_session_expires";
  const LOCK = "clipsync-session-refresh";
  const RETRY_MS = 5000;
  // The lease: longer than any refresh takes; a tab that closed mid-way frees it then.
  // Tabs whose timers fire together start a random moment apart, and a tab that took
  // the lease waits before using it: localStorage reaches other tabs' processes
  // asynchronously, so a lease taken at once by two is seen, and lost, by one.
  const LEASE_KEY = "clipsync-session-refresh";
  const LEASE_MS = 15000;
  const JITTER_MS = 300;
  const SETTLE_MS = 150;
  const POLL_MS = 200;
  const me = `${Date.now()}-${Math.random()}`;
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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The tab holding the lease, while it holds it; throws where storage is off.
  function leaseHolder() {
    const lease = JSON.parse(localStorage.getItem(LEASE_KEY) || "null");
    return lease && lease.until > Date.now() ? lease.id : null;
  }

  // Run `work` holding the lease: take it when free, wait a moment, and go on only
  // if it is still ours (of two tabs that took it at once, the last writer has it).
  async function withLease(work) {
    await sleep(Math.random() * JITTER_MS);
    for (;;) {
      if (!leaseHolder()) {
        localStorage.setItem(LEASE_KEY, JSON.stringify({ id: me, until: Date.now() + LEASE_MS }));
        await sleep(SETTLE_MS);
        if (leaseHolder() === me) {
          try {
            return await work();
          } finally {
            if (leaseHolder() === me) localStorage.removeItem(LEASE_KEY);
          }
        }
      }
      await sleep(POLL_MS);
    }
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
    try {
      leaseHolder();
    } catch {
      // No storage either: tabs wait a random moment before reading the cookie
      // again, so one nearly always sees the other's renewal.
      await sleep(Math.random() * 1500);
      return run();
    }
    return withLease(run);
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
