// @ts-check
// The media paths of a call and the switch between them: one mesh peer
// connection per remote participant (peer.js), or the two connections
// with the server's SFU (sfu.js) once the room is large enough
// (docs/protocol.md, "SFU topology"). The server decides the topology;
// this module carries it out.
//
// Switching never blanks a remote video: each remote's tiles keep showing
// the old path until the new path decodes frames for that participant,
// then swap tracks in place (tile.js Tile.attach), and the old path is
// closed a little later (the other side may still need it).
//
// No DOM: tiles are reached through a TopologyView (tiles.js), and peers
// are made by factories, so jstest/topology.test.mjs runs the switching
// against fake peers.

import { Peer, isPolite } from "./peer.js";
import { isSfuMessage, isPeerMessage } from "./sfu.js";
import { SfuPath, OLD_PATH_LINGER_MS } from "./sfupath.js";
import { placeholderParticipant } from "./protocol.js";
import { newRemote, cameraSource, screenSource, routeMeshTrack, dropMesh } from "./remotes.js";
import { Switcher } from "./switch.js";

/** How long a peer whose signaling dropped keeps its connection and tile. */
export const GONE_GRACE_MS = 20_000;

/**
 * How long an existing member waits for a newcomer's offer before offering
 * itself. Waiting means one offer per pair instead of two colliding ones:
 * perfect negotiation resolves collisions, but Chromium sometimes leaves the
 * rolled-back side's ICE stuck (see peer.js STUCK_NEW_MS).
 */
export const NEWCOMER_OFFER_WAIT_MS = 2500;

/**
 * @typedef {import("./protocol.js").Topology} Topology
 * @typedef {import("./protocol.js").Participant} Participant
 * @typedef {import("./remotes.js").Remote} Remote
 * @typedef {import("./remotes.js").RemoteTile} RemoteTile
 * @typedef {import("./peer.js").PeerState} PeerState
 *
 * @typedef {object} TopologyView  how the media paths reach the page (tiles.js TileView)
 * @property {(p: Participant) => RemoteTile} createTile  a remote's camera tile, added to the page
 * @property {(r: Remote, camera: MediaStream|null, screen: MediaStream|null, state: PeerState) => void} showMedia
 * @property {(r: Remote, state: PeerState) => void} showState  their connection state changed
 * @property {(r: Remote) => void} removeTiles
 * @property {(on: boolean) => void} setLayoutEnabled  SFU mode: tell the server what we draw
 * @property {() => void} layoutReset  say the layout again (the server forgot it)
 * @property {() => void} clearSpeaker  only the SFU hears who speaks
 * @property {() => void} changed       something the page summarises changed
 *
 * @typedef {object} TopologyDeps
 * @property {Map<string, Remote>} remotes            ours; shared with the view
 * @property {Map<string, Participant>} participants  others in the call, as the server last said
 * @property {TopologyView} view
 * @property {(msg: import("./protocol.js").ClientMessage) => boolean} send
 * @property {() => string|null} myId
 * @property {() => {camera: MediaStream|null, screen: MediaStream|null}} local  what we send
 * @property {(opts: import("./peer.js").PeerOptions) => Peer} [newPeer]
 * @property {(opts: import("./sfu.js").SfuOptions) => import("./sfu.js").SfuSession} [newSfu]
 * @property {() => MediaStream} [newStream]
 * @property {boolean} [debug]
 */

/** The remotes' media paths and the switch between mesh and SFU. */
export class MediaPaths {
  /** @param {TopologyDeps} deps */
  constructor(deps) {
    this.d = deps;
    this.remotes = deps.remotes;
    this.view = deps.view;
    this.newPeer = deps.newPeer ?? ((o) => new Peer(o));
    this.newStream = deps.newStream ?? (() => new MediaStream());
    /** Where media should flow now (the server decides: joined/topology). */
    /** @type {Topology} */
    this.current = "mesh";
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.sfuPath = new SfuPath({
      send: deps.send,
      local: deps.local,
      onStreams: (id) => this.onSfuStreams(id),
      onStateChange: () => {
        for (const r of this.remotes.values()) this.update(r);
        this.view.changed();
      },
      onServerReady: () => this.view.layoutReset(),
      onClosed: () => {
        for (const r of this.remotes.values()) {
          r.sfuCam = r.sfuScreen = null;
          if (r.shown === "sfu") this.renderMedia(r);
        }
        this.view.changed();
      },
      newSfu: deps.newSfu,
      debug: deps.debug,
    });
    this.switcher = new Switcher(this);
  }

  /**
   * New ICE servers; live connections get them too (TURN credentials expire).
   * @param {RTCIceServer[]} list
   */
  setIceServers(list) {
    this.iceServers = list;
    for (const r of this.remotes.values()) r.peer?.setIceServers(list);
    this.sfuPath.setIceServers(list);
  }

  // ------------------------------------------------------------ signaling

  /**
   * An offer or answer for one of our connections. The SFU is whoever
   * sends `from: "sfu"` (only the server can); anything else must come
   * from a participant, or it is dropped.
   * @param {import("./protocol.js").OfferMessage|import("./protocol.js").AnswerMessage} m
   */
  handleDescription(m) {
    if (typeof m.sdp !== "string") return;
    if (isSfuMessage(m)) {
      this.sfu?.handleDescription(m);
      return;
    }
    if (!isPeerMessage(m)) return;
    let r = this.remotes.get(m.from);
    if (r?.peer && m.type === "offer" && r.peer.isForeignOffer(m.sdp)) {
      // They replaced their connection to us (e.g. they closed it after a
      // reconnect); an offer from a new connection cannot renegotiate ours.
      this.closeMesh(r);
    }
    if (!r?.peer) {
      // Answers and candidates for connections we do not have are stale.
      // So are mesh offers while the room is on the SFU (sent before the
      // sender heard of the switch).
      if (m.type !== "offer" || this.current !== "mesh") return;
      // An offer can beat participant-joined here (e.g. across our own reconnect).
      if (!r) r = this.add(this.d.participants.get(m.from) ?? placeholderParticipant(m.from), false);
      else this.ensureMeshPeer(r, false);
    }
    const peer = /** @type {Peer} */ (r.peer);
    // Our tracks go in before their offer is applied, so they ride on the
    // m-lines of the offer and our answer carries them: no second round.
    if (m.type === "offer") this.attachLocal(r);
    peer.handleDescription({ type: m.type, sdp: m.sdp });
  }

  /** @param {import("./protocol.js").CandidateMessage} m */
  handleCandidate(m) {
    if (isSfuMessage(m)) {
      this.sfu?.handleCandidate(m);
      return;
    }
    if (!isPeerMessage(m)) return;
    this.remotes.get(m.from)?.peer?.handleCandidate(m.candidate ?? null);
  }

  // -------------------------------------------------------------- remotes

  /**
   * Starts holding a remote participant: a tile, and a path to them.
   * @param {Participant} p
   * @param {boolean} [offer] mesh: add our media now, which makes us offer;
   *   false waits for their offer (or NEWCOMER_OFFER_WAIT_MS)
   * @returns {Remote}
   */
  add(p, offer = true) {
    const r = newRemote(p.id, this.view.createTile(p), this.current);
    this.remotes.set(p.id, r);
    if (this.current === "mesh") this.ensureMeshPeer(r, offer);
    else this.pickUpSfuStreams(r);
    this.renderMedia(r);
    this.update(r);
    return r;
  }

  /** @param {string} id */
  remove(id) {
    const r = this.remotes.get(id);
    if (!r) return;
    this.remotes.delete(id);
    clearTimeout(r.goneTimer);
    clearTimeout(r.swapTimer);
    this.closeMesh(r);
    this.view.removeTiles(r);
    this.sfuPath.forget(id);
    this.switcher.left();
    this.maybeRetireSfu();
    this.view.changed();
  }

  removeAll() {
    for (const id of [...this.remotes.keys()]) this.remove(id);
  }

  /**
   * Their signaling dropped: keep the connection a while, they may resume.
   * @param {Remote} r
   */
  markGone(r) {
    r.gone = true;
    clearTimeout(r.goneTimer);
    r.goneTimer = setTimeout(() => this.remove(r.id), GONE_GRACE_MS);
    this.update(r);
  }

  /** @param {Remote} r */
  clearGone(r) {
    r.gone = false;
    clearTimeout(r.goneTimer);
    r.goneTimer = undefined;
  }

  /**
   * Shows r's connection state; drops r if it was gone and now failed.
   * @param {Remote} r
   */
  update(r) {
    if (this.remotes.get(r.id) !== r) return;
    if (r.gone && this.connectionState(r) === "failed") {
      // Waiting for them was only worth it while media still flowed.
      this.remove(r.id);
      return;
    }
    this.view.showState(r, this.remoteState(r));
  }

  /**
   * connectionState of the connection a path uses for r.
   * @param {Remote} r
   * @param {Topology} path
   */
  pathConnectionState(r, path) {
    if (path === "mesh") return r.peer?.pc.connectionState ?? "closed";
    return this.sfu?.sub.connectionState ?? "closed";
  }

  /** @param {Remote} r */
  connectionState(r) {
    return this.pathConnectionState(r, r.shown);
  }

  /**
   * What r's tile says about its connection: the mesh connection, or in
   * SFU mode the subscribe connection that carries their media.
   * @param {Remote} r
   * @returns {PeerState}
   */
  remoteState(r) {
    if (r.gone) return "reconnecting";
    if (r.shown === "mesh") return r.peer ? r.peer.state : "new";
    return this.sfu ? this.sfu.subState : "new";
  }

  /**
   * Points r's tiles at the path they show.
   * @param {Remote} r
   */
  renderMedia(r) {
    const sharing = this.d.participants.get(r.id)?.state.screen ?? true;
    this.view.showMedia(r, cameraSource(r, r.shown), screenSource(r, r.shown, sharing), this.remoteState(r));
  }

  // ----------------------------------------------------------------- mesh

  /**
   * The mesh connection to r, created if needed.
   * @param {Remote} r
   * @param {boolean} offer add our media (and so offer) now
   * @returns {Peer}
   */
  ensureMeshPeer(r, offer) {
    clearTimeout(r.meshCloseTimer);
    r.meshCloseTimer = undefined;
    if (r.peer && !r.peer.closed) return r.peer;
    const peer = this.newPeer({
      id: r.id,
      polite: isPolite(this.d.myId() ?? "", r.id),
      iceServers: this.iceServers,
      send: this.d.send,
      onTrack: (_p, ev) => {
        if (r.peer === peer && routeMeshTrack(r, ev, this.newStream, () => this.renderMedia(r)) && r.shown === "mesh") this.renderMedia(r);
      },
      onStateChange: () => { if (r.peer === peer) this.onMeshState(r); },
      debug: this.d.debug,
    });
    r.peer = peer;
    clearTimeout(r.attachTimer);
    if (offer) this.attachLocal(r);
    else r.attachTimer = setTimeout(() => this.attachLocal(r), NEWCOMER_OFFER_WAIT_MS);
    return peer;
  }

  /**
   * Adds our camera, mic and any screen share to a mesh connection (once).
   * @param {Remote} r
   */
  attachLocal(r) {
    clearTimeout(r.attachTimer);
    r.attachTimer = undefined;
    const peer = r.peer;
    const { camera, screen } = this.d.local();
    if (!peer || peer.attached || peer.closed || !camera) return;
    peer.attachCamera(camera);
    const screenTrack = screen?.getVideoTracks()[0];
    if (screenTrack && screen) peer.setScreen(screenTrack, screen);
  }

  /** @param {Remote} r */
  onMeshState(r) {
    const cs = r.peer?.pc.connectionState;
    if (r.shown !== "mesh" && this.current !== "mesh" && (cs === "failed" || cs === "closed")) {
      // A lingering old path that broke: nobody needs it any more.
      this.closeMesh(r);
    }
    this.update(r);
    this.view.changed();
  }

  /** @param {Remote} r */
  closeMesh(r) {
    dropMesh(r);
    if (r.shown === "mesh") this.renderMedia(r);
  }

  /** @param {Remote} r */
  retireMesh(r) {
    clearTimeout(r.meshCloseTimer);
    r.meshCloseTimer = undefined;
    if (!r.peer) return;
    if (r.peer.pc.connectionState !== "connected") {
      this.closeMesh(r);
      return;
    }
    r.meshCloseTimer = setTimeout(() => {
      r.meshCloseTimer = undefined;
      if (r.shown !== "mesh") this.closeMesh(r);
    }, OLD_PATH_LINGER_MS);
  }

  // ------------------------------------------------------------------ SFU

  /** The SFU connections, while in SFU mode or lingering after it. */
  get sfu() { return this.sfuPath.session; }

  /** Closes the SFU connections at once. */
  closeSfu() { this.sfuPath.close(); }

  /**
   * The server lost our SFU connections and made new ones: start ours afresh.
   */
  restartSfu() {
    if (this.current !== "sfu") return;
    this.sfuPath.close();
    this.sfuPath.ensure();
  }

  /** Closes the SFU connections once no tile uses them (after a grace). */
  maybeRetireSfu() {
    if (this.current === "sfu" || [...this.remotes.values()].some((r) => r.shown === "sfu")) return;
    this.sfuPath.retire(() => this.current !== "sfu");
  }

  /**
   * Forwarded streams changed for a participant.
   * @param {string} id
   */
  onSfuStreams(id) {
    const r = this.remotes.get(id);
    if (!r) return; // picked up when they get a tile
    this.pickUpSfuStreams(r);
    if (r.shown === "sfu") this.renderMedia(r);
  }

  /** @param {Remote} r */
  pickUpSfuStreams(r) {
    r.sfuCam = this.sfuPath.stream(r.id, "camera");
    r.sfuScreen = this.sfuPath.stream(r.id, "screen");
  }

  // ------------------------------------------------------------ switching

  /**
   * Moves media to the given path (switch.js).
   * @param {Topology} to
   */
  apply(to) { this.switcher.apply(to); }

  /** The last topology switch, copied (tests read it). */
  switchReport() { return this.switcher.report(); }

  // ------------------------------------------------------- local devices

  /**
   * A device granted after joining: onto every connection.
   * @param {"audio"|"video"} kind
   * @param {MediaStreamTrack} track
   * @param {MediaStream} camera the stream it was added to
   */
  addDeviceTrack(kind, track, camera) {
    for (const r of this.remotes.values()) r.peer?.replaceCameraTrack(kind, track);
    if (this.current === "sfu") this.sfu?.publishCamera(camera); // a new transceiver: renegotiates
  }

  /**
   * Starts (track and stream) or stops (nulls) sending a screen share.
   * @param {MediaStreamTrack|null} track
   * @param {MediaStream|null} stream
   */
  setScreen(track, stream) {
    for (const r of this.remotes.values()) if (r.peer?.attached) r.peer.setScreen(track, stream);
    // A lingering session (after a switch to the mesh) is left alone:
    // the server no longer takes offers for it.
    if (this.current === "sfu") this.sfu?.setScreen(track, stream);
  }
}
