// @ts-check
// The channel page's management forms (members, moderators, call mode,
// meeting code, guest and invite links) without leaving the page: a
// reload would end the owner's call. Each form marked data-manage is
// sent with fetch, with the same body as the plain form, asking for
// JSON (docs/api.md); the answer's notice shows next to the form and
// its re-rendered cards replace the page's in place. Without this
// script the forms post and redirect as plain forms do.

import { showNotice } from "./notices.js";

/**
 * @typedef {object} ManageAnswer
 * @property {string} [notice] what was done
 * @property {Record<string, string>} [html] re-rendered cards by element id
 * @property {string} [error] why it was refused
 * @property {Record<string, string>} [fields] per-field messages (422)
 */

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-manage")) return;
  ev.preventDefault();
  const submitter = ev.submitter instanceof HTMLElement ? ev.submitter : null;
  void send(form, submitter);
});

/**
 * Sends one form and shows its answer.
 * @param {HTMLFormElement} form
 * @param {HTMLElement | null} submitter
 */
async function send(form, submitter) {
  if (form.getAttribute("aria-busy") === "true") return; // no double sends
  form.setAttribute("aria-busy", "true");
  const body = new URLSearchParams();
  for (const [k, v] of new FormData(form, submitter)) {
    if (typeof v === "string") body.append(k, v);
  }
  /** @type {Response} */
  let res;
  /** @type {ManageAnswer | null} */
  let answer = null;
  try {
    res = await fetch(form.action, {
      method: "POST",
      body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      redirect: "error",
    });
    try {
      answer = /** @type {ManageAnswer} */ (await res.json());
    } catch {
      answer = null;
    }
  } catch {
    form.removeAttribute("aria-busy");
    showNotice(form, "Parley could not be reached, or its answer was not understood. Check your connection, reload the page and try again.", { error: true });
    return;
  }
  form.removeAttribute("aria-busy");
  clearFieldErrors(form);
  if (res.ok && answer?.html) {
    applied(form, answer.html, answer.notice || "Saved.");
    return;
  }
  const msg = answer?.error || `The server refused this (${res.status}). Reload the page and try again.`;
  if (res.status === 422 && answer?.fields && Object.keys(answer.fields).length) {
    markFields(form, answer.fields);
    return;
  }
  showNotice(form, msg, { error: true });
}

/**
 * Swaps in the re-rendered cards, then puts the notice and the focus
 * where the form was.
 * @param {HTMLFormElement} form
 * @param {Record<string, string>} html
 * @param {string} notice
 */
function applied(form, html, notice) {
  const action = form.getAttribute("action") || "";
  const sectionIds = [];
  for (let s = form.closest("section[id]"); s; s = s.parentElement?.closest("section[id]") ?? null) sectionIds.push(s.id);
  const active = document.activeElement;
  const activeId = active && form.contains(active) ? active.id : "";

  const parser = new DOMParser();
  for (const [id, markup] of Object.entries(html)) {
    const old = document.getElementById(id);
    const fresh = parser.parseFromString(markup, "text/html").getElementById(id);
    if (old && fresh) old.replaceWith(document.importNode(fresh, true));
  }

  // The same form again (by its action), or else the closest section
  // still there (a removed member's row is gone).
  const again = [...document.querySelectorAll("form[data-manage]")].find((f) => f.getAttribute("action") === action);
  let anchor = /** @type {Element | null} */ (again ?? null);
  if (!anchor) {
    const section = sectionIds.map((id) => document.getElementById(id)).find((s) => s);
    anchor = section?.querySelector("h2, h3") ?? null;
  }
  if (!anchor) return;
  showNotice(anchor, notice);
  const focus = (activeId && document.getElementById(activeId)) ||
    (again && (again.querySelector("button[type=submit]"))) ||
    (anchor instanceof HTMLHeadingElement ? anchor : null);
  if (focus instanceof HTMLElement) {
    if (focus instanceof HTMLHeadingElement) focus.tabIndex = -1;
    focus.focus();
  }
}

/**
 * Puts each field's message next to it, as the server's page does, and
 * focuses the first. Messages for no field of this form go to a notice.
 * @param {HTMLFormElement} form
 * @param {Record<string, string>} fields
 */
function markFields(form, fields) {
  const rest = [];
  /** @type {HTMLElement | null} */
  let first = null;
  for (const [name, msg] of Object.entries(fields)) {
    const input = form.elements.namedItem(name);
    if (!(input instanceof HTMLInputElement || input instanceof HTMLSelectElement) || input.type === "hidden") {
      rest.push(msg);
      continue;
    }
    const p = document.createElement("p");
    p.className = "field-error";
    p.id = `${input.id || name}-error`;
    p.dataset.placed = "1";
    p.textContent = msg;
    input.after(p);
    input.setAttribute("aria-invalid", "true");
    input.dataset.describedby = input.getAttribute("aria-describedby") || "";
    input.setAttribute("aria-describedby", p.id);
    first ??= input;
  }
  first?.focus();
  if (rest.length) showNotice(form, rest.join(" "), { error: true });
}

/**
 * Takes away the messages of an earlier answer (the server's and ours).
 * @param {HTMLFormElement} form
 */
function clearFieldErrors(form) {
  for (const p of form.querySelectorAll(".field-error")) p.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    if (!(el instanceof HTMLElement)) continue;
    el.removeAttribute("aria-invalid");
    const before = el.dataset.describedby;
    if (before) el.setAttribute("aria-describedby", before);
    else el.removeAttribute("aria-describedby");
    delete el.dataset.describedby;
  }
  // The notice of an earlier answer, too: it would contradict this one.
  const prev = form.nextElementSibling;
  if (prev instanceof HTMLElement && prev.classList.contains("notice") && prev.dataset.placed) prev.remove();
}
