// Who can watch a video beyond its category (_sharing_panel.html): the categories it
// is published to (PUT /api/videos/<id>/categories, saved with its button), the
// people it is shared with (/grants) and its share links (/links: a new link's URL
// is shown once; "Revoke" ends it at once, playback included).
(() => {
  "use strict";

  const { api, formatDate } = window.ClipSync;
  const panel = document.getElementById("sharing");
  if (!panel) return;
  const base = `/api/videos/${encodeURIComponent(panel.dataset.videoId)}`;
  const $ = (id) => document.getElementById(id);
  const errorBox = $("sharing-error");
  const statusBox = $("sharing-status");

  function say(text, isError = false) {
    errorBox.hidden = !isError;
    statusBox.hidden = isError || !text;
    (isError ? errorBox : statusBox).textContent = text;
    if (isError) statusBox.textContent = "";
  }

  function item(text, buttonLabel, onClick, extra = {}) {
    const li = document.createElement("li");
    li.className = "caption-item";
    for (const [key, value] of Object.entries(extra)) li.dataset[key] = value;
    const span = document.createElement("span");
    span.textContent = text;
    li.append(span);
    if (buttonLabel) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button button-quiet button-small";
      button.textContent = buttonLabel;
      button.addEventListener("click", () => onClick(button));
      li.append(button);
    }
    return li;
  }

  // --- categories ---------------------------------------------------------------------
  const choices = $("sharing-category-choices");
  const saveCategories = $("sharing-categories-save");
  let savedCategories = "";

  const tickedCategories = () =>
    Array.from(choices.querySelectorAll("input:checked"), (box) => box.value).sort().join(",");

  function showCategories(answer) {
    choices.replaceChildren();
    for (const choice of answer.choices) {
      const label = document.createElement("label");
      label.className = "checkbox";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = choice.name;
      box.checked = choice.selected;
      box.disabled = !choice.editable;
      box.dataset.category = choice.name;
      label.append(box, ` ${choice.label}${choice.primary ? " (its own category)" : ""}`);
      choices.append(label);
    }
    savedCategories = tickedCategories();
    saveCategories.disabled = true;
  }

  choices.addEventListener("change", () => {
    saveCategories.disabled = tickedCategories() === savedCategories;
  });

  saveCategories.addEventListener("click", async () => {
    saveCategories.disabled = true;
    const categories = tickedCategories().split(",").filter(Boolean);
    try {
      showCategories(await api("PUT", `${base}/categories`, { categories }));
      say("The categories are saved.");
    } catch (error) {
      saveCategories.disabled = false;
      say(error.message, true);
    }
  });

  // --- people -------------------------------------------------------------------------
  const grantList = $("sharing-grants");

  function grantText(grant) {
    const who = grant.displayName && grant.displayName !== grant.email
      ? `${grant.displayName} (${grant.email})` : grant.email || `#${grant.userId}`;
    const until = grant.until ? `, until ${formatDate(grant.until)}` : "";
    const state = grant.state === "expired" ? " (expired)" : grant.active ? "" : " (gives nothing now)";
    return `${who}${until}${state}`;
  }

  async function loadGrants() {
    const { items } = await api("GET", `${base}/grants`);
    grantList.replaceChildren(
      ...items.map((grant) =>
        item(grantText(grant), "Stop sharing", async (button) => {
          button.disabled = true;
          try {
            await api("DELETE", `${base}/grants/${grant.id}`);
            say(`It is no longer shared with ${grant.email}.`);
            await loadGrants();
          } catch (error) {
            button.disabled = false;
            say(error.message, true);
          }
        }, { grantId: grant.id }),
      ),
    );
  }

  $("sharing-grant-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("sharing-email").value.trim();
    const local = $("sharing-until").value;
    const body = { email };
    if (local) body.until = new Date(local).toISOString();
    try {
      const { grant } = await api("POST", `${base}/grants`, body);
      $("sharing-email").value = "";
      $("sharing-until").value = "";
      say(`Shared with ${grant.email}: they are notified.`);
      await loadGrants();
    } catch (error) {
      say(error.message, true);
    }
  });

  // --- links --------------------------------------------------------------------------
  const linkList = $("sharing-links");
  const STATES = { active: "works", expired: "expired", revoked: "revoked" };

  function linkText(link) {
    const uses = link.uses === 1 ? "1 use" : `${link.uses} uses`;
    const until = link.state === "active" ? ` until ${formatDate(link.expiresAt)}` : "";
    const password = link.hasPassword ? ", with a password" : "";
    return `Link #${link.id}: ${STATES[link.state] || link.state}${until}${password}; ${uses}`;
  }

  async function loadLinks() {
    const { items } = await api("GET", `${base}/links`);
    linkList.replaceChildren(
      ...items.map((link) =>
        item(linkText(link), link.state === "active" ? "Revoke" : "", async (button) => {
          if (!window.confirm("Revoke this link? Whoever has it can no longer watch, at once.")) {
            return;
          }
          button.disabled = true;
          try {
            await api("DELETE", `${base}/links/${link.id}`);
            say("The link is revoked.");
            await loadLinks();
          } catch (error) {
            button.disabled = false;
            say(error.message, true);
          }
        }, { linkId: link.id, state: link.state }),
      ),
    );
  }

  const linkForm = $("sharing-link-form");
  if (linkForm) {
    linkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { expiresInHours: Number($("sharing-link-hours").value) };
      const password = $("sharing-link-password").value;
      if (password) body.password = password;
      try {
        const made = await api("POST", `${base}/links`, body);
        $("sharing-link-password").value = "";
        $("sharing-new-link-url").value = made.url;
        $("sharing-new-link").hidden = false;
        say("The link is made: copy it now, it is not shown again.");
        await loadLinks();
      } catch (error) {
        say(error.message, true);
      }
    });
    $("sharing-new-link-copy").addEventListener("click", async () => {
      const input = $("sharing-new-link-url");
      try {
        await navigator.clipboard.writeText(input.value);
        say("The link is copied.");
      } catch {
        input.select();
      }
    });
  }

  Promise.all([
    api("GET", `${base}/categories`).then(showCategories),
    loadGrants(),
    loadLinks(),
  ]).catch((error) => say(error.message, true));
})();
