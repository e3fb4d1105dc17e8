// @ts-check
// "Copy" buttons next to invite and guest links (channel page): copy the
// link next to them and say so. Delegated from the document, so links the
// page adds later (a new invite) get it too. Without JavaScript the
// buttons stay hidden (app.css: html:not(.js) .copy-btn).

document.documentElement.classList.add("js");

/**
 * The link a Copy button copies: the .invite-url input in its list item
 * or section.
 * @param {Element} btn
 * @returns {HTMLInputElement|null}
 */
export function linkFor(btn) {
  const prev = btn.previousElementSibling;
  if (prev instanceof HTMLInputElement) return prev;
  return btn.closest("li, section")?.querySelector("input.invite-url") ?? null;
}

/** @param {HTMLInputElement} input */
async function copy(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return true;
  } catch {
    // No clipboard permission (or an insecure origin): select it, so
    // Ctrl+C/⌘C copies it.
    input.focus();
    input.select();
    return false;
  }
}

/** A polite live region that says what happened. */
function status() {
  let el = document.getElementById("copy-status");
  if (!el) {
    el = document.createElement("p");
    el.id = "copy-status";
    el.className = "visually-hidden";
    el.setAttribute("role", "status");
    document.body.append(el);
  }
  return el;
}

document.addEventListener("click", async (ev) => {
  const btn = /** @type {Element|null} */ (ev.target instanceof Element ? ev.target.closest(".copy-btn") : null);
  if (!(btn instanceof HTMLButtonElement)) return;
  const input = linkFor(btn);
  if (!input) return;
  const ok = await copy(input);
  const said = ok ? "Copied" : "Selected — press Ctrl+C";
  btn.textContent = said;
  status().textContent = ok ? "Link copied" : "Link selected: press Ctrl+C to copy it";
  setTimeout(() => { btn.textContent = "Copy"; }, 2500);
});
