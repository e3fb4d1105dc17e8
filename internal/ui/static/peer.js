// @ts-check
// One RTCPeerConnection to one remote participant, negotiated with the W3C
// "perfect negotiation" pattern
// (https://w3c.github.io/webrtc-pc/#perfect-negotiation-example), so either
// side may renegotiate at any time (a screen share, an ICE restart) and
// colliding offers resolve themselves.

import { register, remoteDescription, setLocal, tune, tuneReceiver } from "./musicmode.js";

/** Minimum time between two ICE restarts of one connection. */
export const ICE_RESTART_INTERVAL_MS = 5000;

/**
 * A negotiated connection whose ICE has not even started checking after
 * this long is stuck. Seen in Chromium after an offer collision: the polite
 * side rolled back, answered, and then never gathered or checked.
 */
export const STUCK_NEW_MS = 4000;

/**
 * The polite peer of a pair is the one whose participant id sorts lower,
 * byte-wise (docs/protocol.md). Ids are ASCII, so JS string order is byte order.
 * @param {string} myId
 * @param {string} theirId
 */
export function isPolite(myId, theirId) {
  return myId < theirId;
}

/**
 * @typedef {"new"|"connecting"|"connected"|"reconnecting"|"failed"} PeerState
 */

/**
 * Maps RTCPeerConnection.connectionState to the tile's data-peer-state.
 * "disconnected" is usually transient (a network blip, a Wi-Fi roam), hence
 * "reconnecting"; "closed" only happens when we tear the tile down anyway.
 * @param {string} connectionState
 * @returns {PeerState}
 */
export function peerStateFor(connectionState) {
  switch (connectionState) {
    case "connecting": return "connecting";
    case "connected": return "connected";
    case "disconnected": return "reconnecting";
    case "failed": return "failed";
    default: return "new";
  }
}

/**
 * The DTLS fingerprint of a session description, or "" if it has none.
 * A different fingerprint in a new offer means the remote side threw its
 * RTCPeerConnection away and started a new one, which cannot be applied to
 * our old connection as a renegotiation.
 * @param {string} sdp
 */
export function fingerprintOf(sdp) {
  const m = /^a=fingerprint:(\S+ \S+)\s*$/m.exec(sdp || "");
  return m ? m[1].toLowerCase() : "";
}

/**
 * @typedef {object} PeerOptions
 * @property {string} id        remote participant id
 * @property {boolean} polite
 * @property {RTCIceServer[]} iceServers
 * @property {(msg: import("./protocol.js").ClientMessage) => boolean} send   sends a signaling message (adds nothing)
 * @property {(peer: Peer, ev: RTCTrackEvent) => void} onTrack
 * @property {(peer: Peer) => void} onStateChange
 * @property {boolean} [debug] log state changes to the console
 */

/** A peer connection plus its negotiation state. */
export class Peer {
  /** @param {PeerOptions} opts */
  constructor(opts) {
    this.id = opts.id;
    this.polite = opts.polite;
    this.opts = opts;
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: opts.iceServers });
    } catch (err) {
      // A malformed ICE server entry must not cost us the call: direct
      // (host/STUN-less) connections still work on a LAN.
      console.warn("parley: ICE servers rejected, connecting without them", err);
      pc = new RTCPeerConnection();
    }
    this.pc = pc;
    // Perfect negotiation bookkeeping (names as in the W3C example).
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    this.closed = false;
    this.lastIceRestart = 0;
    /** Camera/mic senders by kind, so a device can be swapped in without renegotiating. */
    /** @type {{audio?: RTCRtpSender, video?: RTCRtpSender}} */
    this.camSenders = {};
    /** @type {RTCRtpSender|null} */
    this.screenSender = null;
    /** Id of the remote MediaStream that carries their camera and mic. */
    /** @type {string|null} */
    this.camStreamId = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.restartTimer = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.stuckTimer = undefined;
    /** Camera and mic are added (see attachCamera). */
    this.attached = false;

    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await setLocal(pc);
        this.sendDescription();
      } catch (err) {
        console.warn("parley: creating an offer for", this.id, "failed", err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      if (candidate === null) {
        this.opts.send({ type: "candidate", to: this.id, candidate: null });
        return;
      }
      // Legacy end-of-candidates marker (empty string) carries nothing useful.
      if (!candidate.candidate) return;
      this.opts.send({ type: "candidate", to: this.id, candidate: candidate.toJSON() });
    };
    pc.ontrack = (ev) => { tuneReceiver(ev.receiver); this.opts.onTrack(this, ev); };
    // Music mode (musicmode.js) renegotiates to apply its Opus parameters.
    this.unregisterMusic = register(pc, () => pc.dispatchEvent(new Event("negotiationneeded")));
    pc.onsignalingstatechange = () => {
      if (opts.debug) console.debug("parley peer", this.id, "signalingState", pc.signalingState);
      if (pc.signalingState === "stable") this.watchStuck();
    };
    if (opts.debug) {
      const log = (/** @type {string} */ what) => () => console.debug("parley peer", this.id, what, /** @type {any} */ (pc)[what]);
      pc.onicegatheringstatechange = log("iceGatheringState");
      pc.oniceconnectionstatechange = log("iceConnectionState");
    }
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      if (pc.connectionState === "failed") this.scheduleIceRestart();
      this.opts.onStateChange(this);
    };
  }

  /** @returns {PeerState} */
  get state() {
    return peerStateFor(this.pc.connectionState);
  }

  /**
   * Adds our camera and microphone. A kind we have no track for still gets a
   * send-capable transceiver in the same stream: the remote side then learns
   * our camera stream id before any screen share (it tells the two apart by
   * stream), and enabling the device later is a replaceTrack, not a
   * renegotiation.
   * @param {MediaStream} stream
   */
  attachCamera(stream) {
    if (this.attached || this.closed) return;
    this.attached = true;
    for (const kind of /** @type {const} */ (["audio", "video"])) {
      const track = stream.getTracks().find((t) => t.kind === kind);
      this.camSenders[kind] = track
        ? this.pc.addTrack(track, stream)
        : this.pc.addTransceiver(kind, { direction: "sendrecv", streams: [stream] }).sender;
    }
  }

  /**
   * Swaps the camera or microphone track (e.g. permission granted later).
   * @param {"audio"|"video"} kind
   * @param {MediaStreamTrack|null} track
   */
  async replaceCameraTrack(kind, track) {
    const sender = this.camSenders[kind];
    if (!sender) return;
    try {
      await sender.replaceTrack(track);
    } catch (err) {
      console.warn("parley: replaceTrack failed for", this.id, err);
    }
  }

  /**
   * Starts or stops sending a screen share (triggers renegotiation).
   * @param {MediaStreamTrack|null} track
   * @param {MediaStream|null} stream
   */
  setScreen(track, stream) {
    if (this.closed) return;
    if (this.screenSender) {
      try { this.pc.removeTrack(this.screenSender); } catch { /* pc closed */ }
      this.screenSender = null;
    }
    if (track && stream) this.screenSender = this.pc.addTrack(track, stream);
  }

  /**
   * Handles a remote offer or answer (perfect negotiation).
   * @param {{type: "offer"|"answer", sdp: string}} description
   */
  async handleDescription(description) {
    const pc = this.pc;
    try {
      const readyForOffer =
        !this.makingOffer &&
        (pc.signalingState === "stable" || this.isSettingRemoteAnswerPending);
      const offerCollision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;

      this.isSettingRemoteAnswerPending = description.type === "answer";
      await pc.setRemoteDescription(remoteDescription(description)); // rolls back our offer if needed
      this.isSettingRemoteAnswerPending = false;
      if (description.type === "offer") {
        await setLocal(pc);
        this.sendDescription();
      }
      void tune(pc);
    } catch (err) {
      this.isSettingRemoteAnswerPending = false;
      console.warn("parley: applying the", description.type, "from", this.id, "failed", err);
    }
  }

  /**
   * Handles a remote ICE candidate; `null` (end of candidates) is dropped:
   * browsers do not need it to finish connecting.
   * @param {RTCIceCandidateInit|null} candidate
   */
  async handleCandidate(candidate) {
    if (!candidate) return;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      // Candidates for an offer we ignored are expected to fail.
      if (!this.ignoreOffer) console.warn("parley: bad candidate from", this.id, err);
    }
  }

  /**
   * Whether an incoming offer comes from a different remote connection than
   * the one we are talking to (the remote reloaded its peer connection).
   * @param {string} sdp
   */
  isForeignOffer(sdp) {
    const current = this.pc.remoteDescription?.sdp;
    if (!current) return false;
    const a = fingerprintOf(current);
    const b = fingerprintOf(sdp);
    return a !== "" && b !== "" && a !== b;
  }

  /**
   * After signaling comes back: an offer we made while the socket was down
   * was lost, so send it again; a broken connection gets a new ICE session.
   */
  resync() {
    if (this.closed) return;
    const pc = this.pc;
    if (pc.signalingState === "have-local-offer" && pc.localDescription && !this.makingOffer) {
      this.sendDescription();
    }
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      this.restartIce(true);
    }
  }

  /**
   * Refreshes ICE servers (TURN credentials are time-limited).
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    updateIceServers(this.pc, iceServers);
  }

  /**
   * Restarts ICE, at most once per ICE_RESTART_INTERVAL_MS.
   * @param {boolean} [force] skip the rate limit
   */
  restartIce(force = false) {
    if (this.closed) return;
    const now = Date.now();
    if (!force && now - this.lastIceRestart < ICE_RESTART_INTERVAL_MS) return;
    this.lastIceRestart = now;
    try {
      this.pc.restartIce(); // fires negotiationneeded → new offer with fresh credentials
    } catch (err) {
      console.warn("parley: restartIce failed", err);
    }
  }

  /**
   * After each completed negotiation: if ICE is still "new" a while later,
   * restart it (a fresh offer and fresh candidates unstick it).
   */
  watchStuck() {
    clearTimeout(this.stuckTimer);
    this.stuckTimer = setTimeout(() => {
      const pc = this.pc;
      if (this.closed || pc.signalingState !== "stable" || !pc.remoteDescription) return;
      if (pc.iceConnectionState === "new") {
        console.info("parley: ICE to", this.id, "never started; restarting it");
        this.restartIce(true);
      }
    }, this.polite ? STUCK_NEW_MS * 2.5 : STUCK_NEW_MS); // one side first, to avoid another collision
  }

  /** Keeps retrying ICE while the connection stays failed. */
  scheduleIceRestart() {
    this.restartIce();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.closed && this.pc.connectionState === "failed") this.scheduleIceRestart();
    }, ICE_RESTART_INTERVAL_MS);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.stuckTimer);
    const pc = this.pc;
    pc.onnegotiationneeded = pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
    this.unregisterMusic();
    pc.onsignalingstatechange = pc.onicegatheringstatechange = pc.oniceconnectionstatechange = null;
    try { pc.close(); } catch { /* ignore */ }
  }

  // --- internals ---

  sendDescription() {
    const d = this.pc.localDescription;
    // Only offers and answers: perfect negotiation never makes a pranswer.
    if (!d || this.closed || (d.type !== "offer" && d.type !== "answer")) return;
    this.opts.send({ type: d.type, to: this.id, sdp: d.sdp });
  }
}

/**
 * Gives a live connection new ICE servers (fresh TURN credentials), for
 * its next ICE restart.
 * @param {RTCPeerConnection} pc
 * @param {RTCIceServer[]} iceServers
 */
export function updateIceServers(pc, iceServers) {
  try {
    pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
  } catch (err) {
    console.warn("parley: cannot update ICE servers", err);
  }
}
