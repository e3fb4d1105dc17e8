// Entry point of the call page: renders the call UI into #call-app and runs
// the call — signaling (signaling.js), one peer connection per remote
// participant in a full mesh (peer.js), local devices (media.js), chat
// (chat.js). The contract with the server is docs/protocol.md.

import { Signaling, socketURL } from "./signaling.js";
import { Peer, isPolite } from "./peer.js";
import { getLocalMedia, getDeviceTrack, describeMediaError, canShareScreen, getScreen } from "./media.js";
import { buildLayout, renderPeople, Tile, showToast, showNotice, icon } from "./ui.js";
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

/**
 * @typedef {import("./ui.js").Participant} Participant
 * @typedef {import("./ui.js").MediaState} MediaState
 *
 * @typedef {object} Remote  everything we hold for one remote participant
 * @property {string} id
 * @property {Peer} peer
 * @property {Tile} tile                 camera tile
 * @property {Map<string, Tile>} screens screen-share tiles by stream id
 * @property {boolean} gone              their signaling dropped; waiting for them
 * @property {ReturnType<typeof setTimeout>|undefined} goneTimer
 * @property {MediaStream|null} looseStream  tracks that arrived without a stream id
 * @property {ReturnType<typeof setTimeout>|undefined} attachTimer  pending deferred attach
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
    this.iceServers = Array.isArray(m.iceServers) ? m.iceServers : [];
    this.hasTurn = hasTurnServer(this.iceServers);
    // TURN credentials are time-limited: give kept connections the fresh ones.
    for (const r of this.remotes.values()) r.peer.setIceServers(this.iceServers);
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

  /** Sends join once the socket is ready, media is settled and we want in. */
  maybeSendJoin() {
    if (!this.wantInCall || this.joining || !this.helloSeen || this.joinSent) return;
    /** @type {any} */
    const msg = { type: "join", state: { ...this.state } };
    if (this.myId) msg.resume = this.myId;
    if (this.sig.send(msg)) this.joinSent = true;
  }

  /** @param {any} m */
  onJoined(m) {
    const you = m.you;
    if (!you || typeof you.id !== "string") return;
    const previous = this.myId;
    this.myId = you.id;
    this.restartedForJoin = false;
    if (previous && previous !== you.id) {
      // We could not reclaim our id: to everyone else we are a newcomer, so
      // every old connection is useless to them. Start over.
      for (const id of [...this.remotes.keys()]) this.removeRemote(id);
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
        r.tile.setName(p.name);
        r.tile.setMedia(p.state);
        r.peer.resync();
        this.updateRemote(r);
      } else {
        const cs = r.peer.pc.connectionState;
        if (cs === "connected" || cs === "connecting") this.markGone(r);
        else this.removeRemote(id);
      }
    }
    for (const p of this.participants.values()) if (!this.remotes.has(p.id)) this.createRemote(p);
    this.setView("call");
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
        r.tile.setName(p.name);
        r.tile.setMedia(p.state);
        this.updateRemote(r);
      } else {
        // They are the newcomer and will offer (they create connections
        // to everyone in their joined.participants); we answer.
        this.createRemote(p, false);
      }
    }
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
      const cs = r.peer.pc.connectionState;
      const lostSignaling = reason === "disconnected" || reason === "timeout";
      if (lostSignaling && cs !== "failed" && cs !== "closed") this.markGone(r);
      else this.removeRemote(id); // "left", "replaced", or nothing left to keep
    }
    this.render();
  }

  /** @param {any} raw */
  onParticipantUpdated(raw) {
    const p = asParticipants([raw])[0];
    if (!p || p.id === this.myId) return;
    this.participants.set(p.id, p);
    const r = this.remotes.get(p.id);
    if (r) {
      r.tile.setName(p.name);
      r.tile.setMedia(p.state);
      for (const t of r.screens.values()) t.setName(p.name);
      if (!p.state.screen) this.removeScreens(r);
    }
    this.render();
  }

  /** @param {any} m */
  onDescription(m) {
    if (!this.isJoined() || typeof m.from !== "string" || typeof m.sdp !== "string") return;
    let r = this.remotes.get(m.from);
    if (r && m.type === "offer" && r.peer.isForeignOffer(m.sdp)) {
      // They replaced their connection to us (e.g. they closed it after a
      // reconnect); an offer from a new connection cannot renegotiate ours.
      this.removeRemote(m.from);
      r = undefined;
    }
    if (!r) {
      // An offer can beat participant-joined here (e.g. across our own
      // reconnect); answers and candidates for unknown peers are stale.
      if (m.type !== "offer") return;
      r = this.createRemote(this.participants.get(m.from) ?? placeholderParticipant(m.from), false);
    }
    // Our tracks go in before their offer is applied, so they ride on the
    // m-lines of the offer and our answer carries them: no second round.
    if (m.type === "offer") this.attachLocal(r);
    r.peer.handleDescription({ type: m.type, sdp: m.sdp });
  }

  /** @param {any} m */
  onCandidate(m) {
    if (!this.isJoined()) return;
    this.remotes.get(m.from)?.peer.handleCandidate(m.candidate ?? null);
  }

  /** @param {any} m */
  onError(m) {
    const text = typeof m.message === "string" && m.message
      ? m.message
      : `The server refused a message (${m.code || "unknown error"}).`;
    if (m.ref === "chat") return this.chat.serverError(text);
    if (m.code === "unknown-peer") {
      // A peer left while our offer/candidate was in flight: expected, harmless.
      console.info("parley:", text);
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
        this.myId = null;
        this.joinSent = false;
        this.maybeSendJoin();
        return;
      }
      showToast(this.ui, `Could not join the call: ${text}`);
      this.teardown();
      return;
    }
    if (m.code === "not-joined" && ["offer", "answer", "candidate", "update"].includes(m.ref)) {
      // Raced with a leave or a reconnect; the next join resends our state.
      console.info("parley:", text);
      return;
    }
    showToast(this.ui, text);
  }

  /** @param {{everOpened: boolean, failures: number}} info */
  onSocketClosed(info) {
    this.helloSeen = false;
    this.joinSent = false;
    // Closes that reconnecting cannot fix (docs/protocol.md, close codes).
    const final = {
      4003: "you were removed from this channel.",
      4004: "this channel was deleted.",
    }[/** @type {4003|4004} */ (info.code)];
    if (final) {
      this.teardown();
      this.offlineReason = final;
      this.sig.stop("offline");
      this.render();
      return;
    }
    // The peer connections stay up: media flows directly between browsers.
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

  // ------------------------------------------------------------------ peers

  isJoined() {
    return this.myId !== null && this.view === "call";
  }

  /**
   * @param {Participant} p
   * @param {boolean} [offer] add our media now, which makes us offer; false
   *   waits for their offer (or NEWCOMER_OFFER_WAIT_MS)
   * @returns {Remote}
   */
  createRemote(p, offer = true) {
    const myId = /** @type {string} */ (this.myId);
    const tile = new Tile({ id: p.id, name: p.name, kind: "camera", local: false });
    tile.setMedia(p.state);
    tile.onPlayBlocked = () => this.onSoundBlocked();
    this.ui.tiles.append(tile.el);
    /** @type {Remote} */
    const r = {
      id: p.id, tile, screens: new Map(), gone: false, goneTimer: undefined, looseStream: null, attachTimer: undefined,
      peer: new Peer({
        id: p.id,
        polite: isPolite(myId, p.id),
        iceServers: this.iceServers,
        send: (msg) => this.sig.send(msg),
        onTrack: (_peer, ev) => this.onTrack(r, ev),
        onStateChange: () => { this.updateRemote(r); this.render(); },
        debug: this.sig.debug,
      }),
    };
    this.remotes.set(p.id, r);
    if (offer) this.attachLocal(r);
    else r.attachTimer = setTimeout(() => this.attachLocal(r), NEWCOMER_OFFER_WAIT_MS);
    this.updateRemote(r);
    return r;
  }

  /**
   * Adds our camera, mic and any screen share to a connection (once).
   * @param {Remote} r
   */
  attachLocal(r) {
    clearTimeout(r.attachTimer);
    r.attachTimer = undefined;
    if (r.peer.attached || r.peer.closed || !this.localStream) return;
    r.peer.attachCamera(this.localStream);
    const screenTrack = this.screenStream?.getVideoTracks()[0];
    if (screenTrack && this.screenStream) r.peer.setScreen(screenTrack, this.screenStream);
  }

  /**
   * Routes a remote track to the camera tile or a screen tile. The sender
   * puts camera+mic in one MediaStream and a screen share in another; the
   * first stream we see from a peer is the camera (peer.js announces it as
   * soon as the connection exists, even without devices).
   * @param {Remote} r
   * @param {RTCTrackEvent} ev
   */
  onTrack(r, ev) {
    let stream = ev.streams[0];
    if (!stream) {
      // No stream id (a minimal native client): treat as camera/mic.
      r.looseStream ??= new MediaStream();
      r.looseStream.addTrack(ev.track);
      stream = r.looseStream;
    }
    if (r.peer.camStreamId === null) r.peer.camStreamId = stream.id;
    if (stream.id === r.peer.camStreamId) {
      r.tile.attach(stream);
      return;
    }
    if (ev.track.kind !== "video") return; // screen audio is not part of v1
    let t = r.screens.get(stream.id);
    if (!t) {
      const name = this.participants.get(r.id)?.name ?? r.tile.name;
      t = new Tile({ id: r.id, name, kind: "screen", local: false });
      r.screens.set(stream.id, t);
      r.tile.el.after(t.el);
      const s = stream;
      const gone = () => {
        if (s.getVideoTracks().every((x) => x.readyState === "ended") || s.getVideoTracks().length === 0) {
          this.removeScreen(r, s.id);
        }
      };
      s.addEventListener("removetrack", gone);
      ev.track.addEventListener("ended", gone);
    }
    t.attach(stream);
    t.setPeerState(r.peer.state, "");
  }

  /** @param {Remote} r */
  removeScreens(r) {
    for (const id of [...r.screens.keys()]) this.removeScreen(r, id);
  }

  /**
   * @param {Remote} r
   * @param {string} streamId
   */
  removeScreen(r, streamId) {
    const t = r.screens.get(streamId);
    if (!t) return;
    t.remove();
    r.screens.delete(streamId);
  }

  /** @param {Remote} r */
  updateRemote(r) {
    if (r.peer.closed) return;
    const state = r.gone ? "reconnecting" : r.peer.state;
    if (r.gone && r.peer.pc.connectionState === "failed") {
      // Waiting for them was only worth it while media still flowed.
      this.removeRemote(r.id);
      return;
    }
    const name = this.participants.get(r.id)?.name ?? r.tile.name;
    r.tile.setPeerState(state, peerStatusText(state, { name, gone: r.gone, hasTurn: this.hasTurn }));
    for (const t of r.screens.values()) t.setPeerState(state, "");
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
    clearTimeout(r.attachTimer);
    r.peer.close();
    this.removeScreens(r);
    r.tile.remove();
    this.render();
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
    this.joinSent = false;
    for (const id of [...this.remotes.keys()]) this.removeRemote(id);
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
      for (const r of this.remotes.values()) r.peer.replaceCameraTrack(kind, t);
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
    for (const r of this.remotes.values()) if (r.peer.attached) r.peer.setScreen(track, s);
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
    for (const r of this.remotes.values()) if (r.peer.attached) r.peer.setScreen(null, null);
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
      const s = r.gone ? "reconnecting" : r.peer.state;
      if (s === "connected") connected++;
      else if (s === "failed") failed++;
    }
    setText(ui.callStatus, callSummary({
      view: this.view,
      joining: this.joining || (this.wantInCall && !inCall),
      inCallCount: this.participants.size,
      others: this.remotes.size,
      connected,
      failed,
      signalUp: sigState === "connected",
    }));

    const people = [...this.participants.values()];
    if (inCall && this.myId) people.push({ id: this.myId, userId: this.userId, name: this.userName, state: { ...this.state } });
    renderPeople(ui, people, inCall ? this.myId : null);

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
      peers: Object.fromEntries([...this.remotes].map(([id, r]) => [id, r.gone ? "reconnecting" : r.peer.state])),
    };
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
      peers() { return [...call.remotes.keys()]; },
    }),
    configurable: false,
    writable: false,
  });
}
