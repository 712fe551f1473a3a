// Invites (/admin/invites): create one (POST /api/admin/invites), show its link once
// with a Copy button, add it to the list, and revoke unused ones (DELETE).
//
// Needs form#invite-form (#invite-category, #invite-role, #invite-expires,
// #invite-submit, left disabled in the HTML), #invite-error, #invite-created with
// #invite-url, #invite-copy, #invite-copy-status and #invite-created-summary, and the
// list: table#invites-table, tbody#invite-rows, #invites-empty and
// template#invite-row-template. Rows are <tr data-invite-id data-state> with parts
// data-role= created, category, role, expires, state, message, and a
// button[data-action="revoke"] while unused.
(() => {
  "use strict";

  const { api, formatDate } = window.ClipSync;
  const { say, part, copyField } = window.ClipSyncAdmin;

  const root = document.getElementById("admin-invites");
  const form = document.getElementById("invite-form");
  if (!root || !form) return;

  const category = document.getElementById("invite-category");
  const role = document.getElementById("invite-role");
  const expires = document.getElementById("invite-expires");
  const email = document.getElementById("invite-email");
  const submit = document.getElementById("invite-submit");
  const errorBox = document.getElementById("invite-error");
  const created = document.getElementById("invite-created");
  const createdTitle = document.getElementById("invite-created-title");
  const urlField = document.getElementById("invite-url");
  const copyButton = document.getElementById("invite-copy");
  const copyStatus = document.getElementById("invite-copy-status");
  const summary = document.getElementById("invite-created-summary");
  const table = document.getElementById("invites-table");
  const rows = document.getElementById("invite-rows");
  const empty = document.getElementById("invites-empty");
  const rowTemplate = document.getElementById("invite-row-template");

  const optionText = (select, value) => {
    const option = Array.from(select.options).find((o) => o.value === value);
    return option ? option.textContent.trim() : value;
  };

  function timeElement(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.dataset.local = "";
    time.textContent = formatDate(iso) || iso.slice(0, 10);
    return time;
  }

  function addRow(invite) {
    if (!rowTemplate || !rows) return;
    const row = rowTemplate.content.querySelector("tr").cloneNode(true);
    row.dataset.inviteId = String(invite.id);
    row.dataset.state = "unused";
    if (invite.createdAt) part(row, "created").replaceChildren(timeElement(invite.createdAt));
    part(row, "expires").replaceChildren(timeElement(invite.expiresAt));
    part(row, "category").textContent = optionText(category, invite.categoryRole);
    part(row, "role").textContent = optionText(role, invite.role);
    rows.prepend(row);
    table.hidden = false;
    if (empty) empty.hidden = true;
  }

  submit.disabled = false;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const body = {
        categoryRole: category.value,
        role: role.value,
        expiresInHours: Number(expires.value),
      };
      if (email && !email.disabled && email.value.trim()) body.email = email.value.trim();
      const answer = await api("POST", "/api/admin/invites", body);
      const { invite, url, sentTo } = answer;
      urlField.value = url;
      summary.textContent = `${optionText(role, invite.role)} in ${optionText(
        category,
        invite.categoryRole
      )}, until ${formatDate(invite.expiresAt)}.${sentTo ? ` Sent by email to ${sentTo}.` : ""}`;
      if (email) email.value = "";
      say(copyStatus, "");
      created.hidden = false;
      createdTitle.focus();
      urlField.select();
      addRow(invite);
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  urlField.addEventListener("focus", () => urlField.select());

  copyButton.addEventListener("click", () =>
    copyField(urlField, copyStatus, "the link", "Copied. Paste it into your message to them.")
  );

  root.addEventListener("click", async (event) => {
    const button = event.target.closest('button[data-action="revoke"]');
    if (!button) return;
    const row = button.closest("tr[data-invite-id]");
    const message = part(row, "message");
    if (!window.confirm("Revoke this invite? Its link stops working at once.")) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/admin/invites/${encodeURIComponent(row.dataset.inviteId)}`);
      row.dataset.state = "revoked";
      const state = part(row, "state");
      state.textContent = "Revoked";
      state.className = "badge invite-state invite-revoked";
      button.remove();
      say(message, "The link no longer works.", "ok");
      state.focus({ preventScroll: true });
    } catch (error) {
      button.disabled = false;
      say(message, error.message, "error");
    }
  });
})();
