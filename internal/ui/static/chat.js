// @ts-check
// The chat panel: history from the REST API, live messages from signaling,
// deduplicated by message id and kept in time order.

import { h, formatTime } from "./ui.js";

/** Most characters a chat message may have (server counts code points). */
export const MAX_CHAT_CHARS = 2000;

/**
 * @typedef {{id: string, userId: string, name: string, username?: string, text: string, at: string}} ChatMessage
 */

/**
 * Checks what the user typed before sending; returns the text to send or an
 * error to show. The server re-validates; this only saves a round trip.
 * @param {string} raw
 * @returns {{text: string, error: string}}
 */
export function checkChatText(raw) {
  const text = String(raw ?? "").trim();
  if (!text) return { text: "", error: "" }; // nothing to send; not worth an error
  const n = Array.from(text).length;
  if (n > MAX_CHAT_CHARS) return { text: "", error: `That message is ${n} characters; the limit is ${MAX_CHAT_CHARS}, so split it up.` };
  return { text, error: "" };
}

/**
 * Where to insert a message with time `at` among items sorted by time,
 * scanning from the end (new messages almost always go last).
 * @param {string[]} ats existing timestamps, oldest first
 * @param {string} at
 * @returns {number} index to insert at
 */
export function insertionIndex(ats, at) {
  const t = Date.parse(at);
  let i = ats.length;
  if (Number.isNaN(t)) return i;
  while (i > 0) {
    const prev = Date.parse(ats[i - 1]);
    if (Number.isNaN(prev) || prev <= t) break;
    i--;
  }
  return i;
}

export class Chat {
  /**
   * @param {import("./ui.js").Layout} ui
   * @param {{channelId: string, myUserId: string, send: (text: string) => boolean, historyURL?: string}} opts
   */
  constructor(ui, opts) {
    this.ui = ui;
    this.opts = opts;
    /** @type {Set<string>} */
    this.seen = new Set();
    this.unread = 0;
    /** Last text we sent, restored into the box if the server refuses it. */
    this.lastSent = "";

    ui.chatForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    ui.chatInput.addEventListener("input", () => this.showError(""));
    ui.chatToggle.addEventListener("click", () => this.setOpen(!this.isOpen()));
  }

  submit() {
    const { text, error } = checkChatText(this.ui.chatInput.value);
    if (error) return this.showError(error);
    if (!text) return;
    if (!this.opts.send(text)) {
      this.showError("Not connected right now — your message was not sent. It stays in the box; try again in a moment.");
      return;
    }
    this.lastSent = text;
    this.ui.chatInput.value = "";
    this.showError("");
  }

  /**
   * Loads the stored history (oldest first). Failure is shown, not thrown:
   * live chat still works.
   */
  async loadHistory() {
    try {
      const res = await fetch(this.opts.historyURL || `/api/channels/${encodeURIComponent(this.opts.channelId)}/messages`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      const list = Array.isArray(body?.messages) ? body.messages : [];
      for (const m of list) this.add(m, { history: true });
    } catch (err) {
      console.warn("parley: chat history", err);
      this.showError("Could not load earlier messages. New messages will still appear.");
    }
  }

  /**
   * Adds one message unless it is already shown.
   * @param {ChatMessage} m
   * @param {{history?: boolean}} [o]
   */
  add(m, o = {}) {
    if (!m || typeof m.id !== "string" || this.seen.has(m.id)) return;
    this.seen.add(m.id);
    const log = this.ui.chatLog;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const mine = m.userId === this.opts.myUserId;
    const at = String(m.at || "");
    const el = h("div", { class: mine ? "chat-msg mine" : "chat-msg", "data-message-id": m.id, "data-at": at },
      h("span", { class: "chat-meta" },
        // <bdi>: right-to-left text in a name cannot reorder the line.
        h("bdi", { class: "chat-name" }, m.name || "Someone"),
        // Display names may repeat or imitate each other; the username
        // (unique) says who wrote it.
        m.username ? h("span", { class: "chat-username" }, `@${m.username}`) : null,
        " ",
        h("time", { datetime: at, title: at ? new Date(at).toLocaleString() : null }, formatTime(at))),
      " ", // keeps copied text and screen-reader output readable
      h("span", { class: "chat-text" }, String(m.text ?? "")));

    const items = /** @type {HTMLElement[]} */ (Array.from(log.children));
    const idx = insertionIndex(items.map((x) => x.dataset.at || ""), at);
    log.insertBefore(el, items[idx] || null);
    if (nearBottom || mine || o.history) log.scrollTop = log.scrollHeight;

    if (!o.history && !mine && !this.isOpen() && this.isCollapsible()) {
      this.unread++;
      this.ui.chatBadge.textContent = String(this.unread);
      this.ui.chatBadge.hidden = false;
      this.ui.chatToggle.setAttribute("aria-label", `Chat, ${this.unread} unread`);
    }
  }

  /** @param {string} text "" clears */
  showError(text) {
    this.ui.chatError.textContent = text;
    this.ui.chatError.hidden = !text;
    if (text) this.ui.chatInput.setAttribute("aria-invalid", "true");
    else this.ui.chatInput.removeAttribute("aria-invalid");
  }

  /**
   * A server error about chat: show it by the form and give back the text.
   * @param {string} message
   */
  serverError(message) {
    this.showError(message || "The message was not accepted.");
    if (this.lastSent && !this.ui.chatInput.value) this.ui.chatInput.value = this.lastSent;
  }

  isOpen() {
    return this.ui.chat.classList.contains("open");
  }

  /** Whether the chat is behind its button (narrow screens, see app.css). */
  isCollapsible() {
    return getComputedStyle(this.ui.chatToggle).display !== "none";
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.ui.chat.classList.toggle("open", open);
    this.ui.chatToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      this.unread = 0;
      this.ui.chatBadge.hidden = true;
      this.ui.chatToggle.removeAttribute("aria-label");
      this.ui.chatLog.scrollTop = this.ui.chatLog.scrollHeight;
      this.ui.chatInput.focus();
    } else {
      this.ui.chatToggle.focus();
    }
  }
}
