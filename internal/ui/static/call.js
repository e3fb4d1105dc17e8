// @ts-check
// Entry point of the call page: renders the call UI into #call-app and runs
// the call. This module dispatches the server's messages (docs/protocol.md)
// to the parts that do the work, each in a module of its own:
//
//   session.js   the lifecycle state machine (lobby → … → in-call, resuming)
//   topology.js  the media paths: mesh peers (peer.js), the SFU (sfu.js),
//                and the switch between them
//   tiles.js     the video tiles and their layout (tile.js, layout.js)
//   controls.js  our devices and the call's buttons (media.js)
//   signaling.js the socket; chat.js the chat; protocol.js the messages

import { Signaling, socketURL } from "./signaling.js";
import { CallSession } from "./session.js";
import { MediaPaths } from "./topology.js";
import { TileView } from "./tiles.js";
import { Controls } from "./controls.js";
import { Chat } from "./chat.js";
import { buildLayout, renderPeople, showNotice, setText, duplicateNames, nameKey, announce } from "./ui.js";
import { signalText, callSummary, lobbySummary, hasTurnServer } from "./status.js";
import { installTestHook } from "./testhook.js";
import { handleServerError } from "./callerrors.js";
import { StatsMonitor } from "./netstats.js";
import { Room } from "./room.js";
import { RecordControl } from "./record.js";
import { meetingParts } from "./lobby.js";
import { JoinTokenKeeper } from "./jointoken.js";
import {
  asParticipant, asParticipants, asIceServers, isTopology, finalCloseReason, refusedUpgradeReason,
} from "./protocol.js";

/**
 * @typedef {import("./protocol.js").Participant} Participant
 * @typedef {import("./protocol.js").Topology} Topology
 * @typedef {import("./remotes.js").Remote} Remote
 */

/** The call page. */
export class Call {
  /** @param {HTMLElement} root */
  constructor(root) {
    const d = root.dataset;
    this.channelId = d.channelId || "";
    this.userId = d.userId || "";
    this.userName = d.userName || "You";
    this.ui = buildLayout(root, { channelName: d.channelName || "" });

    this.session = new CallSession(() => this.applyView());
    /** The view the page shows, as last applied to the DOM. */
    /** @type {"lobby"|"call"} */
    this.view = "lobby";
    this.helloCount = 0;
    this.offlineReason = "";
    /** Others in the call, as the server last told us. */
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {Map<string, Remote>} */
    this.remotes = new Map();
    /** How many `speaker` messages arrived (diagnostics; window.parley.state). */
    this.speakerMessages = 0;

    this.chatOff = d.chat === "off"; // a quick 1:1 call, a join token without chat
    this.joinToken = new JoinTokenKeeper(d, this.channelId);
    const socket = this.joinToken.socketURL(location) || socketURL(location, this.channelId);
    this.sig = new Signaling(socket, {
      onMessage: (m) => this.onMessage(m),
      onState: () => this.render(),
      onClose: (info) => this.onSocketClosed(info),
    });
    this.sig.debug = new URLSearchParams(location.search).has("debug");
    /** A guest (guest link): no account; reads the chat but cannot post. */
    this.guest = d.guest === "1";
    this.chat = new Chat(this.ui, {
      historyURL: d.historyUrl || "",
      channelId: this.channelId,
      myUserId: this.userId,
      send: (text) => this.sig.send({ type: "chat", text }),
    });
    this.tiles = new TileView({
      ui: this.ui,
      participants: this.participants,
      sendLayout: (tiles) => this.session.joined && this.sig.send({ type: "layout", tiles }),
      onChange: () => this.renderAll(),
      announce: (text) => announce(this.ui, text),
    });
    /** What arrives from whom, from the connections' stats (netstats.js). */
    this.stats = new StatsMonitor(() => this.statsSources(), (m) => {
      const before = this.tiles.anyFlowing();
      this.tiles.showMeasured(m, this.remotes);
      // Re-render (status lines) only when what they say changes: render
      // rebuilds the people list, which would steal focus every second.
      if (before !== this.tiles.anyFlowing()) this.render();
    });
    this.room = new Room(this);
    /** @type {Controls} */
    this.controls = new Controls(this);
    this.record = new RecordControl(this.ui, { channelId: this.channelId, send: (msg) => this.sig.send(msg) });
    /** @type {MediaPaths} */
    this.topology = new MediaPaths({
      remotes: this.remotes,
      participants: this.participants,
      view: this.tiles,
      send: (msg) => this.sig.send(msg),
      myId: () => this.session.myId,
      local: () => ({ camera: this.controls.localStream, screen: this.controls.screenStream }),
      debug: this.sig.debug,
    });

    const parts = meetingParts(this);
    this.moderation = parts.moderation;
    this.lobbyView = parts.lobby;
    this.prejoin = parts.prejoin;

    this.controls.bind();
    // Tell the others at once. If the browser cuts the leave off (Firefox
    // does), the close frame (1000 or 1001) still counts as leaving.
    window.addEventListener("pagehide", () => {
      if (this.session.wantsIn) this.sig.send({ type: "leave" });
      this.sig.stop();
    });
    // Restored from the back/forward cache: we already left; start clean.
    window.addEventListener("pageshow", (ev) => { if (ev.persisted) location.reload(); });
    window.addEventListener("online", () => this.sig.retryNow());
    this.render();
  }

  start() {
    this.sig.connect();
    if (this.guest) {
      this.ui.chatInput.disabled = true;
      this.ui.chatInput.placeholder = "Guests can read the chat but not post";
    }
    if (this.chatOff) {
      this.ui.chat.hidden = true;
      this.ui.chatToggle.hidden = true;
    } else {
      this.chat.loadHistory();
    }
    // Arrived by a meeting code (/join): straight into the call. The
    // parameter goes, so that a reload does not join again.
    const url = new URL(location.href);
    if (url.searchParams.has("join")) {
      url.searchParams.delete("join");
      history.replaceState(null, "", url);
      this.join();
    }
  }

  // ---------------------------------------------------------------- signaling

  /**
   * Dispatches one message from the server. Fields are read defensively:
   * the types say what the protocol promises, not what arrived.
   * @param {import("./protocol.js").ServerMessage} m
   */
  onMessage(m) {
    switch (m.type) {
      case "hello": return this.onHello(m);
      case "joined": return this.onJoined(m);
      case "participant-joined": return this.onParticipantJoined(m.participant);
      case "participant-left": return this.onParticipantLeft(m.id, m.reason);
      case "participant-updated": return this.onParticipantUpdated(m.participant);
      case "offer":
      case "answer": if (this.session.joined) this.topology.handleDescription(m); return;
      case "candidate": if (this.session.joined) this.topology.handleCandidate(m); return;
      case "topology": return this.onTopology(m.topology);
      case "speaker": return this.onSpeaker(m.id);
      case "ice-servers": return this.setIceServers(m.iceServers);
      case "join-token": return this.joinToken.renew(m, this.sig, this.chat, location);
      case "sfu-restart": return this.topology.restartSfu();
      case "chat": return this.chat.add(m.message);
      case "error": return this.onError(m);
      case "recording": return this.record.update(m.recording);
      case "moderated": return this.moderation.onModerated(m);
      case "lobby": return this.lobbyView.onLobby(m.waiting);
      case "admission": return this.lobbyView.onAdmission(m);
      case "pong": return; // any message proves the server is alive
      default: return; // unknown types are ignored (protocol.md, Versioning)
    }
  }

  /** @param {import("./protocol.js").HelloMessage} m */
  onHello(m) {
    this.session.helloReceived();
    this.offlineReason = "";
    this.helloCount++;
    this.moderation.setRole(m.user?.role);
    this.moderation.setLocked(!!m.locked);
    this.setIceServers(m.iceServers);
    this.participants.clear();
    for (const p of asParticipants(m.participants)) {
      // After a reconnect the server may still list our old self.
      if (p.id !== this.session.myId) this.participants.set(p.id, p);
    }
    // Messages posted while we were away: fetch again (dedupe by id).
    if (this.helloCount > 1 && !this.chatOff) this.chat.loadHistory();
    this.maybeSendJoin();
    this.render();
  }

  /**
   * New ICE servers (hello, or the server's ice-servers refresh). TURN
   * credentials are time-limited: live connections get the fresh ones too,
   * so an ICE restart on a long call still authenticates.
   * @param {unknown} list
   */
  setIceServers(list) {
    const servers = asIceServers(list);
    this.tiles.hasTurn = hasTurnServer(servers);
    this.topology.setIceServers(servers);
  }

  /** Sends join once the socket is ready, media is settled and we want in. */
  maybeSendJoin() {
    const msg = this.session.joinMessage(this.controls.state);
    if (msg && this.sig.send(msg)) this.session.fire("join-sent");
  }

  /** @param {import("./protocol.js").JoinedMessage} m */
  onJoined(m) {
    const you = m.you;
    if (!you || typeof you.id !== "string") return;
    const got = this.session.joinedAs(you.id, typeof m.resumeToken === "string" ? m.resumeToken : null);
    if (!got) return; // we hung up meanwhile
    const myId = you.id;
    if (got.previous && got.previous !== myId) {
      // We could not reclaim our id: to everyone else we are a newcomer, so
      // every old connection is useless to them. Start over.
      this.topology.removeAll();
      this.topology.closeSfu();
    }
    this.participants.clear();
    for (const p of asParticipants(m.participants)) if (p.id !== myId) this.participants.set(p.id, p);
    this.moderation.setLocked(!!m.locked);
    const meNow = asParticipant(you);
    if (meNow) this.moderation.onSelfUpdated(meNow);

    // Reconcile connections kept across a signaling outage (protocol.md,
    // Reconnecting): keep peers that are listed, and unlisted ones whose media
    // still flows (they are probably reconnecting too); close the rest.
    for (const [id, r] of [...this.remotes]) {
      const p = this.participants.get(id);
      if (p) {
        this.topology.clearGone(r);
        this.tiles.setParticipant(id, p);
        r.peer?.resync();
        this.topology.update(r);
      } else {
        const cs = this.topology.connectionState(r);
        if (cs === "connected" || cs === "connecting") this.topology.markGone(r);
        else this.topology.remove(id);
      }
    }
    // The server gives every join (a resume too) new SFU connections, so
    // ours from before the outage are dead.
    this.topology.closeSfu();
    this.topology.apply(m.topology === "sfu" ? "sfu" : "mesh");
    for (const p of this.participants.values()) if (!this.remotes.has(p.id)) this.topology.add(p);
    // An offer of ours may have been lost with the old socket; the server
    // forgot our layout with it.
    this.topology.sfu?.resync();
    this.tiles.layoutReset();
    // A mute toggled between sending join and getting joined was not sent
    // (or refused: not-joined); make sure the others see what we really send.
    const st = asParticipant(you)?.state;
    const mine = this.controls.state;
    if (st && (st.audio !== mine.audio || st.video !== mine.video || st.screen !== mine.screen)) this.sendUpdate();
    this.render();
  }

  /** @param {unknown} raw */
  onParticipantJoined(raw) {
    const p = asParticipant(raw);
    if (!p || p.id === this.session.myId) return;
    this.participants.set(p.id, p);
    if (this.session.joined) {
      const r = this.remotes.get(p.id);
      announce(this.ui, r ? `${p.name} is back` : `${p.name} joined`);
      if (r) {
        // They resumed: the connection we kept is still theirs.
        this.topology.clearGone(r);
        this.tiles.setParticipant(p.id, p);
        this.topology.update(r);
      } else {
        // Mesh: they are the newcomer and will offer (they create
        // connections to everyone in their joined.participants); we answer.
        this.topology.add(p, false);
      }
    }
    this.renderAll();
  }

  /**
   * @param {unknown} id
   * @param {unknown} reason
   */
  onParticipantLeft(id, reason) {
    if (typeof id !== "string" || id === this.session.myId) return;
    const name = this.participants.get(id)?.name ?? "Someone";
    this.participants.delete(id);
    const r = this.remotes.get(id);
    const lostSignaling = reason === "disconnected" || reason === "timeout";
    if (this.session.joined && reason !== "replaced") {
      announce(this.ui, lostSignaling ? `${name}'s connection is reconnecting` : `${name} left`);
    }
    if (r) {
      const cs = this.topology.connectionState(r);
      if (lostSignaling && cs !== "failed" && cs !== "closed") this.topology.markGone(r);
      else this.topology.remove(id); // "left", "replaced", or nothing left to keep
    }
    this.renderAll();
  }

  /** @param {unknown} raw */
  onParticipantUpdated(raw) {
    const p = asParticipant(raw);
    if (!p) return;
    if (p.id === this.session.myId) {
      this.moderation.onSelfUpdated(p);
      this.render();
      return;
    }
    this.participants.set(p.id, p);
    const r = this.remotes.get(p.id);
    if (r) {
      this.tiles.setParticipant(p.id, p);
      if (!p.state.screen) r.meshScreens.clear();
      this.topology.renderMedia(r);
    }
    this.render();
  }

  /** @param {import("./protocol.js").ErrorMessage} m */
  onError(m) { handleServerError(this, m); }

  /** @param {{everOpened: boolean, failures: number, code: number}} info */
  onSocketClosed(info) {
    this.session.socketClosed();
    // Closes that reconnecting cannot fix (docs/protocol.md, close codes).
    const final = this.joinToken.closeText(info.code) ?? (this.guest && info.code === 4001
      ? "the owner turned off guest access to this call."
      : finalCloseReason(info.code));
    if (final) {
      this.end(final);
      return;
    }
    // The peer connections stay up: media flows directly between browsers
    // (mesh) or through the SFU, which does not depend on this socket.
    if (info.failures === 2 || (info.failures > 0 && info.failures % 10 === 0)) this.diagnose();
    this.render();
  }

  /** The upgrade keeps failing: find out whether the server refuses it. */
  async diagnose() {
    const reason = await refusedUpgradeReason(this.channelId);
    if (!reason) return;
    this.offlineReason = reason;
    this.sig.stop("offline");
    this.render();
  }

  /**
   * Ends the page's session for good: no call, no more sockets.
   * @param {string} reason what the status line says
   */
  end(reason) {
    this.teardown();
    this.session.fire("end");
    this.offlineReason = reason;
    this.sig.stop("offline");
    this.render();
  }

  /** @param {unknown} t */
  onTopology(t) {
    if (!this.session.joined || !isTopology(t)) return;
    this.topology.apply(t);
    this.render();
  }

  /**
   * The server's active speaker (SFU mode).
   * @param {unknown} id
   */
  onSpeaker(id) {
    this.speakerMessages++;
    this.tiles.showSpeaker(typeof id === "string" ? id : "", this.session.myId);
    this.tiles.relayout();
  }

  // ------------------------------------------------------------ join/leave

  async join() {
    if (!this.session.fire("join")) return;
    this.render();
    const notice = await this.controls.acquire();
    if (!this.session.fire("media-ready")) {
      this.controls.release(); // ended or left while the browser asked
      return;
    }
    showNotice(this.ui, notice);
    this.maybeSendJoin();
    this.render();
  }

  /** Hang up: tell the server, then drop everything. */
  leave() {
    if (!this.session.wantsIn) return;
    this.sig.send({ type: "leave" });
    this.teardown();
  }

  /** Back to the lobby: close connections, release devices. */
  teardown() {
    this.session.fire("leave");
    this.topology.removeAll();
    this.topology.closeSfu();
    this.topology.current = "mesh";
    this.tiles.setLayoutEnabled(false);
    this.tiles.speaker = this.tiles.spotlit = "";
    this.stats.stop();
    this.controls.release();
    this.moderation.reset();
    this.lobbyView.reset();
    this.tiles.removeLocal();
    showNotice(this.ui, "");
    this.applyView();
    this.render();
  }

  /** Shows the lobby or the call, as the session's phase says. */
  applyView() {
    const v = this.session.inCall ? "call" : "lobby";
    if (this.view === v) return;
    this.view = v;
    const ui = this.ui;
    ui.root.dataset.view = v;
    ui.lobby.hidden = v === "call";
    ui.callView.hidden = v !== "call";
    this.room.setInCall(v === "call");
    if (v === "call") {
      this.stats.start();
      if (this.controls.localStream) this.tiles.showLocal(this.controls.localStream, this.userName);
      // The lobby (with its device check) may have been scrolled: show the call.
      ui.root.scrollIntoView({ block: "start" });
      ui.muteBtn.focus({ preventScroll: true });
    } else {
      ui.joinBtn.focus();
    }
  }

  /** Tells the others what we send; while rejoining, join carries it instead. */
  sendUpdate() {
    if (this.session.canUpdate) this.sig.send({ type: "update", state: { ...this.controls.state } });
    this.render();
  }

  /**
   * The connections that carry remote media now, and whose each track is.
   * @returns {{pc: RTCPeerConnection, whose: (track: string, mid: string) => string|null}[]}
   */
  statsSources() {
    const out = [];
    const sfu = this.topology.sfu;
    if (sfu) {
      out.push({ pc: sfu.sub, whose: (/** @type {string} */ track) => {
        const id = track.split(":")[0]; // the SFU's tracks are PUBLISHER:camera
        return this.remotes.get(id)?.shown === "sfu" ? id : null;
      } });
    }
    for (const r of this.remotes.values()) {
      if (r.shown === "mesh" && r.peer) out.push({ pc: r.peer.pc, whose: () => r.id });
    }
    return out;
  }

  // ----------------------------------------------------------------- render

  renderAll() {
    this.tiles.relayout();
    this.render();
  }

  render() {
    const ui = this.ui;
    const sigState = this.sig.state;
    const inCall = this.session.inCall;
    const myId = this.session.myId;
    const state = this.controls.state;

    const sfu = this.topology.sfu;
    // Through the server even while its connections are down and being
    // replaced (a failed SFU connection is not a peer-to-peer call).
    const viaServer = inCall && this.topology.current === "sfu";
    // Whether media really arrives (stats), not what the connections claim.
    const flowing = this.tiles.anyFlowing();
    this.tiles.setServerAway(viaServer && sigState !== "connected");
    ui.signalStatus.dataset.state = sigState;
    ui.signalStatus.dataset.media = inCall && this.remotes.size > 0 ? (flowing ? "flowing" : "interrupted") : "";
    setText(ui.signalStatus, signalText(sigState, { inCall, reason: this.offlineReason, viaServer, flowing }));

    let connected = 0;
    let failed = 0;
    for (const r of this.remotes.values()) {
      const s = this.topology.remoteState(r);
      if (s === "connected") connected++;
      else if (s === "failed") failed++;
    }
    setText(ui.callStatus, callSummary({
      view: this.view,
      joining: this.session.busy,
      inCallCount: this.participants.size,
      others: this.remotes.size,
      connected,
      failed,
      signalUp: sigState === "connected",
      flowing,
      sfu: viaServer && sfu ? { pub: sfu.publishing ? sfu.pubState : null, sub: sfu.subState } : null,
    }));

    const people = [...this.participants.values()];
    if (inCall && myId) people.push({ id: myId, userId: this.userId, name: this.userName, state: { ...state }, role: this.moderation.role });
    renderPeople(ui, people, inCall ? myId : null);
    this.moderation.render(people);
    // Two accounts with one display name: keep their usernames visible.
    this.tiles.markDuplicates(duplicateNames(people), nameKey);

    setText(ui.lobbySummary, lobbySummary(this.participants.size, people.map((p) => p.name)));
    const busy = this.session.busy;
    ui.joinBtn.disabled = busy;
    setText(ui.joinBtn, busy ? "Joining…" : "Join call");

    this.tiles.localTile?.setMedia(state);
    this.controls.render();
    this.prejoin?.applySpeaker(ui.tiles);
  }
}

// ------------------------------------------------------------------- boot

const root = document.getElementById("call-app");
if (root) {
  const call = new Call(root);
  call.start();
  installTestHook(call);
}
