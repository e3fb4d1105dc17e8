// @ts-check
// DOM building for the call page. User-provided text (names, chat) only ever
// goes through textContent or attribute values — never innerHTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Creates an element. Attribute values of false/null/undefined are skipped,
 * true sets an empty attribute, functions under "on…" keys become listeners.
 * String children become text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

// 24×24 icon paths (drawn for this project; simple shapes).
const ICONS = {
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z",
  cam: "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z",
  screen: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2h-6v2h3v2H7v-2h3v-2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm0 2v10h16V6H4z",
  hangup: "M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85a1 1 0 0 1-1.41-.01L.29 13.08a1 1 0 0 1 0-1.41C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.67a1 1 0 0 1 0 1.41l-2.48 2.48a1 1 0 0 1-1.41.01 11.3 11.3 0 0 0-2.67-1.85 1 1 0 0 1-.56-.9v-3.1C15.15 9.25 13.6 9 12 9z",
  music: "M9 3v11.55A4 4 0 1 0 11 18V8h6V3H9z",
  chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2z",
};

/**
 * An inline SVG icon, hidden from assistive technology (the control or a
 * visually hidden text carries the meaning).
 * @param {keyof typeof ICONS} name
 * @param {boolean} [slashed] draw a diagonal "off" bar
 */
export function icon(name, slashed = false) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  if (slashed) {
    const line = document.createElementNS(SVG_NS, "line");
    for (const [k, v] of Object.entries({ x1: 3, y1: 3, x2: 21, y2: 21, stroke: "currentColor", "stroke-width": 2.2, "stroke-linecap": "round" })) {
      line.setAttribute(k, String(v));
    }
    svg.append(line);
  }
  return svg;
}

/**
 * Up to two initials for an avatar: "Ada Lovelace" → "AL", "ada" → "A".
 * @param {string} name
 */
export function initials(name) {
  const words = String(name || "").trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const first = (/** @type {string} */ w) => Array.from(w)[0] || "";
  const pick = words.length === 1 ? [first(words[0])] : [first(words[0]), first(words[words.length - 1])];
  return pick.join("").toUpperCase();
}

/**
 * A stable avatar hue for an id, so a person keeps their colour.
 * @param {string} id
 */
export function hueFor(id) {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
  return hash % 360;
}

/**
 * Local time of day for a chat message, e.g. "14:05".
 * @param {string} at ISO timestamp
 */
export function formatTime(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * @typedef {object} Layout
 * @property {HTMLElement} root
 * @property {HTMLElement} signalStatus
 * @property {HTMLElement} callStatus
 * @property {HTMLElement} notice
 * @property {HTMLElement} noticeText
 * @property {HTMLElement} lobby
 * @property {HTMLElement} lobbySummary
 * @property {HTMLButtonElement} joinBtn
 * @property {HTMLElement} callView
 * @property {HTMLElement} tiles
 * @property {HTMLButtonElement} muteBtn
 * @property {HTMLButtonElement} cameraBtn
 * @property {HTMLButtonElement} screenBtn
 * @property {HTMLButtonElement} musicBtn
 * @property {HTMLButtonElement} hangupBtn
 * @property {HTMLElement} onlineList
 * @property {HTMLElement} onlineEmpty
 * @property {HTMLElement} chat
 * @property {HTMLButtonElement} chatToggle
 * @property {HTMLElement} chatBadge
 * @property {HTMLElement} chatLog
 * @property {HTMLFormElement} chatForm
 * @property {HTMLInputElement} chatInput
 * @property {HTMLElement} chatError
 * @property {HTMLElement} toast
 * @property {HTMLElement} toastText
 * @property {HTMLElement} announcer  live region: joins, leaves, reconnects, by name
 * @property {HTMLButtonElement} detailsBtn  shows #call-status
 * @property {HTMLButtonElement} viewBtn  grid ↔ speaker view
 * @property {HTMLButtonElement} peopleToggle
 * @property {HTMLButtonElement} manageBtn  channel settings ↔ back to the call
 * @property {HTMLElement} people
 */

/**
 * Builds the call UI inside root.
 * @param {HTMLElement} root
 * @param {{channelName: string}} info
 * @returns {Layout}
 */
export function buildLayout(root, info) {
  /** @param {string} id @param {string} label @param {string} title @param {SVGElement} ic @param {boolean} toggle @param {string} [extraClass] */
  const ctl = (id, label, title, ic, toggle, extraClass = "") =>
    /** @type {HTMLButtonElement} */ (h("button", {
      type: "button", id, class: `ctl ${extraClass}`.trim(), "aria-label": label, title,
      "aria-pressed": toggle ? "false" : null,
    }, ic, h("span", { class: "ctl-label", "aria-hidden": "true" }, label)));

  const signalStatus = h("p", { id: "signal-status", class: "status-pill", "data-state": "connecting", role: "status", "aria-live": "polite" }, "Connecting…");
  // The details of the connection, on demand.
  const callStatus = h("p", { id: "call-status", class: "call-status", role: "status", "aria-live": "polite", hidden: true });
  const detailsBtn = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button", id: "status-details-btn", class: "btn btn-small", "aria-controls": "call-status", "aria-expanded": "false",
    onclick: () => {
      callStatus.hidden = !callStatus.hidden;
      detailsBtn.setAttribute("aria-expanded", String(!callStatus.hidden));
      detailsBtn.textContent = callStatus.hidden ? "Details" : "Hide details";
    },
  }, "Details"));
  const announcer = h("div", { id: "announcer", class: "visually-hidden", role: "log", "aria-live": "polite" });
  const viewBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "view-btn", class: "btn btn-small room-only", "data-mode": "grid" }, "Speaker view"));
  const peopleToggle = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button", id: "people-toggle", class: "btn btn-small sheet-toggle", "aria-controls": "people", "aria-expanded": "false",
  }, "People"));
  const manageBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "manage-btn", class: "btn btn-small room-only", hidden: true }, "Channel settings"));
  const chatBadge = h("span", { class: "badge", hidden: true });
  const chatToggle = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button", id: "chat-toggle", class: "btn btn-small chat-toggle",
    "aria-controls": "chat", "aria-expanded": "false", title: "Show or hide the chat",
  }, icon("chat"), h("span", {}, "Chat"), chatBadge));

  const noticeText = h("span", { class: "notice-text" });
  const notice = h("div", { id: "call-notice", class: "notice", role: "status", "aria-live": "polite", hidden: true },
    noticeText,
    h("button", { type: "button", class: "btn-close", "aria-label": "Dismiss notice", onclick: () => { notice.hidden = true; } }));

  const joinBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "join-btn", class: "btn btn-primary btn-large" }, "Join call"));
  const lobbySummary = h("p", { class: "lobby-summary" });
  const lobby = h("section", { id: "lobby", class: "lobby card", "aria-labelledby": "lobby-title" },
    h("h2", { id: "lobby-title" }, "Ready to join?"),
    lobbySummary,
    joinBtn,
    h("p", { class: "muted-text small" }, "Your camera and microphone are used only after you press Join. You can chat without joining."));

  const tiles = h("div", { id: "tiles", class: "tiles" });
  // Mute, camera and screen say what pressing them does ("Unmute" while
  // muted); controls.js keeps the words in step with the state.
  const muteBtn = ctl("mute-btn", "Mute", "Mute or unmute your microphone (M)", icon("mic"), false);
  const cameraBtn = ctl("camera-btn", "Stop video", "Turn your camera off or on (V)", icon("cam"), false);
  const screenBtn = ctl("screen-btn", "Share screen", "Share your screen, a window or a tab", icon("screen"), false);
  const musicBtn = ctl("music-btn", "Music mode", "Music mode: your instrument unprocessed, in stereo at a music bitrate (docs/studio.md)", icon("music"), true);
  const hangupBtn = ctl("hangup-btn", "Leave", "Leave the call (L)", icon("hangup"), false, "ctl-danger");
  muteBtn.setAttribute("aria-keyshortcuts", "M");
  cameraBtn.setAttribute("aria-keyshortcuts", "V");
  hangupBtn.setAttribute("aria-keyshortcuts", "L");
  const callView = h("section", { id: "call-view", class: "call-view", "aria-label": info.channelName ? `Call in ${info.channelName}` : "Call", hidden: true },
    tiles,
    h("div", { id: "controls", class: "controls", role: "toolbar", "aria-label": "Call controls" }, muteBtn, cameraBtn, screenBtn, musicBtn, hangupBtn),
    h("p", { id: "shortcut-help", class: "shortcut-help muted-text small" },
      "Keyboard shortcuts (outside the chat box): ", h("kbd", {}, "M"), " mute/unmute · ", h("kbd", {}, "V"), " camera on/off · ", h("kbd", {}, "L"), " leave"));

  const people = h("section", { id: "people", class: "people panel", "aria-labelledby": "people-title" });
  const onlineList = h("ul", { id: "online-list", class: "list people-list", "aria-labelledby": "people-title" });
  const onlineEmpty = h("p", { id: "online-empty", class: "muted-text" }, "Nobody is in the call yet.");

  // A div: role="log" is not allowed on a list, and list items need one.
  const chatLog = h("div", { id: "chat-log", class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Chat messages", tabindex: "0" });
  const chatInput = /** @type {HTMLInputElement} */ (h("input", {
    id: "chat-input", name: "text", type: "text", "aria-label": "Chat message", maxlength: "2000",
    autocomplete: "off", placeholder: "Message everyone", "aria-describedby": "chat-error",
  }));
  const chatError = h("p", { id: "chat-error", class: "field-error", "aria-live": "assertive", hidden: true });
  const chatForm = /** @type {HTMLFormElement} */ (h("form", { id: "chat-form", class: "chat-form" },
    chatInput, h("button", { type: "submit", class: "btn btn-primary", id: "chat-send" }, "Send")));
  const chat = h("section", { id: "chat", class: "chat panel", "aria-labelledby": "chat-title" },
    h("div", { class: "panel-head" },
      h("h2", { id: "chat-title" }, "Chat"),
      h("button", { type: "button", class: "btn-close chat-close", "aria-label": "Close chat", onclick: () => chatToggle.click() })),
    chatLog, chatError, chatForm);

  const toastText = h("p", { class: "toast-text" });
  const toast = h("div", { id: "toast", class: "toast", role: "alert", hidden: true },
    toastText,
    h("button", { type: "button", class: "btn-close", "aria-label": "Dismiss message", onclick: () => { toast.hidden = true; } }));

  root.replaceChildren(
    announcer,
    h("div", { class: "call-top" },
      // The page's h1 names the channel; it is out of view in the call.
      h("h2", { class: "call-title" }, info.channelName ? h("bdi", {}, info.channelName) : "Call"),
      signalStatus, detailsBtn, callStatus, viewBtn, peopleToggle, chatToggle, manageBtn),
    notice,
    h("div", { class: "call-layout" },
      h("div", { class: "stage" }, lobby, callView),
      h("aside", { class: "sidebar", "aria-label": "People and chat" },
        people,
        chat)),
    toast);
  people.append(
    h("div", { class: "panel-head" },
      h("h2", { id: "people-title" }, "In the call now:"),
      h("button", { type: "button", class: "btn-close sheet-close", "aria-label": "Close the people list", onclick: () => peopleToggle.click() })),
    onlineList, onlineEmpty);
  root.dataset.view = "lobby";

  return {
    root, signalStatus, callStatus, notice, noticeText, lobby, lobbySummary, joinBtn, callView, tiles,
    muteBtn, cameraBtn, screenBtn, musicBtn, hangupBtn, onlineList, onlineEmpty, chat, chatToggle, chatBadge,
    chatLog, chatForm, chatInput, chatError, toast, toastText, announcer, detailsBtn, viewBtn, peopleToggle, manageBtn, people,
  };
}

/**
 * @typedef {import("./protocol.js").MediaState} MediaState
 * @typedef {import("./protocol.js").Participant} Participant
 */

/**
 * How display names are compared to find look-alikes: case, width and
 * compatibility forms do not count ("Ann", "ANN" and "Ａｎｎ" are the same).
 * @param {string} name
 */
export function nameKey(name) {
  return String(name ?? "").normalize("NFKC").toLowerCase().trim();
}

/**
 * The display names (as nameKey) that more than one account uses among
 * people, so their tiles can show the username too.
 * @param {{userId: string, name: string}[]} people
 * @returns {Set<string>}
 */
export function duplicateNames(people) {
  /** @type {Map<string, Set<string>>} */
  const users = new Map();
  for (const p of people) {
    const k = nameKey(p.name);
    if (!users.has(k)) users.set(k, new Set());
    users.get(k)?.add(p.userId);
  }
  return new Set([...users].filter(([, ids]) => ids.size > 1).map(([k]) => k));
}

/**
 * "Ann (@ann)": a display name with the username that proves who it is.
 * @param {string} name
 * @param {string} [username]
 */
export function nameWithUsername(name, username) {
  return username ? `${name} (@${username})` : name;
}

/**
 * Renders the "In the call now" list.
 * @param {Layout} ui
 * @param {Participant[]} people everyone in the call, including me if joined
 * @param {string|null} myId
 */
export function renderPeople(ui, people, myId) {
  const sorted = [...people].sort((a, b) => {
    if (a.id === myId) return -1;
    if (b.id === myId) return 1;
    return a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1);
  });
  ui.onlineList.replaceChildren(...sorted.map((p) => {
    const st = p.state || {};
    return h("li", { "data-participant-id": p.id, class: p.id === myId ? "me" : null },
      // <bdi>: a name written right-to-left cannot reorder what follows it.
      h("bdi", { class: "person-name" }, p.name || "Someone"),
      p.username ? h("span", { class: "muted-text person-username" }, ` @${p.username}`) : null,
      p.id === myId ? h("span", { class: "muted-text" }, " (you)") : null,
      h("span", { class: "person-flags" },
        st.audio ? null : h("span", { class: "flag", title: "Muted" }, icon("mic", true), h("span", { class: "visually-hidden" }, ", muted")),
        st.video ? null : h("span", { class: "flag", title: "Camera off" }, icon("cam", true), h("span", { class: "visually-hidden" }, ", camera off")),
        st.screen ? h("span", { class: "flag flag-on", title: "Sharing screen" }, icon("screen"), h("span", { class: "visually-hidden" }, ", sharing screen")) : null,
        st.music ? h("span", { class: "flag flag-on", title: "Music mode" }, icon("music"), h("span", { class: "visually-hidden" }, ", music mode")) : null));
  }));
  ui.onlineEmpty.hidden = sorted.length > 0;
}

/**
 * Shows a message in the toast; it stays until dismissed or replaced, so a
 * slow reader does not miss it.
 * @param {Layout} ui
 * @param {string} text
 */
export function showToast(ui, text) {
  ui.toastText.textContent = text;
  ui.toast.hidden = false;
}

/**
 * @param {Layout} ui
 * @param {string} text "" hides the notice
 */
export function showNotice(ui, text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = !text;
}

/**
 * Says something to screen-reader users through the live region: "Bob
 * joined". The last 20 stay (a log), older ones go.
 * @param {Layout} ui
 * @param {string} text
 */
export function announce(ui, text) {
  ui.announcer.append(h("p", {}, text));
  while (ui.announcer.childElementCount > 20) ui.announcer.firstElementChild?.remove();
}

/**
 * Sets an element's text unless it already says that: rewriting identical
 * text would make live regions re-announce it.
 * @param {HTMLElement} el
 * @param {string} text
 */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
