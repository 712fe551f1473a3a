// Tag fields (input[data-tag-input], "demo, how-to"): as the person types a tag, the
// tags already used on videos they may see that start with it are offered as
// buttons (GET /api/tags?q=); choosing one completes the tag being typed.
(() => {
  "use strict";

  const WAIT_MS = 150;

  function enhance(input) {
    const box = input.parentElement.querySelector('[data-role="tag-suggestions"]');
    if (!box) return;
    let timer = 0;
    let asked = "";

    // The tag being typed: the text after the last comma.
    function typing() {
      const parts = input.value.split(",");
      return parts[parts.length - 1].trim().replace(/^#/, "");
    }

    function choose(label) {
      const parts = input.value.split(",").map((part) => part.trim());
      parts[parts.length - 1] = label;
      input.value = `${parts.filter(Boolean).join(", ")}, `;
      box.hidden = true;
      box.replaceChildren();
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.focus();
    }

    async function suggest() {
      const prefix = typing();
      if (prefix === asked) return;
      asked = prefix;
      if (!prefix) {
        box.hidden = true;
        box.replaceChildren();
        return;
      }
      let items = [];
      try {
        items = (await ClipSync.api("GET", `/api/tags?q=${encodeURIComponent(prefix)}`)).items || [];
      } catch {
        items = []; // suggestions are a help, never in the way
      }
      if (prefix !== typing()) return; // typed on meanwhile
      const taken = new Set(input.value.split(",").slice(0, -1).map((p) => p.trim().toLowerCase()));
      const buttons = items
        .filter((item) => !taken.has(item.label.toLowerCase()))
        .map((item) => {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "tag-suggestion";
          button.textContent = `#${item.label}`;
          button.dataset.tag = item.label;
          button.addEventListener("click", () => choose(item.label));
          return button;
        });
      box.replaceChildren(...buttons);
      box.hidden = buttons.length === 0;
    }

    input.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(suggest, WAIT_MS);
    });
  }

  document.querySelectorAll("input[data-tag-input]").forEach(enhance);
})();
