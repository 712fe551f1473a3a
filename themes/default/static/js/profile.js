// The profile page's avatar: upload (PUT /api/auth/me/avatar, multipart) and removal.
// The name and email forms are plain forms; this page reloads once the avatar is saved.
(() => {
  const { api, csrfHeaders, errorMessage } = window.ClipSync;
  const form = document.getElementById("avatar-form");
  const remove = document.getElementById("avatar-remove");
  const problem = document.getElementById("avatar-error");
  if (!form) return;

  function show(message) {
    problem.textContent = message;
    problem.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("avatar-file").files[0];
    if (!file) return show("Choose an image file.");
    const body = new FormData();
    body.append("file", file);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch("/api/auth/me/avatar", {
        method: "PUT",
        credentials: "same-origin",
        headers: csrfHeaders({ Accept: "application/json" }),
        body,
      });
      if (!response.ok) {
        let answer = null;
        try {
          answer = await response.json();
        } catch {
          answer = null;
        }
        show(errorMessage(response.status, answer));
        return;
      }
      window.location.assign("/account/profile?done=avatar");
    } catch {
      show(errorMessage(0, null));
    } finally {
      button.disabled = false;
    }
  });

  if (remove) {
    remove.addEventListener("click", async () => {
      try {
        await api("DELETE", "/api/auth/me/avatar");
        window.location.assign("/account/profile?done=avatar-removed");
      } catch (error) {
        show(error.message);
      }
    });
  }
})();
