// Webhooks (/admin/webhooks): add one (POST /api/admin/webhooks), show its signing
// secret once with a Copy button, add it to the list, and delete one after a
// confirmation (DELETE /api/admin/webhooks/<id>).
//
// Needs form#webhook-form (#webhook-url, #webhook-description, #webhook-format,
// input[name=events] checkboxes, #webhook-submit, left disabled in the HTML),
// #webhook-error, #webhook-created with #webhook-created-title, #webhook-secret,
// #webhook-copy and #webhook-copy-status, and the list: table#webhooks-table,
// tbody#webhook-rows, #webhooks-empty and template#webhook-row-template. Rows are
// <tr data-webhook-id> with parts data-role= url, description, events, format,
// created, message, and a button[data-action="delete"].
(() => {
  "use strict";

  const { api, formatDate } = window.ClipSync;
  const { say, part, copyField } = window.ClipSyncAdmin;

  const root = document.getElementById("admin-webhooks");
  const form = document.getElementById("webhook-form");
  if (!root || !form) return;

  const url = document.getElementById("webhook-url");
  const description = document.getElementById("webhook-description");
  const format = document.getElementById("webhook-format");
  const submit = document.getElementById("webhook-submit");
  const errorBox = document.getElementById("webhook-error");
  const created = document.getElementById("webhook-created");
  const createdTitle = document.getElementById("webhook-created-title");
  const secretField = document.getElementById("webhook-secret");
  const copyButton = document.getElementById("webhook-copy");
  const copyStatus = document.getElementById("webhook-copy-status");
  const table = document.getElementById("webhooks-table");
  const rows = document.getElementById("webhook-rows");
  const empty = document.getElementById("webhooks-empty");
  const rowTemplate = document.getElementById("webhook-row-template");

  const checkboxes = () => Array.from(form.querySelectorAll('input[name="events"]'));

  // The words an event's checkbox shows, without its code sample.
  function eventLabel(name) {
    const box = checkboxes().find((b) => b.value === name);
    if (!box) return name;
    const label = box.closest("label");
    const text = Array.from(label.childNodes)
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent)
      .join("")
      .trim();
    return text || name;
  }

  function addRow(webhook) {
    if (!rowTemplate || !rows) return;
    const row = rowTemplate.content.querySelector("tr").cloneNode(true);
    row.dataset.webhookId = String(webhook.id);
    part(row, "url").textContent = webhook.url;
    part(row, "description").textContent = webhook.description || "";
    part(row, "events").textContent = webhook.events.map(eventLabel).join(", ");
    const option = Array.from(format.options).find((o) => o.value === webhook.format);
    part(row, "format").textContent = option ? option.textContent.trim() : webhook.format;
    if (webhook.createdAt) {
      const time = document.createElement("time");
      time.dateTime = webhook.createdAt;
      time.dataset.local = "";
      time.textContent = formatDate(webhook.createdAt) || webhook.createdAt.slice(0, 10);
      part(row, "created").replaceChildren(time);
    }
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
      const answer = await api("POST", "/api/admin/webhooks", {
        url: url.value.trim(),
        description: description.value.trim(),
        format: format.value,
        events: checkboxes()
          .filter((b) => b.checked)
          .map((b) => b.value),
      });
      secretField.value = answer.secret;
      say(copyStatus, "");
      created.hidden = false;
      createdTitle.focus();
      secretField.select();
      addRow(answer.webhook);
      url.value = "";
      description.value = "";
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });

  secretField.addEventListener("focus", () => secretField.select());

  copyButton.addEventListener("click", () =>
    copyField(secretField, copyStatus, "the secret", "Copied.")
  );

  root.addEventListener("click", async (event) => {
    const button = event.target.closest('button[data-action="delete"]');
    if (!button) return;
    const row = button.closest("tr[data-webhook-id]");
    const message = part(row, "message");
    const question = "Delete this webhook? It hears nothing more, and its deliveries are forgotten.";
    if (!window.confirm(question)) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/admin/webhooks/${encodeURIComponent(row.dataset.webhookId)}`);
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (rows && !rows.querySelector("tr")) {
        table.hidden = true;
        if (empty) empty.hidden = false;
      }
      const focus = next ? next.querySelector('button[data-action="delete"]') : url;
      if (focus) focus.focus({ preventScroll: true });
    } catch (error) {
      button.disabled = false;
      say(message, error.message, "error");
    }
  });
})();
