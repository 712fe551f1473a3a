// The header's notification bell on every page of a signed-in person, and the
// mark-read buttons of /notifications. The unread count comes live from
// /api/notifications/stream (sent when it opens and whenever the inbox changes).
(() => {
  "use strict";

  const STREAM_URL = "/api/notifications/stream";
  const bell = document.getElementById("notification-bell");
  const count = document.getElementById("notification-count");

  function showUnread(unread) {
    if (!bell || !count) return;
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.hidden = unread === 0;
    bell.dataset.unread = String(unread);
    bell.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
  }

  // One stream for all of this person's tabs: over HTTP/1.1 a browser opens at most
  // six connections to a site, and a stream per tab would use them up. The tab that
  // holds the lock listens and passes the count to the others on a BroadcastChannel;
  // when it closes, the lock (and the stream) passes to another tab. A tab that
  // opens asks the listening tab for the count it last heard.
  const LOCK = "clipsync-notification-stream";
  const CHANNEL = "clipsync-notifications";

  function connect() {
    if (!bell || !("EventSource" in window)) return;
    const shared = "locks" in navigator && "BroadcastChannel" in window;
    const channel = shared ? new BroadcastChannel(CHANNEL) : null;
    let heard = null; // the count this tab's own stream last sent, while it listens

    function listen() {
      return new Promise((done) => {
        const stream = new EventSource(STREAM_URL);
        stream.addEventListener("unread", (event) => {
          let unread;
          try {
            unread = Number(JSON.parse(event.data).unread) || 0;
          } catch {
            return; // a malformed event changes nothing
          }
          heard = unread;
          showUnread(unread);
          if (channel) channel.postMessage({ unread });
        });
        // The session ended: stop instead of reconnecting to a stream that refuses us.
        stream.addEventListener("signed-out", () => {
          stream.close();
          done();
        });
      });
    }

    if (!channel) {
      listen();
      return;
    }
    channel.addEventListener("message", (event) => {
      const message = event.data || {};
      if (typeof message.unread === "number") showUnread(message.unread);
      if (message.ask && heard !== null) channel.postMessage({ unread: heard });
    });
    channel.postMessage({ ask: true });
    navigator.locks.request(LOCK, listen);
  }

  // /notifications: mark one or all read through the API; the stream updates the bell.
  function setUpPage() {
    const root = document.getElementById("notifications");
    if (!root) return;
    const { api } = window.ClipSync;
    const error = document.getElementById("notifications-error");
    const readAll = document.getElementById("read-all");

    function markedRead(item) {
      item.classList.remove("is-unread");
      const button = item.querySelector('[data-role="mark-read"]');
      if (button) button.remove();
    }

    function fail(exc) {
      if (!error) return;
      error.textContent = exc.message;
      error.hidden = false;
    }

    root.addEventListener("click", async (event) => {
      const button = event.target.closest('[data-role="mark-read"]');
      if (!button) return;
      const item = button.closest("[data-notification-id]");
      button.disabled = true;
      try {
        await api("POST", `/api/notifications/${item.dataset.notificationId}/read`);
        markedRead(item);
      } catch (exc) {
        button.disabled = false;
        fail(exc);
      }
    });

    if (readAll) {
      readAll.addEventListener("click", async () => {
        readAll.disabled = true;
        try {
          await api("POST", "/api/notifications/read-all");
          root.querySelectorAll(".is-unread").forEach(markedRead);
          readAll.hidden = true;
        } catch (exc) {
          readAll.disabled = false;
          fail(exc);
        }
      });
    }
  }

  connect();
  setUpPage();
})();
