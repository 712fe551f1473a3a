// Accounts (/admin/users). A change of role, category or other categories ("Also in", a
// fieldset of checkboxes with data-field="categories") is only a draft until the row's
// "Save changes" button is pressed and the confirmation accepted: choosing with the
// arrow keys in a closed list (which browsers report as a change at each step) saves
// nothing. "Active" asks for confirmation at once. Each save is one
// PATCH /api/admin/users/<id>, confirmed in the row; a refusal (409: the last
// administrator) is explained there and the controls go back to what was saved.
//
// Quotas are a small form per row, saved only with its button (see below).
//
// Each row is a <tr data-user-id data-email> (data-self="1" for the signed-in admin)
// whose controls have data-field (role, categoryRole, active) and data-value (the
// saved value), data-role="pending" holds the draft's buttons, and
// data-role="message" holds the row's messages.
(() => {
  "use strict";

  const { api } = window.ClipSync;
  const { say, part } = window.ClipSyncAdmin;

  const root = document.getElementById("admin-users");
  if (!root) return;

  const ROLE_LABELS = { admin: "admin", editor: "editor", user: "user" };
  const DRAFTED = ["role", "categoryRole", "categories"];
  const isSet = (control) => control.dataset.field === "categories";

  // The other categories are compared as their sorted names, joined by commas.
  const ticked = (control) =>
    Array.from(control.querySelectorAll("input[type='checkbox']:checked"), (box) => box.value)
      .sort()
      .join(",");

  const valueOf = (control) =>
    isSet(control) ? ticked(control) : control.type === "checkbox" ? control.checked : control.value;
  const savedOf = (control) =>
    control.type === "checkbox" ? control.dataset.value === "true" : control.dataset.value;

  function setControl(control, value) {
    if (isSet(control)) {
      // From the API: every category, the primary first; from a draft: "a,b".
      const names = Array.isArray(value) ? value.slice(1) : String(value).split(",").filter(Boolean);
      for (const box of control.querySelectorAll("input[type='checkbox']")) {
        box.checked = names.includes(box.value);
      }
      control.dataset.value = names.sort().join(",");
      return;
    }
    if (control.type === "checkbox") control.checked = Boolean(value);
    else control.value = value;
    control.dataset.value = String(value);
    if (control.dataset.field === "active") {
      const text = part(control.closest("tr"), "active-text");
      if (text) text.textContent = value ? "Active" : "Deactivated";
    }
  }

  function optionLabel(control, value) {
    const option = Array.from(control.options).find((o) => o.value === value);
    return option ? option.textContent.trim() : value;
  }

  function setLabel(control, value) {
    const names = String(value).split(",").filter(Boolean);
    if (!names.length) return "none";
    return names
      .map((name) => {
        const box = control.querySelector(`input[value="${CSS.escape(name)}"]`);
        return box && box.parentElement ? box.parentElement.textContent.trim() : name;
      })
      .join(", ");
  }

  const label = (control, value) => {
    if (isSet(control)) return setLabel(control, value);
    return control.dataset.field === "role" ? ROLE_LABELS[value] || value : optionLabel(control, value);
  };

  // The role and category controls of a row whose value differs from the saved one.
  const drafted = (row) =>
    DRAFTED.map((field) => row.querySelector(`[data-field="${field}"]`)).filter(
      (control) => control && valueOf(control) !== savedOf(control),
    );

  function showDraft(row) {
    const changed = drafted(row);
    for (const control of row.querySelectorAll("[data-field]")) {
      control.classList.toggle("is-changed", changed.includes(control));
    }
    const pending = part(row, "pending");
    if (pending) pending.hidden = changed.length === 0;
  }

  function describe(changed) {
    return changed
      .map((control) => {
        const what = { role: "role", categoryRole: "category" }[control.dataset.field] || "other categories";
        return `${what} from ${label(control, savedOf(control))} to ${label(control, valueOf(control))}`;
      })
      .join(" and ");
  }

  function savedText(fields, user, row, self) {
    let text;
    if (fields.includes("active") && user.active) text = "Saved: the account is active again.";
    else if (fields.includes("active")) text = "Saved: the account is deactivated.";
    else {
      const parts = fields.map((field) => {
        const control = row.querySelector(`[data-field="${field}"]`);
        if (field === "categories") {
          return `the other categories are now ${label(control, (user.categories || []).slice(1).join(","))}`;
        }
        return field === "role"
          ? `the role is now ${label(control, user.role)}`
          : `the category is now ${label(control, user.categoryRole)}`;
      });
      text = `Saved: ${parts.join(" and ")}.`;
    }
    if (!(fields.includes("active") && user.active)) {
      text += self
        ? " You were signed out everywhere: sign in again."
        : " They were signed out everywhere.";
    }
    return text;
  }

  // PATCH the given fields of a row; on a refusal every control returns to its saved
  // value. Returns nothing; the row's message says what happened.
  async function save(row, fields) {
    const message = part(row, "message");
    const controls = fields.map((field) => row.querySelector(`[data-field="${field}"]`));
    const body = Object.fromEntries(fields.map((field, i) => [field, valueOf(controls[i])]));
    if ("categories" in body) {
      // The API takes every category; the primary one is the row's (maybe drafted) choice.
      const primary = row.querySelector("[data-field='categoryRole']").value;
      body.categories = [primary, ...body.categories.split(",").filter(Boolean)];
    }
    const self = row.dataset.self === "1";
    const buttons = row.querySelectorAll("[data-role='pending'] button");
    for (const control of [...controls, ...buttons]) control.disabled = true;
    row.setAttribute("aria-busy", "true");
    say(message, "Saving…", "info");
    try {
      const { user } = await api("PATCH", `/api/admin/users/${encodeURIComponent(row.dataset.userId)}`, body);
      for (const other of row.querySelectorAll("[data-field]")) {
        const name = other.dataset.field;
        if (name in user) setControl(other, user[name]);
      }
      say(message, savedText(fields, user, row, self), "ok");
      if (self) {
        const link = document.createElement("a");
        link.href = `/login?next=${encodeURIComponent("/admin/users")}`;
        link.textContent = "Sign in";
        message.append(" ", link);
      }
    } catch (error) {
      for (const control of controls) setControl(control, savedOf(control));
      say(message, error.message, "error");
    } finally {
      for (const control of [...controls, ...buttons]) control.disabled = false;
      row.removeAttribute("aria-busy");
      showDraft(row);
      // The message is announced (role=status); keep the focus in the row.
      (controls[0] || row).focus({ preventScroll: true });
    }
  }

  const consequence = (row) =>
    row.dataset.self === "1"
      ? "This is your own account: you will be signed out everywhere, including here."
      : "They will be signed out everywhere and sign in again with the new rights.";

  root.addEventListener("change", (event) => {
    const control = event.target.closest("[data-field]");
    if (!control || !root.contains(control)) return;
    const row = control.closest("tr[data-user-id]");
    if (DRAFTED.includes(control.dataset.field)) {
      say(part(row, "message"), "");
      showDraft(row);
      return;
    }
    // "Active": a click is deliberate, but ending someone's access still asks first.
    const value = valueOf(control);
    const question = value
      ? `Let ${row.dataset.email} sign in again?`
      : `Deactivate ${row.dataset.email}? ${consequence(row)} They cannot sign in until reactivated.`;
    if (!window.confirm(question)) {
      setControl(control, savedOf(control));
      return;
    }
    save(row, ["active"]);
  });

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-role='pending'] button[data-action]");
    if (!button || !root.contains(button)) return;
    const row = button.closest("tr[data-user-id]");
    const changed = drafted(row);
    if (button.dataset.action === "cancel") {
      for (const control of changed) setControl(control, savedOf(control));
      showDraft(row);
      say(part(row, "message"), "");
      (changed[0] || row).focus({ preventScroll: true });
      return;
    }
    if (changed.length === 0) return showDraft(row);
    if (!window.confirm(`Change the ${describe(changed)} of ${row.dataset.email}? ${consequence(row)}`)) {
      return;
    }
    save(
      row,
      changed.map((control) => control.dataset.field),
    );
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
