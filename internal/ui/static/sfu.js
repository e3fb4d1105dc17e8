// @ts-check
// SFU topology (docs/protocol.md, "SFU topology"): two peer connections
// with the server. We offer on the *publish* connection (our microphone,
// camera with three simulcast layers, screen share); the server offers on
// the *subscribe* connection (everyone else's tracks, one stream per
// participant and source). Because each side only ever offers on its own
// connection, negotiation cannot glare and needs no perfect-negotiation
// bookkeeping.

import { peerStateFor, updateIceServers, ICE_RESTART_INTERVAL_MS } from "./peer.js";
import { register, remoteDescription, setLocal, tune, tuneReceiver } from "./musicmode.js";

/** The `to`/`from` of every SFU signaling message. */
export const SFU_PEER = "sfu";

/**
 * Camera simulcast layers: quarter, half and full resolution (rids q, h, f
 * as in docs/protocol.md). The bitrates suit the 640×360 capture of
 * media.js CAMERA_CONSTRAINTS and scale down with it.
 */
export const CAMERA_ENCODINGS = Object.freeze([
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
]);

/** After the server refused our publish offer, try again this much later. */
export const OFFER_RETRY_MS = 1000;

/** How long we wait for the server's answer before sending our offer again. */
export const ANSWER_TIMEOUT_MS = 10_000;

/**
 * @typedef {"microphone"|"camera"|"screen"} Source  what a published track is
 * @typedef {"camera"|"screen"} StreamSource          what a forwarded stream is
 */

/**
 * Reads a forwarded stream id, `PARTICIPANT_ID:camera` or
 * `PARTICIPANT_ID:screen`. Returns null for anything else (a stream we do
 * not understand is ignored, not guessed at).
 * @param {string} id
 * @returns {{participant: string, source: StreamSource}|null}
 */
export function parseStreamId(id) {
  if (typeof id !== "string") return null;
  const i = id.lastIndexOf(":");
  if (i <= 0) return null;
  const source = id.slice(i + 1);
  if (source !== "camera" && source !== "screen") return null;
  return { participant: id.slice(0, i), source };
}

/**
 * Whether a signaling message comes from the server's SFU: its sender is
 * the reserved `from` "sfu" (docs/protocol.md). The server fills `from`
 * itself and never lets a participant's message carry it (nor `pc`), so a
 * participant cannot pass for the SFU; a `pc` alone proves nothing.
 * @param {{pc?: unknown, from?: unknown}} m
 */
export function isSfuMessage(m) {
  return m.from === SFU_PEER;
}

/**
 * Whether a signaling message comes from another participant (mesh): a
 * participant id in `from`, and none of the SFU's fields. One carrying
 * `pc` is neither the SFU's nor a peer's, and is dropped.
 * @param {{pc?: unknown, from?: unknown}} m
 */
export function isPeerMessage(m) {
  return typeof m.from === "string" && m.from !== "" && m.from !== SFU_PEER && m.pc === undefined;
}

/**
 * The state a participant sees for "the connection to the server": the
 * worse of the two, so a broken publish path is not hidden by a healthy
 * subscribe path (or the other way round).
 * @param {import("./peer.js").PeerState} a
 * @param {import("./peer.js").PeerState} b
 * @returns {import("./peer.js").PeerState}
 */
export function worseState(a, b) {
  const rank = { failed: 4, reconnecting: 3, new: 2, connecting: 1, connected: 0 };
  return rank[a] >= rank[b] ? a : b;
}

/**
 * Below this capture height Chrome sends at most two simulcast layers
 * (its table: 640×360 → 2, 960×540 → 3) and drops the top one, so a
 * 640×360 camera with three encodings never sent its full picture.
 */
export const THREE_LAYERS_MIN_HEIGHT = 540;

/**
 * Encodings for a published track: simulcast for the camera, one encoding
 * for everything else (undefined lets the browser choose). A camera
 * captured below 540 lines sends h and f only, so the full picture goes out.
 * @param {Source} source
 * @param {number} [height] the capture's height (track.getSettings()); unknown = three layers
 */
export function encodingsFor(source, height) {
  if (source !== "camera") return undefined;
  const all = CAMERA_ENCODINGS.map((e) => ({ ...e }));
  return height && height < THREE_LAYERS_MIN_HEIGHT ? all.slice(1) : all;
}

/**
 * @typedef {object} SfuOptions
 * @property {RTCIceServer[]} iceServers
 * @property {(msg: import("./protocol.js").ClientMessage) => boolean} send        sends a signaling message
 * @property {(ev: RTCTrackEvent) => void} onTrack  a forwarded track arrived (subscribe connection)
 * @property {() => void} onStateChange             either connection changed state
 * @property {() => void} [onServerReady]           the server sent its first description: it has our connections
 * @property {boolean} [debug]
 */

/** Publish and subscribe connections with the server. */
export class SfuSession {
  /** @param {SfuOptions} opts */
  constructor(opts) {
    this.opts = opts;
    this.closed = false;
    this.pub = newPC(opts.iceServers);
    this.sub = newPC(opts.iceServers);
    /** What each published track is, by MediaStreamTrack.id (the `sources` field). */
    /** @type {Map<string, Source>} */
    this.sources = new Map();
    /** Our transceivers by source; screen is null when not sharing. */
    /** @type {{microphone: RTCRtpTransceiver|null, camera: RTCRtpTransceiver|null, screen: RTCRtpTransceiver|null}} */
    this.senders = { microphone: null, camera: null, screen: null };
    /** An offer is being created; negotiationneeded during it must not be lost. */
    this.offering = false;
    this.offerAgain = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.answerTimer = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
    this.lastIceRestart = 0;
    this.serverReady = false;
    /** Waiting to retry a refused offer. */
    this.holdOffers = false;
    /** Operations on each connection run one after the other, in arrival order. */
    /** @type {Record<"pub"|"sub", Promise<void>>} */
    this.chain = { pub: Promise.resolve(), sub: Promise.resolve() };

    const pub = this.pub;
    pub.onnegotiationneeded = () => this.offer();
    pub.onicecandidate = (ev) => this.sendCandidate("pub", ev.candidate);
    pub.onconnectionstatechange = () => this.stateChanged("pub");

    const sub = this.sub;
    sub.ontrack = (ev) => { tuneReceiver(ev.receiver); if (!this.closed) opts.onTrack(ev); };
    // Music mode (musicmode.js): a new publish offer applies its Opus
    // parameters; the subscribe side takes them at the server's next offer.
    this.unregisterMusic = [register(pub, () => this.offer()), register(sub, () => {})];
    sub.onicecandidate = (ev) => this.sendCandidate("sub", ev.candidate);
    sub.onconnectionstatechange = () => this.stateChanged("sub");
    if (opts.debug) {
      for (const [name, pc] of /** @type {const} */ ([["pub", pub], ["sub", sub]])) {
        pc.onsignalingstatechange = () => console.debug("parley sfu", name, "signalingState", pc.signalingState);
        pc.oniceconnectionstatechange = () => console.debug("parley sfu", name, "iceConnectionState", pc.iceConnectionState);
      }
    }
  }

  /** @returns {import("./peer.js").PeerState} */
  get pubState() { return peerStateFor(this.pub.connectionState); }

  /** @returns {import("./peer.js").PeerState} */
  get subState() { return peerStateFor(this.sub.connectionState); }

  /** Whether we send anything (a participant without devices only receives). */
  get publishing() {
    return Object.values(this.senders).some((t) => t !== null);
  }

  /** Both connections taken together (for summaries). */
  get state() { return worseState(this.pubState, this.subState); }

  /**
   * Publishes the camera stream's tracks that are not published yet (a
   * device granted later is added with a renegotiation).
   * @param {MediaStream} camStream
   */
  publishCamera(camStream) {
    if (this.closed) return;
    const mic = camStream.getAudioTracks()[0];
    const cam = camStream.getVideoTracks()[0];
    if (mic && !this.senders.microphone) this.senders.microphone = this.addTrack(mic, camStream, "microphone");
    if (cam && !this.senders.camera) this.senders.camera = this.addTrack(cam, camStream, "camera");
  }

  /**
   * Starts or stops publishing a screen share (renegotiates).
   * @param {MediaStreamTrack|null} track
   * @param {MediaStream|null} stream
   */
  setScreen(track, stream) {
    if (this.closed) return;
    const old = this.senders.screen;
    if (old) {
      const id = old.sender.track?.id;
      if (id) this.sources.delete(id);
      try { old.stop(); } catch { /* already stopped */ }
      this.senders.screen = null;
    }
    if (track && stream) this.senders.screen = this.addTrack(track, stream, "screen");
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {Source} source
   */
  addTrack(track, stream, source) {
    this.sources.set(track.id, source);
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: "sendonly", streams: [stream] };
    const enc = encodingsFor(source, track.getSettings?.().height);
    if (enc) init.sendEncodings = enc;
    // addTransceiver fires negotiationneeded → offer().
    return this.pub.addTransceiver(track, init);
  }

  /** The `sources` field: what each sent track is. */
  sourcesField() {
    /** @type {Record<string, Source>} */
    const out = {};
    for (const t of this.pub.getTransceivers()) {
      const track = t.sender.track;
      const source = track && this.sources.get(track.id);
      if (source && t.direction !== "stopped") out[track.id] = source;
    }
    return out;
  }

  /** Creates and sends a publish offer (called on negotiationneeded). */
  async offer() {
    const pc = this.pub;
    if (this.closed) return;
    if (this.offering || this.holdOffers || pc.signalingState !== "stable") {
      // The browser fires negotiationneeded again once stable, but not
      // for a change made while we were between createOffer and
      // setLocalDescription.
      this.offerAgain = true;
      return;
    }
    this.offering = true;
    this.offerAgain = false;
    try {
      await setLocal(pc);
      this.sendOffer();
    } catch (err) {
      console.warn("parley: creating the publish offer failed", err);
    } finally {
      this.offering = false;
    }
  }

  /** (Re)sends the offer we are waiting on an answer for. */
  sendOffer() {
    const d = this.pub.localDescription;
    if (this.closed || !d || this.pub.signalingState !== "have-local-offer") return;
    this.opts.send({ type: "offer", to: SFU_PEER, pc: "pub", sdp: d.sdp, sources: this.sourcesField() });
    clearTimeout(this.answerTimer);
    // An offer can be lost with the socket; the server answers a repeated
    // offer like the first (it is the same description).
    this.answerTimer = setTimeout(() => this.sendOffer(), ANSWER_TIMEOUT_MS);
  }

  /**
   * The server refused our offer: go back to stable and try again a bit
   * later. The usual cause is a race at a topology switch (our offer
   * arrived before the server had set up our connections). The retry
   * restarts ICE: candidates we trickled for the refused offer were dropped.
   */
  offerRefused() {
    if (this.closed || this.pub.signalingState !== "have-local-offer") return;
    clearTimeout(this.answerTimer);
    this.holdOffers = true; // the rollback makes the browser ask for an offer at once
    this.run("pub", async () => {
      await this.pub.setLocalDescription({ type: "rollback" });
      setTimeout(() => {
        this.holdOffers = false;
        if (this.closed) return;
        this.lastIceRestart = Date.now();
        this.pub.restartIce();
        this.offer();
      }, OFFER_RETRY_MS);
    });
  }

  /**
   * An answer on the publish connection or an offer on the subscribe one.
   * @param {{type: string, pc?: string, sdp: string}} m
   */
  handleDescription(m) {
    if (this.closed) return;
    if (!this.serverReady) {
      this.serverReady = true;
      this.opts.onServerReady?.();
    }
    if (m.type === "answer" && m.pc !== "sub") {
      this.run("pub", async () => {
        if (this.pub.signalingState !== "have-local-offer") return; // a duplicate
        clearTimeout(this.answerTimer);
        await this.pub.setRemoteDescription(remoteDescription({ type: "answer", sdp: m.sdp }));
        void tune(this.pub);
        if (this.offerAgain) this.offer();
      });
    } else if (m.type === "offer" && m.pc !== "pub") {
      this.run("sub", async () => {
        await this.sub.setRemoteDescription(remoteDescription({ type: "offer", sdp: m.sdp }));
        await setLocal(this.sub);
        void tune(this.sub);
        const d = this.sub.localDescription;
        if (d && !this.closed) this.opts.send({ type: "answer", to: SFU_PEER, pc: "sub", sdp: d.sdp });
      });
    }
  }

  /**
   * A trickled candidate from the server. Runs after the description
   * before it, so it never reaches a connection without one.
   * @param {{pc?: string, candidate?: RTCIceCandidateInit|null}} m
   */
  handleCandidate(m) {
    const name = m.pc === "sub" ? "sub" : m.pc === "pub" ? "pub" : null;
    if (!name || this.closed || !m.candidate) return;
    const pc = name === "sub" ? this.sub : this.pub;
    const c = m.candidate;
    this.run(name, async () => {
      if (!pc.remoteDescription) return; // stale: from before a restart
      await pc.addIceCandidate(c);
    });
  }

  /**
   * After signaling came back: resend an unanswered offer; restart ICE on
   * a broken publish connection.
   */
  resync() {
    if (this.closed) return;
    this.sendOffer();
    if (this.pub.connectionState === "failed" || this.pub.connectionState === "disconnected") this.restartIce(true);
  }

  /**
   * Refreshes ICE servers (TURN credentials are time-limited).
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    for (const pc of [this.pub, this.sub]) updateIceServers(pc, iceServers);
  }

  /**
   * Restarts ICE on the publish connection (a new offer with fresh
   * credentials). The subscribe connection is the server's to restart: it
   * is the offerer there.
   * @param {boolean} [force]
   */
  restartIce(force = false) {
    if (this.closed) return;
    const now = Date.now();
    if (!force && now - this.lastIceRestart < ICE_RESTART_INTERVAL_MS) return;
    this.lastIceRestart = now;
    try {
      this.pub.restartIce();
    } catch (err) {
      console.warn("parley: restartIce failed", err);
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.answerTimer);
    clearTimeout(this.restartTimer);
    for (const pc of [this.pub, this.sub]) {
      pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
      for (const u of this.unregisterMusic) u();
      pc.onsignalingstatechange = pc.oniceconnectionstatechange = null;
      try { pc.close(); } catch { /* ignore */ }
    }
  }

  // --- internals ---

  /**
   * @param {"pub"|"sub"} name
   * @param {() => Promise<void>} op
   */
  run(name, op) {
    this.chain[name] = this.chain[name].then(op).catch((err) => {
      if (!this.closed) console.warn(`parley: sfu ${name} negotiation step failed`, err);
    });
  }

  /**
   * @param {"pub"|"sub"} name
   * @param {RTCIceCandidate|null} candidate
   */
  sendCandidate(name, candidate) {
    if (this.closed) return;
    if (candidate === null) {
      this.opts.send({ type: "candidate", to: SFU_PEER, pc: name, candidate: null });
      return;
    }
    if (!candidate.candidate) return; // legacy end-of-candidates marker
    this.opts.send({ type: "candidate", to: SFU_PEER, pc: name, candidate: candidate.toJSON() });
  }

  /** @param {"pub"|"sub"} name */
  stateChanged(name) {
    if (this.closed) return;
    if (name === "pub" && this.pub.connectionState === "failed") this.keepRestarting();
    this.opts.onStateChange();
  }

  keepRestarting() {
    this.restartIce();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.closed && this.pub.connectionState === "failed") this.keepRestarting();
    }, ICE_RESTART_INTERVAL_MS);
  }
}

/** @param {RTCIceServer[]} iceServers */
function newPC(iceServers) {
  try {
    return new RTCPeerConnection({ iceServers });
  } catch (err) {
    console.warn("parley: ICE servers rejected, connecting without them", err);
    return new RTCPeerConnection();
  }
}
