// Entry point of the call page: renders the call UI into #call-app and runs
// the call — signaling (signaling.js), local devices (media.js), chat
// (chat.js), and the media paths: one peer connection per remote
// participant in a full mesh (peer.js), or two connections with the
// server's SFU (sfu.js) once the room is large enough. The contract with
// the server is docs/protocol.md.
//
// Switching topology never blanks a remote video: each remote tile keeps
// showing the old path until the new path decodes frames for that
// participant, then swaps tracks in place (ui.js Tile.attach), and the old
// path is closed a little later (the other side may still need it).

import { Signaling, socketURL } from "./signaling.js";
import { Peer, isPolite } from "./peer.js";
import { SfuSession, parseStreamId, isSfuMessage, isPeerMessage } from "./sfu.js";
import { LayoutReporter } from "./layout.js";
import { getLocalMedia, getDeviceTrack, describeMediaError, canShareScreen, getScreen } from "./media.js";
import { buildLayout, renderPeople, Tile, showToast, showNotice, icon, duplicateNames, nameKey } from "./ui.js";
import { Chat } from "./chat.js";
import { signalText, peerStatusText, callSummary, shortcutFor, hasTurnServer } from "./status.js";

/** How long a peer whose signaling dropped keeps its connection and tile. */
const GONE_GRACE_MS = 20_000;

/**
 * How long an existing member waits for a newcomer's offer before offering
 * itself. Waiting means one offer per pair instead of two colliding ones:
 * perfect negotiation resolves collisions, but Chromium sometimes leaves the
 * rolled-back side's ICE stuck (see peer.js STUCK_NEW_MS).
 */
const NEWCOMER_OFFER_WAIT_MS = 2500;

/** How often a switching tile checks whether the new path decodes frames. */
const SWAP_POLL_MS = 100;

/**
 * A switch gives up waiting for the new path after this long and swaps
 * anyway (the old path is going away regardless).
 */
const SWITCH_DEADLINE_MS = 8000;

/**
 * A participant who sends no video counts as switched once the new path
 * has their stream, or after this long.
 */
const NO_VIDEO_GRACE_MS = 1500;

/**
 * After we stopped showing a path we keep it open this long: the other
 * side may not have switched yet and still shows what we send on it.
 */
const OLD_PATH_LINGER_MS = 5000;

/**
 * @typedef {import("./ui.js").Participant} Participant
 * @typedef {import("./ui.js").MediaState} MediaState
 * @typedef {"mesh"|"sfu"} Topology
 *
 * @typedef {object} Remote  everything we hold for one remote participant
 * @property {string} id
 * @property {Tile} tile                 camera tile
 * @property {Tile|null} screenTile      screen-share tile
 * @property {Topology} shown            the path the tiles show
 * @property {boolean} gone              their signaling dropped; waiting for them
 * @property {ReturnType<typeof setTimeout>|undefined} goneTimer
 * @property {Peer|null} peer            mesh connection (while the mesh is used or lingers)
 * @property {MediaStream|null} meshCam  their camera+mic stream on the mesh connection
 * @property {Map<string, MediaStream>} meshScreens  their screen streams on the mesh connection
 * @property {MediaStream|null} looseStream  mesh tracks that arrived without a stream id
 * @property {ReturnType<typeof setTimeout>|undefined} attachTimer  pending deferred attach
 * @property {ReturnType<typeof setTimeout>|undefined} meshCloseTimer  lingering mesh connection
 * @property {MediaStream|null} sfuCam     `ID:camera` on the subscribe connection
 * @property {MediaStream|null} sfuScreen  `ID:screen` on the subscribe connection
 * @property {ReturnType<typeof setTimeout>|undefined} swapTimer  waiting for the new path
 * @property {{track: MediaStreamTrack, base: number}|null} swapProbe  frames decoded when first seen
 *
 * @typedef {object} SwitchRecord  how the last topology switch went, for tests and diagnostics
 * @property {Topology} from
 * @property {Topology} to
 * @property {number} startedAt       Date.now()
 * @property {string[]} pending       participants whose tiles had media on the old path
 * @property {Record<string, number|null>} perPeer  ms between their last old-path frame and first new-path frame (null: no video to measure)
 * @property {number|null} maxGapMs
 * @property {boolean} done           every pending participant switched
 */

class Call {
  /** @param {HTMLElement} root */
  constructor(root) {
    const d = root.dataset;
    this.channelId = d.channelId || "";
    this.userId = d.userId || "";
    this.userName = d.userName || "You";
    this.ui = buildLayout(root, { channelName: d.channelName || "" });

    /** @type {"lobby"|"call"} */
    this.view = "lobby";
    /** Waiting for getUserMedia after pressing Join. */
    this.joining = false;
    /** The participant wants to be in the call (survives reconnects). */
    this.wantInCall = false;
    /** Our participant id while joined; sent as `resume` after a reconnect. */
    /** @type {string|null} */
    this.myId = null;
    /** The secret from joined that proves our resume of myId (never shown). */
    /** @type {string|null} */
    this.resumeToken = null;
    /** Per-socket flags, reset when the socket closes. */
    this.helloSeen = false;
    this.joinSent = false;
    /** Restarted the socket once because the server refused a second join on it. */
    this.restartedForJoin = false;
    this.helloCount = 0;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.hasTurn = false;
    this.offlineReason = "";
    /** Others in the call, as the server last told us. */
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {Map<string, Remote>} */
    this.remotes = new Map();
    /** @type {MediaState} */
    this.state = { audio: false, video: false, screen: false, hand: false };
    /** Camera+mic stream; exists (maybe without tracks) while in the call. */
    /** @type {MediaStream|null} */
    this.localStream = null;
    /** @type {MediaStream|null} */
    this.screenStream = null;
    /** @type {Tile|null} */
    this.localTile = null;
    /** @type {Tile|null} */
    this.localScreenTile = null;
    this.soundBlocked = false;

    /** Where media should flow now (the server decides: joined/topology). */
    /** @type {Topology} */
    this.topology = "mesh";
    /** Connections with the SFU (while in SFU mode, or lingering after it). */
    /** @type {SfuSession|null} */
    this.sfu = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.sfuCloseTimer = undefined;
    /** Forwarded streams by id (`ID:camera`, `ID:screen`), also for participants we do not know yet. */
    /** @type {Map<string, MediaStream>} */
    this.sfuStreams = new Map();
    /** @type {SwitchRecord|null} */
    this.lastSwitch = null;
    /** Active speaker (server's `speaker`), "" = nobody. */
    this.speaker = "";
    /** The remote shown large in spotlight layout: the last one who spoke. */
    this.spotlit = "";
    /** How many `speaker` messages arrived (diagnostics; window.parley.state). */
    this.speakerMessages = 0;

    this.sig = new Signaling(socketURL(location, this.channelId), {
      onMessage: (m) => this.onMessage(m),
      onState: () => this.render(),
      onClose: (info) => this.onSocketClosed(info),
    });
    this.sig.debug = new URLSearchParams(location.search).has("debug");
    this.chat = new Chat(this.ui, {
      channelId: this.channelId,
      myUserId: this.userId,
      send: (text) => this.sig.send({ type: "chat", text }),
    });
    this.layout = new LayoutReporter((tiles) => this.isJoined() && this.sig.send({ type: "layout", tiles }));

    this.bindControls();
    this.render();
  }

  start() {
    this.sig.connect();
    this.chat.loadHistory();
  }

  // ---------------------------------------------------------------- signaling

  /** @param {any} m */
  onMessage(m) {
    switch (m.type) {
      case "hello": return this.onHello(m);
      case "joined": return this.onJoined(m);
      case "participant-joined": return this.onParticipantJoined(m.participant);
      case "participant-left": return this.onParticipantLeft(m.id, m.reason);
      case "participant-updated": return this.onParticipantUpdated(m.participant);
      case "offer":
      case "answer": return this.onDescription(m);
      case "candidate": return this.onCandidate(m);
      case "topology": return this.onTopology(m.topology);
      case "speaker": return this.onSpeaker(m.id);
      case "ice-servers": return this.setIceServers(m.iceServers);
      case "sfu-restart": return this.restartSfu();
      case "chat": return this.chat.add(m.message);
      case "error": return this.onError(m);
      case "pong": return; // any message proves the server is alive
      default: return; // unknown types are ignored (protocol.md, Versioning)
    }
  }

  /** @param {any} m */
  onHello(m) {
    this.helloSeen = true;
    this.joinSent = false;
    this.offlineReason = "";
    this.helloCount++;
    this.setIceServers(m.iceServers);
    this.participants.clear();
    for (const p of asParticipants(m.participants)) {
      // After a reconnect the server may still list our old self.
      if (p.id !== this.myId) this.participants.set(p.id, p);
    }
    // Messages posted while we were away: fetch again (dedupe by id).
    if (this.helloCount > 1) this.chat.loadHistory();
    this.maybeSendJoin();
    this.render();
  }

  /**
   * New ICE servers (hello, or the server's ice-servers refresh). TURN
   * credentials are time-limited: live connections get the fresh ones too,
   * so an ICE restart on a long call still authenticates.
   * @param {any} list
   */
  setIceServers(list) {
    this.iceServers = Array.isArray(list) ? list : [];
    this.hasTurn = hasTurnServer(this.iceServers);
    for (const r of this.remotes.values()) r.peer?.setIceServers(this.iceServers);
    this.sfu?.setIceServers(this.iceServers);
  }

  /** Sends join once the socket is ready, media is settled and we want in. */
  maybeSendJoin() {
    if (!this.wantInCall || this.joining || !this.helloSeen || this.joinSent) return;
    /** @type {any} */
    const msg = { type: "join", state: { ...this.state } };
    if (this.myId) {
      msg.resume = this.myId;
      if (this.resumeToken) msg.resumeToken = this.resumeToken;
    }
    if (this.sig.send(msg)) this.joinSent = true;
  }

  /** @param {any} m */
  onJoined(m) {
    const you = m.you;
    if (!you || typeof you.id !== "string") return;
    const previous = this.myId;
    this.myId = you.id;
    this.resumeToken = typeof m.resumeToken === "string" ? m.resumeToken : null;
    this.restartedForJoin = false;
    if (previous && previous !== you.id) {
      // We could not reclaim our id: to everyone else we are a newcomer, so
      // every old connection is useless to them. Start over.
      for (const id of [...this.remotes.keys()]) this.removeRemote(id);
      this.closeSfu();
    }
    this.participants.clear();
    for (const p of asParticipants(m.participants)) if (p.id !== this.myId) this.participants.set(p.id, p);

    // Reconcile connections kept across a signaling outage (protocol.md,
    // Reconnecting): keep peers that are listed, and unlisted ones whose media
    // still flows (they are probably reconnecting too); close the rest.
    for (const [id, r] of [...this.remotes]) {
      const p = this.participants.get(id);
      if (p) {
        this.clearGone(r);
        r.tile.setName(p.name, p.username);
        r.tile.setMedia(p.state);
        r.peer?.resync();
        this.updateRemote(r);
      } else {
        const cs = this.connectionState(r);
        if (cs === "connected" || cs === "connecting") this.markGone(r);
        else this.removeRemote(id);
      }
    }
    this.setView("call");
    // The server gives every join (a resume too) new SFU connections, so
    // ours from before the outage are dead.
    if (this.sfu) this.closeSfu();
    this.applyTopology(m.topology === "sfu" ? "sfu" : "mesh");
    for (const p of this.participants.values()) if (!this.remotes.has(p.id)) this.createRemote(p);
    // An offer of ours may have been lost with the old socket; the server
    // forgot our layout with it.
    this.sfu?.resync();
    this.layout.reset();
    // A mute toggled between sending join and getting joined was refused
    // (not-joined); make sure the others see what we really send.
    const st = you.state || {};
    if (["audio", "video", "screen"].some((k) => !!st[k] !== this.state[k])) this.sendUpdate();
    this.render();
  }

  /** @param {any} raw */
  onParticipantJoined(raw) {
    const p = asParticipants([raw])[0];
    if (!p || p.id === this.myId) return;
    this.participants.set(p.id, p);
    if (this.isJoined()) {
      const r = this.remotes.get(p.id);
      if (r) {
        // They resumed: the connection we kept is still theirs.
        this.clearGone(r);
        r.tile.setName(p.name, p.username);
        r.tile.setMedia(p.state);
        this.updateRemote(r);
      } else {
        // Mesh: they are the newcomer and will offer (they create
        // connections to everyone in their joined.participants); we answer.
        this.createRemote(p, false);
      }
    }
    this.renderSpotlight();
    this.render();
  }

  /**
   * @param {string} id
   * @param {string} reason
   */
  onParticipantLeft(id, reason) {
    if (typeof id !== "string" || id === this.myId) return;
    this.participants.delete(id);
    const r = this.remotes.get(id);
    if (r) {
      const cs = this.connectionState(r);
      const lostSignaling = reason === "disconnected" || reason === "timeout";
      if (lostSignaling && cs !== "failed" && cs !== "closed") this.markGone(r);
      else this.removeRemote(id); // "left", "replaced", or nothing left to keep
    }
    this.renderSpotlight();
    this.render();
  }

  /** @param {any} raw */
  onParticipantUpdated(raw) {
    const p = asParticipants([raw])[0];
    if (!p || p.id === this.myId) return;
    this.participants.set(p.id, p);
    const r = this.remotes.get(p.id);
    if (r) {
      r.tile.setName(p.name, p.username);
      r.tile.setMedia(p.state);
      r.screenTile?.setName(p.name, p.username);
      if (!p.state.screen) r.meshScreens.clear();
      this.renderScreen(r);
    }
    this.render();
  }

  /** @param {any} m */
  onDescription(m) {
    if (!this.isJoined() || typeof m.sdp !== "string") return;
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
      if (m.type !== "offer" || this.topology !== "mesh") return;
      // An offer can beat participant-joined here (e.g. across our own
      // reconnect).
      if (!r) r = this.createRemote(this.participants.get(m.from) ?? placeholderParticipant(m.from), false);
      else this.ensureMeshPeer(r, false);
    }
    const peer = /** @type {Peer} */ (r.peer);
    // Our tracks go in before their offer is applied, so they ride on the
    // m-lines of the offer and our answer carries them: no second round.
    if (m.type === "offer") this.attachLocal(r);
    peer.handleDescription({ type: m.type, sdp: m.sdp });
  }

  /** @param {any} m */
  onCandidate(m) {
    if (!this.isJoined()) return;
    if (isSfuMessage(m)) {
      this.sfu?.handleCandidate(m);
      return;
    }
    if (!isPeerMessage(m)) return;
    this.remotes.get(m.from)?.peer?.handleCandidate(m.candidate ?? null);
  }

  /** @param {any} m */
  onError(m) {
    const text = typeof m.message === "string" && m.message
      ? m.message
      : `The server refused a message (${m.code || "unknown error"}).`;
    if (m.ref === "chat") return this.chat.serverError(text);
    if (m.ref === "layout") {
      // Sent while the server was still setting up our SFU connections
      // (or just after leaving the SFU); onServerReady sends it again.
      console.info("parley:", text);
      return;
    }
    if (m.code === "unknown-peer") {
      // A peer left while our offer/candidate was in flight: expected, harmless.
      console.info("parley:", text);
      return;
    }
    if (this.sfu && ["offer", "answer", "candidate"].includes(m.ref)) {
      // Most likely about the SFU connections (mesh messages fail with
      // unknown-peer), and the two sides recover by themselves: a refused
      // answer makes the server offer again; a refused offer is retried.
      console.info("parley:", text);
      if (m.ref === "offer" && this.topology === "sfu") this.sfu.offerRefused();
      return;
    }
    if (m.ref === "join") {
      if (m.code === "already-joined" && !this.restartedForJoin) {
        // The server keeps one join per socket; rejoining after a leave on
        // the same socket needs a fresh one (maybeSendJoin runs on its hello).
        this.restartedForJoin = true;
        this.sig.restart();
        return;
      }
      if (this.myId && m.code === "invalid") {
        // Our resume id was refused: join as a newcomer instead.
        for (const id of [...this.remotes.keys()]) this.removeRemote(id);
        this.closeSfu();
        this.myId = null;
        this.resumeToken = null;
        this.joinSent = false;
        this.maybeSendJoin();
        return;
      }
      showToast(this.ui, `Could not join the call: ${text}`);
      this.teardown();
      return;
    }
    if (m.code === "not-joined" && ["offer", "answer", "candidate", "update", "layout"].includes(m.ref)) {
      // Raced with a leave or a reconnect; the next join resends our state.
      console.info("parley:", text);
      return;
    }
    showToast(this.ui, text);
  }

  /** @param {{everOpened: boolean, failures: number, code: number}} info */
  onSocketClosed(info) {
    this.helloSeen = false;
    this.joinSent = false;
    // Closes that reconnecting cannot fix (docs/protocol.md, close codes).
    const final = {
      4001: "you are signed out (logged out here or elsewhere). Log in again, then reload this page.",
      4003: "you were removed from this channel.",
      4004: "this channel was deleted.",
    }[/** @type {4001|4003|4004} */ (info.code)];
    if (final) {
      this.teardown();
      this.offlineReason = final;
      this.sig.stop("offline");
      this.render();
      return;
    }
    // The peer connections stay up: media flows directly between browsers
    // (mesh) or through the SFU, which does not depend on this socket.
    if (info.failures === 2 || (info.failures > 0 && info.failures % 10 === 0)) this.diagnose();
    this.render();
  }

  /**
   * The upgrade keeps failing. Browsers hide the HTTP status of a refused
   * WebSocket upgrade, so ask the REST API, which applies the same checks.
   */
  async diagnose() {
    let status = 0;
    try {
      const res = await fetch(`/api/channels/${encodeURIComponent(this.channelId)}/messages`, { credentials: "same-origin" });
      status = res.status;
    } catch {
      return; // network down: keep retrying
    }
    const reasons = {
      401: "you are signed out. Log in again, then reload this page.",
      403: "you are not a member of this channel.",
      404: "this channel does not exist any more.",
    };
    const reason = reasons[/** @type {401|403|404} */ (status)];
    if (!reason) return;
    this.offlineReason = reason;
    this.sig.stop("offline");
    this.render();
  }

  // --------------------------------------------------------------- topology

  /** @param {unknown} t */
  onTopology(t) {
    if (!this.isJoined() || (t !== "mesh" && t !== "sfu")) return;
    this.applyTopology(t);
    this.render();
  }

  /**
   * Moves media to the given path. Tiles keep showing the old path until
   * the new one decodes frames for them (see watchSwap).
   * @param {Topology} to
   */
  applyTopology(to) {
    const from = this.topology;
    this.topology = to;
    this.layout.setEnabled(to === "sfu");
    if (to === "sfu") {
      // The server retires SFU connections when the room goes back to the
      // mesh and makes new ones when it comes back: a lingering session of
      // ours has nobody left on the other end.
      if (from !== "sfu" && this.sfu) this.closeSfu();
      this.ensureSfu();
    } else {
      this.maybeRetireSfu();
      // Only the SFU hears who speaks; a highlight from it would go stale.
      this.showSpeaker("");
    }
    if (from === to) return;

    /** @type {string[]} */
    const pending = [];
    for (const r of this.remotes.values()) {
      if (r.shown === to) continue; // the path lingered and is still in use
      if (to === "mesh") this.ensureMeshPeer(r, !isPolite(/** @type {string} */ (this.myId), r.id));
      else this.pickUpSfuStreams(r);
      if (this.showsMedia(r)) {
        pending.push(r.id);
        this.watchSwap(r);
      } else {
        // Nothing on the old path worth waiting for.
        this.swap(r);
      }
    }
    if (this.remotes.size > 0) {
      this.lastSwitch = { from, to, startedAt: Date.now(), pending, perPeer: {}, maxGapMs: null, done: pending.length === 0 };
    }
    this.renderSpotlight();
  }

  /**
   * Whether r's tiles show media that is still arriving on their path.
   * @param {Remote} r
   */
  showsMedia(r) {
    if (!r.tile.source || r.tile.source.getTracks().length === 0) return false;
    return this.pathConnectionState(r, r.shown) === "connected";
  }

  /**
   * A switching tile polls until the path the room moved to decodes
   * frames for this participant, then swaps.
   * @param {Remote} r
   */
  watchSwap(r) {
    if (r.swapTimer !== undefined) return;
    const tick = async () => {
      const target = this.topology;
      let ready = false;
      try {
        ready = await this.pathReady(r, target);
      } catch (err) {
        console.warn("parley: checking the new media path failed", err);
      }
      r.swapTimer = undefined;
      if (this.remotes.get(r.id) !== r || r.shown === this.topology) return;
      const late = Date.now() - (this.lastSwitch?.startedAt ?? 0) > SWITCH_DEADLINE_MS;
      if (target === this.topology && (ready || late)) {
        if (!ready) console.info("parley: no media from", r.id, "on the", target, "path yet; switching anyway");
        this.swap(r);
      } else {
        r.swapTimer = setTimeout(tick, SWAP_POLL_MS);
      }
    };
    r.swapTimer = setTimeout(tick, 0);
  }

  /**
   * Whether `path` is producing media for r: its video track decoded new
   * frames since we first looked (or, for someone without video, their
   * stream is there).
   * @param {Remote} r
   * @param {Topology} path
   */
  async pathReady(r, path) {
    const cam = this.cameraSource(r, path);
    if (!cam) return false;
    const sendsVideo = this.participants.get(r.id)?.state.video ?? true;
    const track = cam.getVideoTracks().find((t) => t.readyState === "live");
    if (!sendsVideo || !track) {
      if (sendsVideo) return false;
      const waited = Date.now() - (this.lastSwitch?.startedAt ?? 0);
      return cam.getTracks().length > 0 || waited > NO_VIDEO_GRACE_MS;
    }
    const pc = path === "mesh" ? r.peer?.pc : this.sfu?.sub;
    const receiver = pc?.getReceivers().find((x) => x.track === track);
    if (!receiver) return false;
    let frames = 0;
    (await receiver.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    if (!r.swapProbe || r.swapProbe.track !== track) {
      r.swapProbe = { track, base: frames };
      return false;
    }
    return frames > r.swapProbe.base;
  }

  /**
   * Shows the current topology's path on r's tiles, measures the gap, and
   * retires the old path.
   * @param {Remote} r
   */
  swap(r) {
    const from = r.shown;
    const to = this.topology;
    if (from === to) return;
    clearTimeout(r.swapTimer);
    r.swapTimer = undefined;
    r.swapProbe = null;
    const lastOld = r.tile.lastFrameAt;
    const rec = this.lastSwitch;
    const measured = !!rec && rec.to === to && rec.pending.includes(r.id) && !(r.id in rec.perPeer);
    r.shown = to;
    this.renderMedia(r);
    this.updateRemote(r);
    if (measured) {
      // Camera off: black frames on the mesh, nothing from the SFU; no
      // picture to pause.
      const sendsVideo = this.participants.get(r.id)?.state.video ?? true;
      if (!lastOld || !sendsVideo) this.recordGap(rec, r.id, null);
      else r.tile.nextFrame(3000).then((t) => this.recordGap(rec, r.id, Math.round((t ?? performance.now()) - lastOld)));
    }
    if (from === "mesh") this.retireMesh(r);
    else this.maybeRetireSfu();
  }

  /**
   * @param {SwitchRecord} rec
   * @param {string} id
   * @param {number|null} gap
   */
  recordGap(rec, id, gap) {
    rec.perPeer[id] = gap;
    const gaps = Object.values(rec.perPeer).filter((g) => typeof g === "number");
    rec.maxGapMs = gaps.length ? Math.max(.../** @type {number[]} */ (gaps)) : null;
    rec.done = rec.pending.every((p) => p in rec.perPeer || !this.remotes.has(p));
    if (gap !== null) console.info(`parley: ${rec.from} → ${rec.to} for ${id}: video paused ${gap} ms`);
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

  /** @param {Remote} r */
  closeMesh(r) {
    clearTimeout(r.meshCloseTimer);
    clearTimeout(r.attachTimer);
    r.meshCloseTimer = r.attachTimer = undefined;
    r.peer?.close();
    r.peer = null;
    r.meshCam = null;
    r.looseStream = null;
    r.meshScreens.clear();
    if (r.shown === "mesh") this.renderMedia(r);
  }

  /** Closes the SFU connections once no tile uses them (after a grace). */
  maybeRetireSfu() {
    if (!this.sfu || this.topology === "sfu" || this.sfuCloseTimer !== undefined) return;
    if ([...this.remotes.values()].some((r) => r.shown === "sfu")) return;
    this.sfuCloseTimer = setTimeout(() => {
      this.sfuCloseTimer = undefined;
      if (this.topology !== "sfu") this.closeSfu();
    }, OLD_PATH_LINGER_MS);
  }

  /**
   * The server lost our SFU connections (they failed, e.g. after a network
   * outage) and made new ones: start ours afresh; its offer follows.
   */
  restartSfu() {
    if (this.topology !== "sfu") return;
    this.closeSfu();
    this.ensureSfu();
  }

  /** Creates the SFU connections (or keeps lingering ones) and publishes. */
  ensureSfu() {
    clearTimeout(this.sfuCloseTimer);
    this.sfuCloseTimer = undefined;
    if (!this.sfu) {
      this.sfu = new SfuSession({
        iceServers: this.iceServers,
        send: (msg) => this.sig.send(msg),
        onTrack: (ev) => this.onSfuTrack(ev),
        onStateChange: () => this.onSfuState(),
        // A layout sent before the server set up our connections was
        // refused; say it again now that it listens.
        onServerReady: () => this.layout.reset(),
        debug: this.sig.debug,
      });
    }
    this.publish();
  }

  /** Puts our camera, microphone and screen on the publish connection. */
  publish() {
    if (!this.sfu) return;
    if (this.localStream) this.sfu.publishCamera(this.localStream);
    const screen = this.screenStream?.getVideoTracks()[0];
    if (screen && this.screenStream && !this.sfu.senders.screen) this.sfu.setScreen(screen, this.screenStream);
  }

  closeSfu() {
    clearTimeout(this.sfuCloseTimer);
    this.sfuCloseTimer = undefined;
    const s = this.sfu;
    if (!s) return;
    this.sfu = null;
    s.close();
    this.sfuStreams.clear();
    for (const r of this.remotes.values()) {
      r.sfuCam = r.sfuScreen = null;
      if (r.shown === "sfu") this.renderMedia(r);
    }
    this.render();
  }

  /**
   * A forwarded track: its stream id says whose and which source.
   * @param {RTCTrackEvent} ev
   */
  onSfuTrack(ev) {
    const stream = ev.streams[0];
    if (!stream || !parseStreamId(stream.id)) return;
    if (this.sfuStreams.get(stream.id) !== stream) {
      this.sfuStreams.set(stream.id, stream);
      // The server reuses transceivers: a track can move to another
      // participant's stream, and streams lose tracks on renegotiation.
      const changed = () => this.onSfuStreamChanged(stream);
      stream.addEventListener("addtrack", changed);
      stream.addEventListener("removetrack", changed);
    }
    this.onSfuStreamChanged(stream);
  }

  /** @param {MediaStream} stream */
  onSfuStreamChanged(stream) {
    if (this.sfuStreams.get(stream.id) !== stream) return;
    const sid = parseStreamId(stream.id);
    const r = sid && this.remotes.get(sid.participant);
    if (!r) return; // picked up when they get a tile (pickUpSfuStreams)
    this.pickUpSfuStreams(r);
    if (r.shown === "sfu") this.renderMedia(r);
  }

  /** @param {Remote} r */
  pickUpSfuStreams(r) {
    r.sfuCam = this.sfuStreams.get(`${r.id}:camera`) ?? null;
    r.sfuScreen = this.sfuStreams.get(`${r.id}:screen`) ?? null;
  }

  onSfuState() {
    for (const r of this.remotes.values()) this.updateRemote(r);
    this.render();
  }

  // ------------------------------------------------------------------ peers

  isJoined() {
    return this.myId !== null && this.view === "call";
  }

  /**
   * @param {Participant} p
   * @param {boolean} [offer] mesh: add our media now, which makes us offer;
   *   false waits for their offer (or NEWCOMER_OFFER_WAIT_MS)
   * @returns {Remote}
   */
  createRemote(p, offer = true) {
    const tile = new Tile({ id: p.id, name: p.name, username: p.username, kind: "camera", local: false });
    tile.setMedia(p.state);
    tile.onPlayBlocked = () => this.onSoundBlocked();
    this.ui.tiles.append(tile.el);
    /** @type {Remote} */
    const r = {
      id: p.id, tile, screenTile: null, shown: this.topology, gone: false, goneTimer: undefined,
      peer: null, meshCam: null, meshScreens: new Map(), looseStream: null, attachTimer: undefined, meshCloseTimer: undefined,
      sfuCam: null, sfuScreen: null, swapTimer: undefined, swapProbe: null,
    };
    this.remotes.set(p.id, r);
    this.layout.observe(tile.video, p.id, "camera");
    if (this.topology === "mesh") this.ensureMeshPeer(r, offer);
    else this.pickUpSfuStreams(r);
    this.renderMedia(r);
    tile.setSpeaking(this.speaker === p.id);
    this.updateRemote(r);
    return r;
  }

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
    const peer = new Peer({
      id: r.id,
      polite: isPolite(/** @type {string} */ (this.myId), r.id),
      iceServers: this.iceServers,
      send: (msg) => this.sig.send(msg),
      onTrack: (_p, ev) => { if (r.peer === peer) this.onMeshTrack(r, ev); },
      onStateChange: () => { if (r.peer === peer) this.onMeshState(r); },
      debug: this.sig.debug,
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
    if (!peer || peer.attached || peer.closed || !this.localStream) return;
    peer.attachCamera(this.localStream);
    const screenTrack = this.screenStream?.getVideoTracks()[0];
    if (screenTrack && this.screenStream) peer.setScreen(screenTrack, this.screenStream);
  }

  /** @param {Remote} r */
  onMeshState(r) {
    const peer = r.peer;
    if (!peer) return;
    const cs = peer.pc.connectionState;
    if (r.shown !== "mesh" && this.topology !== "mesh" && (cs === "failed" || cs === "closed")) {
      // A lingering old path that broke: nobody needs it any more.
      this.closeMesh(r);
    }
    this.updateRemote(r);
    this.render();
  }

  /**
   * Routes a mesh track to the camera or a screen stream. The sender puts
   * camera+mic in one MediaStream and a screen share in another; the first
   * stream we see from a peer is the camera (peer.js announces it as soon
   * as the connection exists, even without devices).
   * @param {Remote} r
   * @param {RTCTrackEvent} ev
   */
  onMeshTrack(r, ev) {
    const peer = /** @type {Peer} */ (r.peer);
    let stream = ev.streams[0];
    if (!stream) {
      // No stream id (a minimal native client): treat as camera/mic.
      r.looseStream ??= new MediaStream();
      r.looseStream.addTrack(ev.track);
      stream = r.looseStream;
    }
    if (peer.camStreamId === null) peer.camStreamId = stream.id;
    if (stream.id === peer.camStreamId) {
      r.meshCam = stream;
    } else {
      if (ev.track.kind !== "video") return; // screen audio is not part of v1
      if (!r.meshScreens.has(stream.id)) {
        const s = stream;
        const gone = () => {
          if (!hasLiveVideo(s) && r.meshScreens.get(s.id) === s) {
            r.meshScreens.delete(s.id);
            this.renderScreen(r);
          }
        };
        s.addEventListener("removetrack", gone);
        ev.track.addEventListener("ended", gone);
      }
      r.meshScreens.delete(stream.id); // newest last
      r.meshScreens.set(stream.id, stream);
    }
    if (r.shown === "mesh") this.renderMedia(r);
  }

  /**
   * Their camera+mic stream on a path.
   * @param {Remote} r
   * @param {Topology} path
   */
  cameraSource(r, path) {
    return path === "mesh" ? r.meshCam : r.sfuCam;
  }

  /**
   * The screen share to show from a path, if any.
   * @param {Remote} r
   * @param {Topology} path
   * @returns {MediaStream|null}
   */
  screenSource(r, path) {
    if (path === "mesh") {
      let last = null;
      for (const s of r.meshScreens.values()) if (hasLiveVideo(s)) last = s;
      return last;
    }
    // The SFU's screen stream outlives a share until the server
    // renegotiates; the participant's state says whether it is current.
    const sharing = this.participants.get(r.id)?.state.screen ?? true;
    return sharing && r.sfuScreen && hasLiveVideo(r.sfuScreen) ? r.sfuScreen : null;
  }

  /**
   * Points r's tiles at the path they show.
   * @param {Remote} r
   */
  renderMedia(r) {
    const cam = this.cameraSource(r, r.shown);
    if (cam) r.tile.attach(cam);
    else if (r.tile.source) r.tile.detach();
    this.renderScreen(r);
  }

  /** @param {Remote} r */
  renderScreen(r) {
    const src = this.screenSource(r, r.shown);
    if (!src) {
      if (r.screenTile) {
        this.layout.unobserve(r.screenTile.video);
        r.screenTile.remove();
        r.screenTile = null;
      }
      return;
    }
    if (!r.screenTile) {
      const name = this.participants.get(r.id)?.name ?? r.tile.name;
      const t = new Tile({ id: r.id, name, username: r.tile.username, kind: "screen", local: false });
      r.screenTile = t;
      r.tile.el.after(t.el);
      this.layout.observe(t.video, r.id, "screen");
      t.setPeerState(this.remoteState(r), "");
    }
    r.screenTile.attach(src);
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
   * @returns {import("./peer.js").PeerState}
   */
  remoteState(r) {
    if (r.gone) return "reconnecting";
    if (r.shown === "mesh") return r.peer ? r.peer.state : "new";
    return this.sfu ? this.sfu.subState : "new";
  }

  /** @param {Remote} r */
  updateRemote(r) {
    if (this.remotes.get(r.id) !== r) return;
    if (r.gone && this.connectionState(r) === "failed") {
      // Waiting for them was only worth it while media still flowed.
      this.removeRemote(r.id);
      return;
    }
    const state = this.remoteState(r);
    const name = this.participants.get(r.id)?.name ?? r.tile.name;
    r.tile.setPeerState(state, peerStatusText(state, { name, gone: r.gone, hasTurn: this.hasTurn }));
    r.screenTile?.setPeerState(state, "");
  }

  /** @param {Remote} r */
  markGone(r) {
    r.gone = true;
    clearTimeout(r.goneTimer);
    r.goneTimer = setTimeout(() => this.removeRemote(r.id), GONE_GRACE_MS);
    this.updateRemote(r);
  }

  /** @param {Remote} r */
  clearGone(r) {
    r.gone = false;
    clearTimeout(r.goneTimer);
    r.goneTimer = undefined;
  }

  /** @param {string} id */
  removeRemote(id) {
    const r = this.remotes.get(id);
    if (!r) return;
    this.remotes.delete(id);
    clearTimeout(r.goneTimer);
    clearTimeout(r.swapTimer);
    this.closeMesh(r);
    this.layout.unobserve(r.tile.video);
    if (r.screenTile) this.layout.unobserve(r.screenTile.video);
    r.screenTile?.remove();
    r.screenTile = null;
    r.tile.remove();
    for (const key of [`${id}:camera`, `${id}:screen`]) this.sfuStreams.delete(key);
    if (this.spotlit === id) this.spotlit = "";
    const rec = this.lastSwitch;
    if (rec && !rec.done) rec.done = rec.pending.every((p) => p in rec.perPeer || !this.remotes.has(p));
    this.maybeRetireSfu();
    this.renderSpotlight();
    this.render();
  }

  // ---------------------------------------------------------------- speaker

  /**
   * The server's active speaker (SFU mode): outline their tile; in a big
   * room, show the last speaker large.
   * @param {unknown} id
   */
  onSpeaker(id) {
    this.speakerMessages++;
    this.showSpeaker(typeof id === "string" ? id : "");
  }

  /** @param {string} id "" = nobody */
  showSpeaker(id) {
    this.speaker = id;
    for (const r of this.remotes.values()) r.tile.setSpeaking(r.id === this.speaker);
    this.localTile?.setSpeaking(!!this.speaker && this.speaker === this.myId);
    if (this.speaker && this.remotes.has(this.speaker)) this.spotlit = this.speaker;
    this.renderSpotlight();
  }

  /** Spotlight layout: more than four people, one of them shown large. */
  renderSpotlight() {
    const big = this.isJoined() && this.participants.size + 1 > 4;
    if (big && !this.remotes.has(this.spotlit)) this.spotlit = "";
    const on = big && this.spotlit !== "";
    this.ui.tiles.classList.toggle("spotlight", big);
    for (const r of this.remotes.values()) r.tile.el.classList.toggle("spotlit", on && r.id === this.spotlit);
  }

  onSoundBlocked() {
    if (this.soundBlocked) return;
    this.soundBlocked = true;
    showNotice(this.ui, "Your browser blocked the call's sound. Click anywhere on the page or press a key to hear the others.");
    const resume = () => {
      this.soundBlocked = false;
      document.removeEventListener("pointerdown", resume, true);
      document.removeEventListener("keydown", resume, true);
      for (const r of this.remotes.values()) r.tile.play();
      showNotice(this.ui, "");
    };
    document.addEventListener("pointerdown", resume, true);
    document.addEventListener("keydown", resume, true);
  }

  // ------------------------------------------------------------ join/leave

  async join() {
    if (this.joining || this.wantInCall) return;
    this.joining = true;
    this.render();
    const media = await getLocalMedia();
    this.joining = false;
    this.localStream = media.stream;
    this.state = {
      audio: media.stream.getAudioTracks().length > 0,
      video: media.stream.getVideoTracks().length > 0,
      screen: false,
      hand: false,
    };
    showNotice(this.ui, media.notice);
    this.wantInCall = true;
    this.myId = null; // a deliberate join is a fresh start, never a resume
    this.resumeToken = null;
    this.maybeSendJoin();
    this.render();
  }

  /** Hang up: tell the server, then drop everything. */
  leave() {
    if (!this.wantInCall) return;
    this.sig.send({ type: "leave" });
    this.teardown();
  }

  /** Back to the lobby: close connections, release devices. */
  teardown() {
    this.wantInCall = false;
    this.joining = false;
    this.myId = null;
    this.resumeToken = null;
    this.joinSent = false;
    for (const id of [...this.remotes.keys()]) this.removeRemote(id);
    this.closeSfu();
    this.topology = "mesh";
    this.layout.setEnabled(false);
    this.speaker = this.spotlit = "";
    this.stopScreen(false);
    for (const t of this.localStream?.getTracks() ?? []) t.stop();
    this.localStream = null;
    this.localTile?.remove();
    this.localTile = null;
    this.state = { audio: false, video: false, screen: false, hand: false };
    showNotice(this.ui, "");
    this.setView("lobby");
    this.render();
  }

  /** @param {"lobby"|"call"} v */
  setView(v) {
    if (this.view === v) return;
    this.view = v;
    const ui = this.ui;
    ui.root.dataset.view = v;
    ui.lobby.hidden = v === "call";
    ui.callView.hidden = v !== "call";
    if (v === "call") {
      if (!this.localTile && this.localStream) {
        this.localTile = new Tile({ id: null, name: this.userName, kind: "camera", local: true });
        ui.tiles.prepend(this.localTile.el);
        this.localTile.attach(this.localStream);
      }
      ui.muteBtn.focus();
    } else {
      ui.joinBtn.focus();
    }
  }

  // --------------------------------------------------------------- controls

  bindControls() {
    const ui = this.ui;
    ui.joinBtn.addEventListener("click", () => this.join());
    ui.muteBtn.addEventListener("click", () => this.toggleDevice("audio"));
    ui.cameraBtn.addEventListener("click", () => this.toggleDevice("video"));
    ui.screenBtn.addEventListener("click", () => this.toggleScreen());
    ui.hangupBtn.addEventListener("click", () => this.leave());
    if (!canShareScreen()) {
      ui.screenBtn.disabled = true;
      ui.screenBtn.title = "Screen sharing is not available in this browser";
    }

    document.addEventListener("keydown", (ev) => {
      if (this.view !== "call") return;
      const action = shortcutFor(ev);
      if (!action) return;
      ev.preventDefault();
      if (action === "mute") this.toggleDevice("audio");
      else if (action === "camera") this.toggleDevice("video");
      else this.leave();
    });

    // Best effort: tell the others right away instead of after the server's
    // 15 s dead-socket timeout.
    window.addEventListener("pagehide", () => {
      if (this.wantInCall) this.sig.send({ type: "leave" });
      this.sig.stop();
    });
    // Restored from the back/forward cache: we already left; start clean.
    window.addEventListener("pageshow", (ev) => { if (ev.persisted) location.reload(); });
    window.addEventListener("online", () => this.sig.retryNow());
  }

  /**
   * Mute/unmute or camera off/on. Without a track (permission denied at
   * join), asks for the device again.
   * @param {"audio"|"video"} kind
   */
  async toggleDevice(kind) {
    const stream = this.localStream;
    if (!stream || !this.wantInCall) return;
    const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    if (track) {
      // enabled=false sends silence/black frames without renegotiating.
      track.enabled = !track.enabled;
      this.state[kind] = track.enabled;
    } else {
      const device = kind === "audio" ? "microphone" : "camera";
      let t;
      try {
        t = await getDeviceTrack(kind);
      } catch (err) {
        const d = describeMediaError(err, device);
        showNotice(this.ui, `${d.why}. ${d.fix.replace(/ and rejoin\.$/, ", then try again.")}`);
        return;
      }
      if (!this.localStream) { t.stop(); return; } // left meanwhile
      stream.addTrack(t);
      for (const r of this.remotes.values()) r.peer?.replaceCameraTrack(kind, t);
      if (this.topology === "sfu") this.sfu?.publishCamera(stream); // a new transceiver: renegotiates
      this.localTile?.attach(stream);
      this.state[kind] = true;
      showNotice(this.ui, "");
    }
    this.localTile?.updateFrames();
    this.sendUpdate();
  }

  async toggleScreen() {
    if (!this.wantInCall) return;
    if (this.screenStream) {
      this.stopScreen(true);
      return;
    }
    let s;
    try {
      s = await getScreen();
    } catch (err) {
      const name = /** @type {any} */ (err)?.name;
      showNotice(this.ui, name === "NotAllowedError"
        ? "Screen sharing was cancelled or blocked. To share, press Share screen again and pick a screen, window or tab."
        : `Screen sharing could not start (${name || "error"}). Try again, or share a single window instead.`);
      return;
    }
    const track = s.getVideoTracks()[0];
    if (!this.wantInCall || !track) { s.getTracks().forEach((t) => t.stop()); return; }
    this.screenStream = s;
    // The browser's own "Stop sharing" button ends the track.
    track.addEventListener("ended", () => { if (this.screenStream === s) this.stopScreen(true); });
    this.state.screen = true;
    this.sendUpdate();
    for (const r of this.remotes.values()) if (r.peer?.attached) r.peer.setScreen(track, s);
    if (this.topology === "sfu") this.sfu?.setScreen(track, s);
    this.localScreenTile = new Tile({ id: null, name: this.userName, kind: "screen", local: true });
    if (this.localTile) this.localTile.el.after(this.localScreenTile.el);
    else this.ui.tiles.prepend(this.localScreenTile.el);
    this.localScreenTile.attach(s);
    this.render();
  }

  /** @param {boolean} announce send the state change */
  stopScreen(announce) {
    const s = this.screenStream;
    if (!s) return;
    this.screenStream = null;
    for (const r of this.remotes.values()) if (r.peer?.attached) r.peer.setScreen(null, null);
    // A lingering session (after a switch to the mesh) is left alone:
    // the server no longer takes offers for it.
    if (this.topology === "sfu") this.sfu?.setScreen(null, null);
    for (const t of s.getTracks()) t.stop();
    this.localScreenTile?.remove();
    this.localScreenTile = null;
    this.state.screen = false;
    if (announce) this.sendUpdate();
    this.render();
  }

  /** Tells the others what we send; after an outage, join carries it instead. */
  sendUpdate() {
    if (this.myId && this.helloSeen) this.sig.send({ type: "update", state: { ...this.state } });
    this.render();
  }

  // ----------------------------------------------------------------- render

  render() {
    const ui = this.ui;
    const sigState = this.sig.state;
    const inCall = this.view === "call";

    ui.signalStatus.dataset.state = sigState;
    setText(ui.signalStatus, signalText(sigState, { inCall, reason: this.offlineReason }));

    let connected = 0;
    let failed = 0;
    for (const r of this.remotes.values()) {
      const s = this.remoteState(r);
      if (s === "connected") connected++;
      else if (s === "failed") failed++;
    }
    const sfu = inCall && this.topology === "sfu" && this.sfu
      ? { pub: this.sfu.publishing ? this.sfu.pubState : null, sub: this.sfu.subState }
      : null;
    setText(ui.callStatus, callSummary({
      view: this.view,
      joining: this.joining || (this.wantInCall && !inCall),
      inCallCount: this.participants.size,
      others: this.remotes.size,
      connected,
      failed,
      signalUp: sigState === "connected",
      sfu,
    }));

    const people = [...this.participants.values()];
    if (inCall && this.myId) people.push({ id: this.myId, userId: this.userId, name: this.userName, state: { ...this.state } });
    renderPeople(ui, people, inCall ? this.myId : null);
    // Two accounts with one display name: keep their usernames visible.
    const dups = duplicateNames(people);
    for (const r of this.remotes.values()) {
      const dup = dups.has(nameKey(this.participants.get(r.id)?.name ?? r.tile.name));
      r.tile.setDuplicate(dup);
      r.screenTile?.setDuplicate(dup);
    }

    const n = this.participants.size;
    setText(ui.lobbySummary, n === 0
      ? "Nobody is in the call yet — join to start it."
      : `${n === 1 ? "1 person is" : `${n} people are`} in the call: ${people.slice(0, 4).map((p) => p.name).join(", ")}${n > 4 ? ", …" : ""}.`);
    const busy = this.joining || (this.wantInCall && !inCall);
    ui.joinBtn.disabled = busy;
    setText(ui.joinBtn, busy ? "Joining…" : "Join call");

    if (this.localTile) this.localTile.setMedia(this.state);
    this.renderControls();
  }

  renderControls() {
    const ui = this.ui;
    const s = this.state;
    const hasMic = !!this.localStream?.getAudioTracks().length;
    const hasCam = !!this.localStream?.getVideoTracks().length;
    setToggle(ui.muteBtn, !s.audio, icon("mic", !s.audio),
      s.audio ? "Mute your microphone (M)" : hasMic ? "Unmute your microphone (M)" : "Turn on your microphone — asks for permission (M)");
    setToggle(ui.cameraBtn, !s.video, icon("cam", !s.video),
      s.video ? "Turn your camera off (V)" : hasCam ? "Turn your camera on (V)" : "Turn on your camera — asks for permission (V)");
    if (!ui.screenBtn.disabled) {
      setToggle(ui.screenBtn, s.screen, icon("screen"), s.screen ? "Stop sharing your screen" : "Share your screen, a window or a tab");
    }
  }

  /** Read-only view for automated tests (no credentials). */
  snapshot() {
    return {
      view: this.view,
      signal: this.sig.state,
      joined: this.myId !== null && this.view === "call",
      me: { ...this.state },
      participants: [...this.participants.keys()],
      peers: Object.fromEntries([...this.remotes].map(([id, r]) => [id, this.remoteState(r)])),
      topology: this.topology,
      // Which path each remote tile shows (differs from topology mid-switch).
      shown: Object.fromEntries([...this.remotes].map(([id, r]) => [id, r.shown])),
      sfu: this.sfu ? { pub: this.sfu.pubState, sub: this.sfu.subState } : null,
      speaker: this.speaker,
      speakerMessages: this.speakerMessages,
      // The last layout message: what the server was told we draw.
      layout: this.layout.lastSent,
    };
  }

  /** The last topology switch, copied (tests read it). */
  switchReport() {
    const s = this.lastSwitch;
    if (!s) return null;
    return { from: s.from, to: s.to, maxGapMs: s.maxGapMs, perPeer: { ...s.perPeer }, pending: [...s.pending], done: s.done };
  }
}

// ------------------------------------------------------------------ helpers

/**
 * @param {HTMLElement} el
 * @param {string} text
 */
function setText(el, text) {
  // Rewriting identical text would make live regions re-announce it.
  if (el.textContent !== text) el.textContent = text;
}

/**
 * @param {HTMLButtonElement} btn
 * @param {boolean} pressed
 * @param {SVGElement} ic
 * @param {string} title
 */
function setToggle(btn, pressed, ic, title) {
  btn.setAttribute("aria-pressed", String(pressed));
  btn.title = title;
  const old = btn.querySelector("svg");
  if (old && old.outerHTML !== ic.outerHTML) old.replaceWith(ic);
}

/** @param {MediaStream} s */
function hasLiveVideo(s) {
  return s.getVideoTracks().some((t) => t.readyState === "live");
}

/** @param {any} p @returns {p is Participant} */
function isParticipant(p) {
  return !!p && typeof p === "object" && typeof p.id === "string";
}

/**
 * Normalises a participant list from the server (fields may be omitted).
 * @param {any} list
 * @returns {Participant[]}
 */
function asParticipants(list) {
  if (!Array.isArray(list)) return [];
  return list.filter(isParticipant).map((p) => ({
    id: p.id,
    userId: String(p.userId ?? ""),
    name: String(p.name ?? "Someone"),
    username: String(p.username ?? ""),
    state: { audio: !!p.state?.audio, video: !!p.state?.video, screen: !!p.state?.screen, hand: !!p.state?.hand },
  }));
}

/** @param {string} id @returns {Participant} */
function placeholderParticipant(id) {
  return { id, userId: "", name: "Someone", state: { audio: true, video: true, screen: false, hand: false } };
}

// ------------------------------------------------------------------- boot

const root = document.getElementById("call-app");
if (root) {
  const call = new Call(root);
  call.start();
  // For browser tests: a read-only peek, nothing that could leak credentials.
  Object.defineProperty(window, "parley", {
    value: Object.freeze({
      get state() { return call.snapshot(); },
      get myId() { return call.myId; },
      /** {from, to, maxGapMs, perPeer: {id: gapMs}, pending, done} of the last mesh ↔ SFU switch, or null. */
      get lastSwitch() { return call.switchReport(); },
      peers() { return [...call.remotes.keys()]; },
      /**
       * Audio received through the SFU, by publisher id: bytes and the
       * decoded audio energy (non-zero once something audible played).
       * @returns {Promise<Record<string, {bytes: number, energy: number}>>}
       */
      async sfuAudio() {
        /** @type {Record<string, {bytes: number, energy: number}>} */
        const out = {};
        if (!call.sfu) return out;
        for (const rc of call.sfu.sub.getReceivers()) {
          if (rc.track?.kind !== "audio") continue;
          const id = rc.track.id.split(":")[0]; // tracks are PUBLISHER:microphone
          for (const s of (await rc.getStats()).values()) {
            if (s.type !== "inbound-rtp") continue;
            const o = out[id] ??= { bytes: 0, energy: 0 };
            o.bytes += s.bytesReceived || 0;
            o.energy += s.totalAudioEnergy || 0;
          }
        }
        return out;
      },
    }),
    configurable: false,
    writable: false,
  });
}
