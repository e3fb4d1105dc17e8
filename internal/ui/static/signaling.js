// @ts-check
// Signaling socket for one channel (docs/protocol.md): one WebSocket, JSON
// text frames, reconnect with backoff, and an application-level heartbeat
// because browsers cannot see the server's WebSocket pings.
//
// This module knows nothing about calls or the DOM; call.js decides what
// each message means.

/** Subprotocol offered on the upgrade. */
export const SUBPROTOCOL = "parley.v1";

/** First reconnect delay in ms; doubles on every failed attempt. */
export const BACKOFF_MIN_MS = 500;
/** Longest reconnect delay in ms. */
export const BACKOFF_MAX_MS = 5000;
/** How often we send a `ping` message. */
export const PING_INTERVAL_MS = 10_000;
/** Silence after which we assume the server (or the path to it) is dead. */
export const SILENCE_TIMEOUT_MS = 25_000;

/**
 * Delay before reconnect attempt number `attempt` (0 = first retry):
 * 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s, …
 * @param {number} attempt
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt) {
  const n = Math.max(0, Math.floor(attempt));
  // Cap the exponent so large attempt counts do not overflow to Infinity.
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(n, 16));
}

/**
 * WebSocket URL for a channel's call room, on the host the page came from
 * (the server checks Origin against it).
 * @param {{protocol: string, host: string}} loc usually `location`
 * @param {string} channelId
 * @returns {string}
 */
export function socketURL(loc, channelId) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return scheme + "//" + loc.host + "/ws/c/" + encodeURIComponent(channelId);
}

/**
 * @typedef {"connecting"|"connected"|"reconnecting"|"offline"} SignalState
 *
 * @typedef {object} SignalingHandlers
 * @property {(msg: import("./protocol.js").ServerMessage) => void} onMessage  every parsed server message (an object
 *   with a string `type`; its other fields are unchecked)
 * @property {(state: SignalState) => void} onState
 * @property {() => void} [onOpen]   the socket opened (hello follows)
 * @property {(info: {everOpened: boolean, failures: number, code: number}) => void} [onClose]
 *   the socket closed or failed; reconnect is already scheduled unless stop() was called
 */

/** Reconnecting signaling connection. */
export class Signaling {
  /**
   * @param {string} url
   * @param {SignalingHandlers} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.h = handlers;
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {SignalState} */
    this.state = "connecting";
    this.attempt = 0;
    /** Consecutive attempts that never opened (for auth/404 diagnosis). */
    this.failures = 0;
    this.stopped = false;
    this.lastMessageAt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.pingTimer = undefined;
    this.hadConnection = false;
    /** Log every message's type and peer to the console (?debug in the page URL). */
    this.debug = false;
  }

  /** Opens the socket (idempotent while one is open or opening). */
  connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.setState(this.hadConnection ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      // A malformed URL throws synchronously; treat it like a failed attempt.
      console.error("parley: cannot open WebSocket", err);
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.hadConnection = true;
      this.lastMessageAt = Date.now();
      this.setState("connected");
      this.startHeartbeat();
      this.h.onOpen?.();
    };
    ws.onmessage = (ev) => {
      this.lastMessageAt = Date.now();
      if (typeof ev.data !== "string") return; // the protocol is text only
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn("parley: ignoring a non-JSON message from the server");
        return;
      }
      if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
      // A successful exchange resets the backoff, so a later drop retries fast.
      this.attempt = 0;
      if (this.debug && msg.type !== "pong") console.debug("parley ←", msg.type, msg.from || msg.id || msg.participant?.id || msg.code || "", msg.sdp ? sdpSummary(msg.sdp) : "");
      try {
        this.h.onMessage(msg);
      } catch (err) {
        // One bad handler must not kill the socket.
        console.error("parley: error handling", msg.type, err);
      }
    };
    ws.onclose = (ev) => this.closed(ws, opened, ev.code);
    // onerror is always followed by onclose; nothing to do here.
    ws.onerror = () => {};
  }

  /**
   * Sends one message if the socket is open.
   * @param {import("./protocol.js").ClientMessage} msg
   * @returns {boolean} whether it was handed to the socket
   */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      if (this.debug && msg.type !== "ping") console.debug("parley →", msg.type, "to" in msg ? msg.to : "", "sdp" in msg ? sdpSummary(msg.sdp) : "");
      ws.send(JSON.stringify(msg));
      return true;
    } catch (err) {
      console.warn("parley: send failed", err);
      return false;
    }
  }

  /** Whether a message sent now would go out. */
  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Drops the current socket and reconnects at once (used when the socket
   * looks dead, or to start over with a fresh server-side session).
   */
  restart() {
    if (this.stopped) return;
    const ws = this.ws;
    if (ws) {
      this.detach(ws);
      try { ws.close(4000, "client restart"); } catch { /* already closing */ }
      this.afterClose(true, 1006);
    }
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** Closes for good (page going away, or we cannot ever connect). */
  stop(state = /** @type {SignalState} */ ("offline")) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      this.detach(ws);
      try { ws.close(1000, "bye"); } catch { /* ignore */ }
    }
    this.setState(state);
  }

  /** Reconnects now if waiting for a retry (e.g. the network came back). */
  retryNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  // --- internals ---

  /** @param {SignalState} s */
  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.h.onState(s);
  }

  /** @param {WebSocket} ws */
  detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  /**
   * @param {WebSocket} ws
   * @param {boolean} opened
   * @param {number} code
   */
  closed(ws, opened, code) {
    if (ws !== this.ws) return;
    this.detach(ws);
    this.afterClose(opened, code);
    this.scheduleRetry();
  }

  /**
   * @param {boolean} opened
   * @param {number} code
   */
  afterClose(opened, code) {
    this.ws = null;
    this.stopHeartbeat();
    if (!opened) this.failures++;
    if (!this.stopped) this.setState(this.hadConnection ? "reconnecting" : "connecting");
    this.h.onClose?.({ everOpened: this.hadConnection, failures: this.failures, code });
  }

  scheduleRetry() {
    if (this.stopped || this.retryTimer !== undefined) return;
    const delay = backoffDelay(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    // One timer does both jobs: ping every 10 s, and notice 25 s of silence.
    // Checking every second keeps the silence detection close to 25 s.
    let sinceLastPing = 0;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastMessageAt > SILENCE_TIMEOUT_MS) {
        console.warn("parley: no message from the server for 25 s; reconnecting");
        // close() on a dead TCP connection can take minutes to fire onclose,
        // so detach and move on immediately.
        const ws = this.ws;
        if (ws) {
          this.detach(ws);
          try { ws.close(4001, "silent"); } catch { /* ignore */ }
          this.afterClose(true, 1006);
        }
        this.scheduleRetry();
        return;
      }
      sinceLastPing += 1000;
      if (sinceLastPing >= PING_INTERVAL_MS) {
        sinceLastPing = 0;
        this.send({ type: "ping", ts: Date.now() });
      }
    }, 1000);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }
}

/**
 * A one-line digest of an SDP for debug logs: the m-lines and directions.
 * @param {string} sdp
 */
export function sdpSummary(sdp) {
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("m=")) out.push(line.split(" ")[0].slice(2));
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) out[out.length - 1] += ":" + line.slice(2);
  }
  return "[" + out.join(" ") + "]";
}
