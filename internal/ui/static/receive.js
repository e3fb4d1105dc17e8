// @ts-check
// The device's page (/receive): shows a 6-digit code, waits for a sender
// from a call to type it, then plays the streams that sender forwards
// over a direct peer connection (no media through the server). When the
// sender stops, the page says so and shows a new code; an unused code
// expires after 10 minutes and is replaced the same way.

import { SUBPROTOCOL, pairURL, parsePairMessage, candidateInit, formatCode } from "./pairing.js";

/**
 * @typedef {import("./pairing.js").PairMessage} PairMessage
 * @typedef {import("./pairing.js").PairOfferMessage} PairOfferMessage
 * @typedef {{el: HTMLElement, video: HTMLVideoElement, caption: HTMLElement, stream: MediaStream}} StreamTile
 * @typedef {"connecting"|"waiting"|"paired"|"playing"|"offline"} ReceiveState
 */

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {...(Node|string)} children
 */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** The device's side of a pair. */
class Receiver {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.codeEl = /** @type {HTMLElement} */ (root.querySelector("#receive-code"));
    this.statusEl = /** @type {HTMLElement} */ (root.querySelector("#receive-status"));
    this.grid = /** @type {HTMLElement} */ (root.querySelector("#receive-grid"));
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    this.code = "";
    /** @type {ReceiveState} */
    this.state = "connecting";
    this.sender = "";
    /** Why the last pair ended ("The sender stopped"), shown above the new code. */
    this.ended = "";
    this.failures = 0;
    this.reconnectNow = false;
    /** Stream id → name, from the sender's last offer. */
    /** @type {Map<string, string>} */
    this.labels = new Map();
    /** @type {Map<string, StreamTile>} */
    this.tiles = new Map();
    this.soundBtn = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-primary", id: "receive-sound", hidden: "" }, "Turn the sound on"));
    this.soundBtn.addEventListener("click", () => this.unmute());
    this.fullBtn = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn", id: "receive-full", hidden: "" }, "Full screen"));
    this.fullBtn.addEventListener("click", () => { void this.grid.requestFullscreen?.().catch(() => {}); });
    this.grid.before(this.soundBtn, this.fullBtn);
    /** Keeps a TV's screen on while it plays (where the browser allows). */
    /** @type {WakeLockSentinel|null} */
    this.wake = null;
    /** Offers are handled one at a time, in order. */
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
  }

  connect() {
    const ws = new WebSocket(pairURL(location, "/ws/receive"), SUBPROTOCOL);
    this.ws = ws;
    this.state = "connecting";
    this.render();
    ws.addEventListener("message", (ev) => {
      if (this.ws === ws) this.onMessage(parsePairMessage(ev.data));
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closePeer();
      // After a stop or an expired code, a new code at once; after a
      // lost connection, with backoff (1 s, 2 s, … 30 s).
      const delay = this.reconnectNow ? 0 : Math.min(30000, 1000 * 2 ** this.failures);
      if (!this.reconnectNow) this.failures++;
      this.code = "";
      this.state = this.reconnectNow ? "connecting" : "offline";
      this.reconnectNow = false;
      this.render();
      setTimeout(() => this.connect(), delay);
    });
  }

  /** @param {object} m */
  send(m) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  /** @param {PairMessage|null} m */
  onMessage(m) {
    if (!m) return;
    switch (m.type) {
      case "code":
        this.failures = 0;
        this.code = typeof m.code === "string" ? m.code : "";
        this.state = "waiting";
        break;
      case "paired":
        this.sender = typeof m.name === "string" ? m.name : "";
        this.state = "paired";
        this.ended = "";
        break;
      case "offer":
        this.chain = this.chain.then(() => this.onOffer(m)).catch((err) => console.warn("parley: offer", err));
        return;
      case "candidate":
        if (this.pc && m.candidate) this.pc.addIceCandidate(m.candidate).catch((err) => console.info("parley: candidate", err));
        return;
      case "stop":
        this.ended = typeof m.reason === "string" && m.reason ? m.reason : "The sender stopped";
        this.reconnectNow = true;
        this.closePeer();
        break;
      case "expired":
        this.reconnectNow = true;
        return;
      case "error":
        console.info("parley:", m.message);
        return;
      default:
        return;
    }
    this.render();
  }

  /** @param {PairOfferMessage} m */
  async onOffer(m) {
    if (typeof m.sdp !== "string") return;
    this.labels = new Map((Array.isArray(m.labels) ? m.labels : []).map((l) => [String(l.stream), String(l.name)]));
    const pc = this.pc ?? this.newPeer();
    await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: "answer", sdp: pc.localDescription?.sdp ?? "" });
    this.pruneTiles();
    this.render();
  }

  newPeer() {
    // No ICE servers of its own: the device has no account, and the
    // sender's page (which has the call's STUN/TURN servers) gathers the
    // candidates that cross NATs; host candidates suffice on one network.
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addEventListener("icecandidate", (ev) => {
      if (ev.candidate && ev.candidate.candidate) this.send({ type: "candidate", candidate: candidateInit(ev.candidate) });
    });
    pc.addEventListener("track", (ev) => this.showTrack(ev.track, ev.streams[0]));
    pc.addEventListener("connectionstatechange", () => this.render());
    return pc;
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream|undefined} stream
   */
  showTrack(track, stream) {
    const id = stream?.id ?? track.id;
    let tile = this.tiles.get(id);
    if (!tile) {
      const video = /** @type {HTMLVideoElement} */ (el("video", { autoplay: "", playsinline: "" }));
      const caption = el("figcaption", { class: "receive-name" });
      const s = stream ?? new MediaStream();
      tile = { el: el("figure", { class: "receive-tile", "data-stream": id }, video, caption), video, caption, stream: s };
      video.srcObject = s;
      this.tiles.set(id, tile);
      this.grid.append(tile.el);
    }
    if (!stream) tile.stream.addTrack(track);
    this.play(tile.video);
    this.render();
  }

  /**
   * Plays with sound if the browser lets it; otherwise muted, with a
   * button to turn the sound on (autoplay rules want a gesture).
   * @param {HTMLVideoElement} video
   */
  play(video) {
    video.play().catch((err) => {
      if (err?.name !== "NotAllowedError") return;
      video.muted = true;
      this.soundBtn.hidden = false;
      video.play().catch(() => {});
    });
  }

  unmute() {
    for (const t of this.tiles.values()) {
      t.video.muted = false;
      t.video.play().catch(() => {});
    }
    this.soundBtn.hidden = true;
  }

  /** Drops the tiles of streams the sender no longer sends. */
  pruneTiles() {
    for (const [id, t] of this.tiles) {
      const live = t.stream.getTracks().some((x) => x.readyState === "live");
      if ((this.labels.size > 0 && !this.labels.has(id)) || !live) {
        t.el.remove();
        this.tiles.delete(id);
      }
    }
  }

  closePeer() {
    this.pc?.close();
    this.pc = null;
    for (const t of this.tiles.values()) t.el.remove();
    this.tiles.clear();
    this.labels.clear();
    this.soundBtn.hidden = true;
    this.sender = "";
  }

  render() {
    const pc = this.pc;
    if (this.state === "paired" && pc?.connectionState === "connected" && this.tiles.size > 0) this.state = "playing";
    if (this.state === "playing" && pc && pc.connectionState !== "connected") this.state = "paired";
    this.root.dataset.state = this.state;
    this.codeEl.hidden = this.state === "paired" || this.state === "playing";
    this.codeEl.textContent = this.code ? formatCode(this.code) : "······";
    this.codeEl.dataset.code = this.code;
    const from = this.sender ? ` from ${this.sender}` : "";
    /** @type {Record<ReceiveState, string>} */
    const text = {
      connecting: "Connecting…",
      offline: "Not connected to the server; trying again…",
      waiting: "Waiting for a sender. The code lasts 10 minutes; a new one shows after that.",
      paired: pc?.connectionState === "failed" ? `Could not connect to the sender${from}: are both devices on a network that lets them reach each other?` : `Connecting to the sender${from}…`,
      playing: `Receiving${from}.`,
    };
    this.statusEl.textContent = (this.ended && this.state !== "playing" && this.state !== "paired" ? this.ended + ". " : "") + text[this.state];
    for (const [id, t] of this.tiles) t.caption.textContent = this.labels.get(id) ?? "";
    this.grid.dataset.count = String(this.tiles.size);
    this.fullBtn.hidden = this.state !== "playing" || !document.fullscreenEnabled;
    this.keepAwake(this.state === "playing");
  }

  /** @param {boolean} on */
  keepAwake(on) {
    if (on && !this.wake && navigator.wakeLock) {
      navigator.wakeLock.request("screen").then((w) => {
        if (this.state !== "playing" || this.wake) { void w.release(); return; }
        this.wake = w;
        // The browser drops it when the page is hidden; asked again on return.
        w.addEventListener("release", () => { if (this.wake === w) this.wake = null; });
      }).catch(() => {}); // not allowed (hidden page, no permission): the screen may sleep
    } else if (!on && this.wake) {
      void this.wake.release();
      this.wake = null;
    }
  }

  /** Diagnostics for tests: frames painted and audio received. */
  async stats() {
    const frames = [...this.tiles.values()].map((t) => t.video.getVideoPlaybackQuality().totalVideoFrames);
    let energy = 0;
    let audioBytes = 0;
    for (const r of this.pc?.getReceivers() ?? []) {
      if (r.track.kind !== "audio") continue;
      for (const s of (await r.getStats()).values()) {
        if (s.type !== "inbound-rtp") continue;
        energy += s.totalAudioEnergy || 0;
        audioBytes += s.bytesReceived || 0;
      }
    }
    return { frames, energy, audioBytes, names: [...this.tiles.values()].map((t) => t.caption.textContent) };
  }
}

const root = document.getElementById("receive-app");
if (root) {
  const r = new Receiver(root);
  r.connect();
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") r.render(); });
  Object.defineProperty(window, "parleyReceive", {
    value: Object.freeze({
      get code() { return r.code; },
      get state() { return r.state; },
      get status() { return r.statusEl.textContent; },
      stats: () => r.stats(),
    }),
  });
}
