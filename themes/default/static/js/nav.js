// The header's menu button: on a narrow screen the navigation folds behind it (a
// disclosure: aria-expanded on the button, the menu the element its aria-controls
// names). Escape closes the menu and puts focus back on the button; so does a click
// or a tab out of the header. Without this script the button stays hidden and the
// menu open, and wide screens never fold it (the stylesheet decides by the width).
(() => {
  "use strict";

  const header = document.getElementById("site-header");
  const button = document.getElementById("menu-button");
  const menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!header || !button || !menu) return;

  function setOpen(open, { focusButton = false } = {}) {
    button.setAttribute("aria-expanded", String(open));
    header.classList.toggle("menu-open", open);
    if (!open && focusButton) button.focus();
  }

  const isOpen = () => button.getAttribute("aria-expanded") === "true";

  button.hidden = false;
  header.classList.add("menu-ready");
  setOpen(false);

  button.addEventListener("click", () => setOpen(!isOpen()));

  header.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen()) {
      event.preventDefault();
      setOpen(false, { focusButton: true });
    }
  });

  // Focus or a click that lands outside the header closes the menu (it covers nothing
  // then, and the next Tab does not reach links the reader can no longer see).
  header.addEventListener("focusout", (event) => {
    if (isOpen() && event.relatedTarget && !header.contains(event.relatedTarget)) setOpen(false);
  });
  document.addEventListener("click", (event) => {
    if (isOpen() && !header.contains(event.target)) setOpen(false);
  });
})();
