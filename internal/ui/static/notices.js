// @ts-check
// Page notices ("Member added."), the server's flash and the ones
// manage.js shows next to a form: each gets a Dismiss button, and one
// that is not an error goes away by itself after NOTICE_MS (held while
// the pointer or the keyboard focus is on it). Errors stay until
// dismissed. Loaded by every page (layout.html).

/** How long a notice that is not an error stays, in milliseconds. */
export const NOTICE_MS = 8000;

/**
 * Gives a notice its Dismiss button and, unless it is an error, its
 * timer. Its text is what it holds when armed.
 * @param {HTMLElement} el
 * @param {number} [ms] how long it stays (not for errors)
 */
export function armNotice(el, ms = NOTICE_MS) {
  if (el.dataset.armed) return;
  el.dataset.armed = "1";
  const text = document.createElement("span");
  text.className = "notice-text";
  text.append(...el.childNodes);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "btn-close";
  close.setAttribute("aria-label", "Dismiss notice");
  close.addEventListener("click", () => dismiss(el));
  el.append(text, close);
  if (el.classList.contains("notice-error")) return;

  let left = ms;
  let started = 0;
  /** @type {number | undefined} */
  let timer;
  const run = () => {
    started = Date.now();
    timer = window.setTimeout(() => dismiss(el), Math.max(0, left));
  };
  const hold = () => {
    if (timer === undefined) return;
    clearTimeout(timer);
    timer = undefined;
    left -= Date.now() - started;
  };
  const resume = () => {
    if (timer === undefined && el.isConnected && !el.matches(":hover") && !el.contains(document.activeElement)) run();
  };
  el.addEventListener("pointerenter", hold);
  el.addEventListener("pointerleave", resume);
  el.addEventListener("focusin", hold);
  // After focusout, activeElement is the next element only once the
  // event is over.
  el.addEventListener("focusout", () => setTimeout(resume));
  run();
}

/**
 * Removes a notice. Focus inside it goes to the heading of its section
 * rather than to the page's start.
 * @param {HTMLElement} el
 */
export function dismiss(el) {
  const hadFocus = el.contains(document.activeElement);
  const section = el.parentElement?.closest("section, main");
  el.remove();
  if (!hadFocus || !section) return;
  const heading = /** @type {HTMLElement | null} */ (section.querySelector("h1, h2, h3"));
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

/**
 * Shows a notice after an element (a form, usually) and arms it. An
 * earlier notice in the same place goes first.
 * @param {Element} after
 * @param {string} text
 * @param {{error?: boolean}} [opts]
 * @returns {HTMLElement}
 */
export function showNotice(after, text, opts = {}) {
  const prev = after.nextElementSibling;
  if (prev instanceof HTMLElement && prev.classList.contains("notice") && prev.dataset.placed) prev.remove();
  const el = document.createElement("p");
  el.className = opts.error ? "notice notice-error" : "notice";
  // alert interrupts: for errors only.
  el.setAttribute("role", opts.error ? "alert" : "status");
  el.dataset.placed = "1";
  el.textContent = text;
  after.after(el);
  armNotice(el);
  return el;
}

/** Arms the server's notices and drops ?done= from the address, so that a reload does not repeat them. */
function boot() {
  for (const el of document.querySelectorAll("[data-flash]")) {
    if (el instanceof HTMLElement) armNotice(el);
  }
  const url = new URL(location.href);
  if (url.searchParams.has("done")) {
    url.searchParams.delete("done");
    history.replaceState(history.state, "", url);
  }
}

boot();
