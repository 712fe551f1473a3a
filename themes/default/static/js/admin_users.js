// Accounts (/admin/users): a change of role, category or "active" is saved at once
// with PATCH /api/admin/users/<id> and confirmed in the row; a refusal (409: the last
// administrator) is explained there and the control goes back to what it was.
//
// Quotas are a small form per row, saved only with its button (see below).
//
// Each row is a <tr data-user-id data-email> (data-self="1" for the signed-in admin)
// whose controls have data-field (role, categoryRole, active) and data-value (the
// saved value), and whose data-role="message" holds the row's messages.
(() => {
  "use strict";

  const { api } = window.ClipSync;
  const { say, part } = window.ClipSyncAdmin;

  const root = document.getElementById("admin-users");
  if (!root) return;

  const ROLE_LABELS = { admin: "admin", editor: "editor", user: "user" };

  const valueOf = (control) =>
    control.type === "checkbox" ? control.checked : control.value;
  const savedOf = (control) =>
    control.type === "checkbox" ? control.dataset.value === "true" : control.dataset.value;

  function setControl(control, value) {
    if (control.type === "checkbox") control.checked = Boolean(value);
    else control.value = value;
    control.dataset.value = String(value);
    if (control.dataset.field === "active") {
      const text = part(control.closest("tr"), "active-text");
      if (text) text.textContent = value ? "Active" : "Deactivated";
    }
  }

  function categoryLabel(control, name) {
    const option = Array.from(control.options).find((o) => o.value === name);
    return option ? option.textContent.trim() : name;
  }

  function savedText(field, value, control, self) {
    let text;
    if (field === "role") text = `Saved: the role is now ${ROLE_LABELS[value] || value}.`;
    else if (field === "categoryRole") text = `Saved: the category is now ${categoryLabel(control, value)}.`;
    else text = value ? "Saved: the account is active again." : "Saved: the account is deactivated.";
    if (field !== "active" || !value) {
      text += self
        ? " You were signed out everywhere: sign in again."
        : " They were signed out everywhere.";
    }
    return text;
  }

  root.addEventListener("change", async (event) => {
    const control = event.target.closest("[data-field]");
    if (!control || !root.contains(control)) return;
    const row = control.closest("tr[data-user-id]");
    const message = part(row, "message");
    const field = control.dataset.field;
    const value = valueOf(control);
    const before = savedOf(control);
    if (value === before) return;
    const self = row.dataset.self === "1";
    if (
      self &&
      !window.confirm("This is your own account. Changing it signs you out everywhere, including here. Continue?")
    ) {
      setControl(control, before);
      return;
    }
    control.disabled = true;
    row.setAttribute("aria-busy", "true");
    say(message, "Saving…", "info");
    try {
      const { user } = await api("PATCH", `/api/admin/users/${encodeURIComponent(row.dataset.userId)}`, {
        [field]: value,
      });
      for (const other of row.querySelectorAll("[data-field]")) {
        const name = other.dataset.field;
        if (name in user) setControl(other, user[name]);
      }
      say(message, savedText(field, user[field], control, self), "ok");
      if (self) {
        const link = document.createElement("a");
        link.href = `/login?next=${encodeURIComponent("/admin/users")}`;
        link.textContent = "Sign in";
        message.append(" ", link);
      }
    } catch (error) {
      setControl(control, before);
      say(message, error.message, "error");
    } finally {
      control.disabled = false;
      row.removeAttribute("aria-busy");
      // Keep the focus where it was; the message is announced (role=status).
      control.focus({ preventScroll: true });
    }
  });

  // Quotas: typed in GiB, saved only by the row's "Save quotas" button (typing or
  // arrow keys save nothing). Blank sends null (the site's default), 0 unlimited.
  const GIB = 1024 ** 3;

  function quotaBytes(input) {
    const text = input.value.trim().replace(",", ".");
    if (text === "") return null;
    const number = Number(text);
    if (!Number.isFinite(number) || number < 0) return undefined;
    return Math.round(number * GIB);
  }

  root.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-role='quota-form']");
    if (!form || !root.contains(form)) return;
    event.preventDefault();
    const row = form.closest("tr[data-user-id]");
    const message = part(row, "message");
    const body = {};
    for (const input of form.querySelectorAll("[data-quota]")) {
      const bytes = quotaBytes(input);
      if (bytes === undefined) {
        say(message, "A quota is a number of GiB (0: unlimited), or blank for the default.", "error");
        input.focus();
        return;
      }
      body[input.dataset.quota] = bytes;
    }
    const button = form.querySelector("button[type='submit']");
    button.disabled = true;
    row.setAttribute("aria-busy", "true");
    say(message, "Saving…", "info");
    try {
      const { user } = await api("PATCH", `/api/admin/users/${encodeURIComponent(row.dataset.userId)}`, body);
      for (const input of form.querySelectorAll("[data-quota]")) {
        const saved = user[input.dataset.quota];
        input.dataset.value = saved === null ? "" : String(saved);
        input.value = saved === null ? "" : String(Number((saved / GIB).toPrecision(6)));
      }
      say(message, "Saved: the quotas apply to the next upload.", "ok");
    } catch (error) {
      say(message, error.message, "error");
    } finally {
      button.disabled = false;
      row.removeAttribute("aria-busy");
    }
  });
})();
