// The watch page's likes and comments (templates/_comments.html).
// Comments come from /api/videos/<id>/comments; a comment's `html` was rendered and
// sanitised on the server (clipsync/rich_text.py), everything else is set as text.
// New comments by others arrive over /api/videos/<id>/comments/stream.
(() => {
  "use strict";

  const section = document.getElementById("comments");
  if (!section || !window.ClipSync) return;
  const { api, formatDate } = window.ClipSync;
  const videoId = section.dataset.videoId;
  const base = `/api/videos/${videoId}`;
  const list = document.getElementById("comment-list");
  const template = document.getElementById("comment-template");
  const form = document.getElementById("comment-form");
  const body = document.getElementById("comment-body");
  const error = document.getElementById("comment-error");
  const news = document.getElementById("comment-news");
  const order = document.getElementById("comment-order");
  const more = document.getElementById("comments-more");
  const total = document.getElementById("comment-total");
  const off = document.getElementById("comments-off");
  const toggle = document.getElementById("comments-toggle");
  const likeButton = document.getElementById("like-button");
  const likeCount = document.getElementById("like-count");

  let page = 1;
  let count = 0;
  let enabled = true;

  const announce = (text) => {
    news.textContent = text;
  };

  function showError(target, message) {
    target.textContent = message;
    target.hidden = !message;
  }

  function showCount() {
    total.textContent = count ? `(${count})` : "";
  }

  function showLikes(state) {
    likeButton.setAttribute("aria-pressed", state.liked ? "true" : "false");
    likeButton.classList.toggle("is-on", Boolean(state.liked));
    likeCount.textContent = state.likes === 1 ? "1 like" : `${state.likes} likes`;
    likeButton.disabled = false;
  }

  function showEnabled(state) {
    enabled = state.commentsEnabled;
    form.hidden = !enabled;
    off.hidden = enabled;
    toggle.hidden = !state.canTurnOff;
    toggle.textContent = enabled ? "Turn comments off" : "Turn comments on";
    for (const button of list.querySelectorAll('[data-action="reply"]')) button.hidden = !enabled;
  }

  function element(comment) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.id = `comment-${comment.id}`;
    item.dataset.id = comment.id;
    fill(item, comment);
    for (const reply of comment.replies || []) {
      item.querySelector(".comment-replies").append(element(reply));
    }
    if (comment.parentId) item.querySelector(".comment-replies").remove();
    return item;
  }

  function fill(item, comment) {
    item.querySelector(".comment-author").textContent = comment.authorName;
    const time = item.querySelector(".comment-time");
    time.dateTime = comment.createdAt;
    time.textContent = formatDate(comment.createdAt);
    const flags = [];
    if (comment.editedAt) flags.push("(edited)");
    if (comment.hidden) flags.push("(hidden from others)");
    item.querySelector(".comment-flags").textContent = flags.join(" ");
    item.querySelector(".comment-body").innerHTML = comment.html;
    item.classList.toggle("is-hidden", Boolean(comment.hidden));
    const actions = item.querySelector(".comment-actions");
    actions.querySelector('[data-action="reply"]').hidden = !enabled;
    actions.querySelector('[data-action="edit"]').hidden = !comment.canEdit;
    actions.querySelector('[data-action="delete"]').hidden = !comment.canDelete;
    const hide = actions.querySelector('[data-action="hide"]');
    hide.hidden = !comment.canHide;
    hide.textContent = comment.hidden ? "Show" : "Hide";
    item.comment = comment;
  }

  // Adds a comment (from this page or another) where it belongs, once.
  function place(comment, { announceIt = false } = {}) {
    if (document.getElementById(`comment-${comment.id}`)) return null;
    const item = element(comment);
    if (comment.parentId) {
      const parent = document.getElementById(`comment-${comment.parentId}`);
      if (!parent) return null;
      parent.querySelector(".comment-replies").append(item);
    } else {
      count += 1;
      showCount();
      if (order.value === "newest") list.prepend(item);
      else if (more.hidden) list.append(item);
      else return null; // it is on a later page
    }
    if (announceIt) announce(`New comment from ${comment.authorName}.`);
    return item;
  }

  async function load(reset) {
    if (reset) page = 1;
    const answer = await api("GET", `${base}/comments?order=${order.value}&page=${page}`);
    if (reset) list.replaceChildren();
    count = answer.total;
    showCount();
    showLikes(answer);
    showEnabled(answer);
    for (const comment of answer.items) list.append(element(comment));
    more.hidden = answer.page * answer.pageSize >= answer.total;
  }

  // A small inline form under a comment (reply, edit); Escape or Cancel closes it.
  function inlineForm(item, { label, text, submit, onSave }) {
    const slot = item.querySelector(":scope > article > .comment-slot");
    slot.replaceChildren();
    const formEl = document.createElement("form");
    formEl.className = "stack comment-inline";
    const id = `inline-${item.dataset.id}`;
    const labelEl = document.createElement("label");
    labelEl.htmlFor = id;
    labelEl.textContent = label;
    const area = document.createElement("textarea");
    area.id = id;
    area.rows = 3;
    area.maxLength = 5000;
    area.required = true;
    area.value = text;
    const problem = document.createElement("p");
    problem.className = "form-error";
    problem.setAttribute("role", "alert");
    problem.hidden = true;
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button button-small";
    save.textContent = submit;
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button button-quiet button-small";
    cancel.textContent = "Cancel";
    const close = () => {
      slot.replaceChildren();
      item.querySelector(".comment-actions button:not([hidden])")?.focus();
    };
    cancel.addEventListener("click", close);
    formEl.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      try {
        await onSave(area.value);
        close(); // the focus goes back to the comment's buttons, not to the page's top
      } catch (failure) {
        showError(problem, failure.message);
      } finally {
        save.disabled = false;
      }
    });
    formEl.append(labelEl, area, problem, save, cancel);
    slot.append(formEl);
    area.focus();
  }

  const actions = {
    reply(item) {
      const top = item.closest(".comment-list > .comment") || item;
      inlineForm(item, {
        label: `Reply to ${item.comment.authorName}`,
        text: item.comment.parentId ? `@${item.comment.authorName} ` : "",
        submit: "Post reply",
        async onSave(text) {
          const answer = await api("POST", `${base}/comments`, {
            body: text,
            parentId: Number(top.dataset.id),
          });
          place(answer.comment);
        },
      });
    },
    edit(item) {
      inlineForm(item, {
        label: "Edit your comment",
        text: item.comment.body,
        submit: "Save",
        async onSave(text) {
          const answer = await api("PATCH", `/api/comments/${item.dataset.id}`, { body: text });
          fill(item, { ...answer.comment, replies: undefined });
          announce("Comment saved.");
        },
      });
    },
    async delete(item) {
      if (!window.confirm("Delete this comment and its replies?")) return;
      await api("DELETE", `/api/comments/${item.dataset.id}`);
      if (!item.comment.parentId) {
        count -= 1;
        showCount();
      }
      item.remove();
      announce("Comment deleted.");
      body.focus();
    },
    async hide(item) {
      const answer = await api("POST", `/api/comments/${item.dataset.id}/hide`, {
        hidden: !item.comment.hidden,
      });
      fill(item, answer.comment);
      announce(answer.comment.hidden ? "Comment hidden." : "Comment shown.");
    },
  };

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest(".comment");
    try {
      await actions[button.dataset.action](item);
    } catch (failure) {
      announce(failure.message);
      window.alert(failure.message);
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const answer = await api("POST", `${base}/comments`, { body: body.value });
      body.value = "";
      place(answer.comment);
      announce("Comment posted.");
      body.focus(); // ready for the next one (the busy button lost the focus)
    } catch (failure) {
      showError(error, failure.message);
    } finally {
      submit.disabled = false;
    }
  });

  // Busy, not disabled, while it asks: a disabled button loses the keyboard's focus.
  likeButton.addEventListener("click", async () => {
    if (likeButton.getAttribute("aria-busy") === "true") return;
    const liked = likeButton.getAttribute("aria-pressed") === "true";
    likeButton.setAttribute("aria-busy", "true");
    try {
      showLikes(await api(liked ? "DELETE" : "PUT", `${base}/like`));
    } catch (failure) {
      announce(failure.message);
    } finally {
      likeButton.setAttribute("aria-busy", "false");
    }
  });

  toggle.addEventListener("click", async () => {
    try {
      const answer = await api("PUT", `${base}/comments-enabled`, { enabled: !enabled });
      showEnabled({ commentsEnabled: answer.commentsEnabled, canTurnOff: true });
      announce(answer.commentsEnabled ? "Comments turned on." : "Comments turned off.");
    } catch (failure) {
      announce(failure.message);
    }
  });

  order.addEventListener("change", () => load(true).catch((f) => announce(f.message)));
  more.addEventListener("click", () => {
    page += 1;
    load(false).catch((f) => announce(f.message));
  });

  function listen() {
    if (!("EventSource" in window)) return;
    const stream = new EventSource(`${base}/comments/stream`);
    stream.addEventListener("comment", (event) => {
      let comment;
      try {
        comment = JSON.parse(event.data);
      } catch {
        return; // a malformed event changes nothing
      }
      place(comment, { announceIt: !comment.mine });
    });
    // The session ended: stop instead of reconnecting to a stream that refuses us.
    stream.addEventListener("signed-out", () => stream.close());
  }

  load(true)
    .then(listen)
    .catch((failure) => {
      showError(error, failure.message);
      form.hidden = false;
    });
})();
