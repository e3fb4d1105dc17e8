// @ts-check
// The page of a join token's holder (docs/api.md, Join tokens): the
// token the page was opened with is replaced by the fresh ones the server
// sends before it expires (`join-token`, docs/protocol.md); the newest is
// used to reconnect, put in the page's address (so a reload opens the
// page with it) and kept in sessionStorage (so the page's socket prefers
// it to an older one of the same grant).

const STORAGE_PREFIX = "parley.joinToken.";

/**
 * The jti (token id, the same across refreshes) of a JWT, or "".
 * @param {string} token
 */
export function tokenID(token) {
  try {
    const part = token.split(".")[1] || "";
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json);
    return typeof claims.jti === "string" ? claims.jti : "";
  } catch {
    return "";
  }
}

/** Keeps a page's join token current; without one it does nothing. */
export class JoinTokenKeeper {
  /**
   * @param {DOMStringMap} d the call root's data-* (joinToken, joinTokenExpires, socketPath, historyUrl)
   * @param {string} channelId
   * @param {Storage|null} [storage]
   */
  constructor(d, channelId, storage = globalThis.sessionStorage ?? null) {
    this.key = STORAGE_PREFIX + channelId;
    this.storage = storage;
    this.socketPath = d.socketPath || "";
    this.token = d.joinToken || "";
    this.expiresAt = d.joinTokenExpires || "";
    /** The token does not allow sending media: the page asks for no devices. */
    this.receiveOnly = !!this.token && d.publish === "0";
    if (!this.token) return;
    // A fresher token of the same grant from before a reload wins.
    try {
      const saved = JSON.parse(this.storage?.getItem(this.key) || "null");
      if (saved && typeof saved.token === "string" && typeof saved.expiresAt === "string" &&
        tokenID(saved.token) === tokenID(this.token) && Date.parse(saved.expiresAt) > Date.parse(this.expiresAt)) {
        this.token = saved.token;
        this.expiresAt = saved.expiresAt;
      }
    } catch { /* unreadable: keep the page's */ }
  }

  /** Whether the page runs on a join token. */
  get active() { return this.token !== ""; }

  /**
   * The socket's address: the page's own socket path (guests, 1:1 calls,
   * tokens), with the current token; "" for the channel's default.
   * @param {Location} loc
   */
  socketURL(loc) {
    if (!this.socketPath) return "";
    const base = `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}${this.socketPath}`;
    return this.active ? `${base}?token=${encodeURIComponent(this.token)}` : base;
  }

  /**
   * Takes a fresh token (join-token message): the next reconnect and
   * chat history fetch use it.
   * @param {import("./protocol.js").JoinTokenMessage} m
   * @param {{url: string}} sig the socket
   * @param {{opts: {historyURL?: string}}} chat
   * @param {Location} loc
   */
  renew(m, sig, chat, loc) {
    if (!this.active || typeof m.token !== "string" || !m.token) return;
    this.token = m.token;
    this.expiresAt = typeof m.expiresAt === "string" ? m.expiresAt : "";
    try {
      this.storage?.setItem(this.key, JSON.stringify({ token: this.token, expiresAt: this.expiresAt }));
    } catch { /* storage full or off: reconnects still use the new token */ }
    sig.url = this.socketURL(loc);
    // A reload opens the page with the fresh token, not the expired one.
    const page = new URL(loc.href);
    if (page.searchParams.has("token")) {
      page.searchParams.set("token", this.token);
      history.replaceState(history.state, "", page.toString());
    }
    const h = chat.opts.historyURL;
    if (h) chat.opts.historyURL = h.replace(/([?&]token=)[^&]*/, `$1${encodeURIComponent(this.token)}`);
  }

  /**
   * What the status line says when the socket closed for good, or null
   * for closes the page's other rules handle.
   * @param {number} code
   * @returns {string|null}
   */
  closeText(code) {
    if (!this.active || code !== 4001) return null;
    return "your join token was revoked or has expired: ask the app that sent you here for a new link.";
  }
}
