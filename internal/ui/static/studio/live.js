// @ts-check
// The channel's WebSocket as the studio uses it: it joins no call, it only
// listens for "studio" messages (docs/protocol.md) and reconnects with
// backoff; after a reconnect the page refetches, since changes may have
// been missed.

/** Subprotocol of docs/protocol.md. */
const SUBPROTOCOL = "parley.v1";
const PING_MS = 10_000;

/** @typedef {import("../protocol.js").StudioEvent} StudioEvent */

/** Listens to one channel's studio changes. */
export class StudioSocket {
  /**
   * @param {string} channelId
   * @param {{onEvent: (ev: StudioEvent) => void, onOpen: () => void, onState?: (connected: boolean) => void}} handlers
   */
  constructor(channelId, handlers) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = scheme + "//" + location.host + "/ws/c/" + encodeURIComponent(channelId);
    this.h = handlers;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.ping = undefined;
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, SUBPROTOCOL);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.h.onState?.(true);
      this.h.onOpen();
      this.ping = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping", ts: Date.now() }));
      }, PING_MS);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (msg && msg.type === "studio" && msg.studio) this.h.onEvent(msg.studio);
    };
    ws.onclose = (ev) => {
      clearInterval(this.ping);
      this.ws = null;
      this.h.onState?.(false);
      // 4001 (session ended), 4003 (removed) and 4004 (channel deleted)
      // will not get better by retrying.
      if (this.stopped || [4001, 4003, 4004].includes(ev.code)) return;
      const delay = Math.min(5000, 500 * 2 ** Math.min(this.attempt++, 4));
      setTimeout(() => this.connect(), delay);
    };
  }

  stop() {
    this.stopped = true;
    clearInterval(this.ping);
    this.ws?.close(1000, "bye");
  }
}
