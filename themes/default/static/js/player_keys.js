// The player, part 4 of 4: keyboard shortcuts, as on the common video sites. They work
// wherever the focus is on the page except in a text field or a menu (<select>), and
// a key that a focused control uses itself (Space on a button, arrows on a slider) is
// left to that control.
//
//   Space, k  play / pause           j / l   10 s back / on     ← / →  5 s back / on
//   ↑ / ↓     volume up / down       m       mute               f      full screen
//   c         captions on / off      0 … 9   0 % … 90 % of the video
//   Shift+> / Shift+<  faster / slower
(() => {
  "use strict";

  const player = window.clipsyncPlayer;
  if (!player || !player.video) return;

  const VOLUME_STEP = 0.05;

  // Elements that take typing, or where Space and Enter do their own thing.
  const TYPING = "input:not([type=range]):not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit]):not([type=reset]), textarea, select, [contenteditable]:not([contenteditable=false])";
  const ACTIVATED_BY_SPACE =
    "button, summary, input:not([type=range]), [role=button], [role=checkbox], [role=switch], [role=menuitem], [role=menuitemradio], [role=menuitemcheckbox], [role=option], [role=radio], [role=tab]";
  const SLIDER_KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"]);

  const call = (name, ...args) => {
    if (typeof player[name] === "function") player[name](...args);
  };

  function seekTo(fraction) {
    const total = player.duration();
    if (total) player.seek(total * fraction);
  }

  // The action for a key, or null when the key is not a shortcut here.
  function actionFor(event) {
    const key = event.key;
    if (key === ">") return () => call("changeSpeed", 1);
    if (key === "<") return () => call("changeSpeed", -1);
    if (event.shiftKey && key !== " ") return null;
    if (/^[0-9]$/.test(key)) return () => seekTo(Number(key) / 10);
    switch (key.length === 1 ? key.toLowerCase() : key) {
      case " ":
      case "k":
        return () => player.togglePlay();
      case "j":
        return () => player.seekBy(-10);
      case "l":
        return () => player.seekBy(10);
      case "ArrowLeft":
        return () => player.seekBy(-5);
      case "ArrowRight":
        return () => player.seekBy(5);
      case "ArrowUp":
        return () => call("changeVolume", VOLUME_STEP);
      case "ArrowDown":
        return () => call("changeVolume", -VOLUME_STEP);
      case "m":
        return () => call("toggleMute");
      case "f":
        return () => call("toggleFullscreen");
      case "c":
        return () => call("toggleCaptions");
      default:
        return null;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    const target = event.target instanceof Element ? event.target : null;
    if (target && target.closest(TYPING)) return;
    if (target && event.key === " " && target.closest(ACTIVATED_BY_SPACE)) return;
    if (target && SLIDER_KEYS.has(event.key) && target.matches("input[type=range], [role=slider]")) return;
    const action = actionFor(event);
    if (!action) return;
    // Space would scroll the page, arrows too; the shortcut replaces them.
    event.preventDefault();
    call("showControls");
    action();
  });
})();
