// @ts-check
// Small DOM helpers for the studio page (no framework, no innerHTML: every
// text is set as text, so names cannot inject markup).

/**
 * Makes an element.
 * @param {string} tag
 * @param {Record<string, any>} [props] properties (dataset, className, …); "on*" functions become listeners
 * @param {Array<Node|string|null|undefined|false>} [children]
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "attrs") for (const [a, av] of Object.entries(v)) e.setAttribute(a, String(av));
    else /** @type {any} */ (e)[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

/**
 * m:ss.t for a time in seconds.
 * @param {number} sec
 */
export function formatTime(sec) {
  const s = Math.max(0, sec);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return m + ":" + (rest < 10 ? "0" : "") + rest.toFixed(1);
}

/**
 * A byte count for people.
 * @param {number} n
 */
export function formatBytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + " MiB";
  return (n / (1 << 30)).toFixed(2) + " GiB";
}
