// @ts-check
// The call's tiles and their layout: a camera tile per remote participant
// and one per screen share, our own preview, who is outlined as the active
// speaker, who is shown large in a big room, and which tiles carry a
// username because two accounts share a display name. Implements the
// TopologyView that topology.js draws through, and tells the server what
// it draws (layout.js) in SFU mode.

import { Tile } from "./tile.js";
import { showNotice } from "./ui.js";
import { peerStatusText } from "./status.js";
import { LayoutReporter } from "./layout.js";
import { StageLayout, tileKey } from "./grid.js";
import { qualityOf, STALL_MS } from "./netstats.js";

/**
 * @typedef {import("./protocol.js").Participant} Participant
 * @typedef {import("./protocol.js").MediaState} MediaState
 * @typedef {import("./remotes.js").Remote} Remote
 * @typedef {import("./peer.js").PeerState} PeerState
 *
 * @typedef {object} TileViewOptions
 * @property {import("./ui.js").Layout} ui
 * @property {Map<string, Participant>} participants  others in the call
 * @property {(tiles: import("./layout.js").LayoutTile[]) => boolean} sendLayout
 * @property {() => void} onChange  something the page summarises changed
 * @property {(text: string) => void} announce  tells screen-reader users (live region)
 */

/** The call's video tiles. */
export class TileView {
  /** @param {TileViewOptions} o */
  constructor(o) {
    this.ui = o.ui;
    this.participants = o.participants;
    this.onChange = o.onChange;
    this.layout = new LayoutReporter(o.sendLayout);
    /** Camera and screen tiles of each remote participant, by id. */
    /** @type {Map<string, {camera: Tile, screen: Tile|null}>} */
    this.tiles = new Map();
    /** @type {Tile|null} */
    this.localTile = null;
    /** @type {Tile|null} */
    this.localScreenTile = null;
    /** TURN is configured: failure texts need not suggest it. */
    this.hasTurn = false;
    /** Active speaker (server's `speaker`), "" = nobody. */
    this.speaker = "";
    /** The remote shown large in spotlight layout: the last one who spoke. */
    this.spotlit = "";
    this.soundBlocked = false;
    this.announce = o.announce;
    /** Places the tiles: grid, or one large (grid.js). */
    this.stage = new StageLayout(o.ui.tiles);
    this.stage.onArranged = () => this.paintPins();
    /** What each remote's connection says, before the stats are heard. */
    /** @type {Map<string, PeerState>} */
    this.baseState = new Map();
    /** What each remote's tile shows now. */
    /** @type {Map<string, PeerState>} */
    this.painted = new Map();
    /** Remotes from whom nothing arrives although their connection says it is up. */
    /** @type {Set<string>} */
    this.stalled = new Set();
    /**
     * The SFU call lost the server: a failed SFU connection is the call
     * reconnecting, not a firewall (setServerAway).
     */
    this.serverAway = false;
    /** @type {Map<string, Remote>} */
    this.shownRemote = new Map();
    /** Remotes whose media is seen arriving (not merely not stalled). */
    /** @type {Set<string>} */
    this.arriving = new Set();
    /** Last measurement per remote (netstats.js), for the page state. */
    /** @type {Map<string, import("./netstats.js").Measured>} */
    this.measured = new Map();
  }

  /**
   * Wires a tile's pin button.
   * @param {Tile} tile
   */
  pinnable(tile) {
    tile.pinBtn.addEventListener("click", () => this.stage.togglePin(tileKey(tile.el)));
    return tile;
  }

  paintPins() {
    const all = [this.localTile, this.localScreenTile];
    for (const t of this.tiles.values()) all.push(t.camera, t.screen);
    for (const t of all) t?.setPinned(!!this.stage.pinned && tileKey(t.el) === this.stage.pinned);
  }

  /** The grid or the speaker view. @param {"grid"|"speaker"} mode */
  setMode(mode) {
    this.stage.mode = mode;
    this.stage.schedule();
  }

  // ------------------------------------------------- TopologyView methods

  /**
   * @param {Participant} p
   * @returns {Tile}
   */
  createTile(p) {
    const tile = this.pinnable(new Tile({ id: p.id, name: p.name, username: p.username, kind: "camera", local: false }));
    tile.setMedia(p.state);
    tile.onPlayBlocked = () => this.onSoundBlocked();
    this.ui.tiles.append(tile.el);
    this.tiles.set(p.id, { camera: tile, screen: null });
    this.layout.observe(tile.video, p.id, "camera");
    tile.setSpeaking(this.speaker === p.id);
    return tile;
  }

  /**
   * @param {Remote} r
   * @param {MediaStream|null} camera
   * @param {MediaStream|null} screen
   * @param {PeerState} state
   */
  showMedia(r, camera, screen, state) {
    const t = this.tiles.get(r.id);
    if (!t) return;
    if (camera) t.camera.attach(camera);
    else if (t.camera.source) t.camera.detach();
    if (!screen) {
      if (t.screen) {
        this.layout.unobserve(t.screen.video);
        t.screen.remove();
        t.screen = null;
      }
      return;
    }
    if (!t.screen) {
      const name = this.participants.get(r.id)?.name ?? t.camera.name;
      const s = this.pinnable(new Tile({ id: r.id, name, username: t.camera.username, kind: "screen", local: false }));
      t.screen = s;
      t.camera.el.after(s.el);
      this.layout.observe(s.video, r.id, "screen");
      s.setPeerState(state, "");
    }
    t.screen.attach(screen);
  }

  /**
   * @param {Remote} r
   * @param {PeerState} state
   */
  showState(r, state) {
    const t = this.tiles.get(r.id);
    if (!t) return;
    this.baseState.set(r.id, state);
    this.shownRemote.set(r.id, r);
    this.paintState(r);
  }

  /**
   * Whether the server of an SFU call is away (signaling reconnecting):
   * tiles whose connection failed then say they are reconnecting.
   * @param {boolean} away
   */
  setServerAway(away) {
    if (this.serverAway === away) return;
    this.serverAway = away;
    for (const r of this.shownRemote.values()) this.paintState(r);
  }

  /**
   * Shows r's state: what the connection says, unless the stats show that
   * nothing arrives although it claims to be up (the server went away:
   * ICE takes many seconds to notice, the frozen picture does not wait).
   * @param {Remote} r
   */
  paintState(r) {
    const t = this.tiles.get(r.id);
    if (!t) return;
    const base = this.baseState.get(r.id) ?? "new";
    const stalled = base === "connected" && this.stalled.has(r.id);
    const away = this.serverAway && base === "failed";
    const state = stalled || away ? "reconnecting" : base;
    const name = this.participants.get(r.id)?.name ?? t.camera.name;
    const text = stalled
      ? "Nothing is arriving from them — reconnecting…"
      : away ? "The server is away — reconnecting…"
        : peerStatusText(state, { name, gone: r.gone, hasTurn: this.hasTurn });
    t.camera.setPeerState(state, text);
    t.screen?.setPeerState(state, "");
    const before = this.painted.get(r.id);
    this.painted.set(r.id, state);
    if (before === "connected" && (state === "reconnecting" || state === "failed")) {
      this.announce(`${name}'s connection is reconnecting`);
    } else if ((before === "reconnecting" || before === "failed") && state === "connected") {
      this.announce(`${name}'s connection is back`);
    }
  }

  /**
   * New measurements (netstats.js): network quality per tile, and which
   * remotes have stalled.
   * @param {Map<string, import("./netstats.js").Measured>} measured
   * @param {Map<string, Remote>} remotes
   */
  showMeasured(measured, remotes) {
    this.measured = measured;
    const now = Date.now();
    for (const [id, t] of this.tiles) {
      const m = measured.get(id);
      const r = remotes.get(id);
      if (!m || !r) { t.camera.setQuality({ level: "unknown", text: "Network quality: measuring" }); continue; }
      const st = this.participants.get(id)?.state;
      const video = st?.video ?? false;
      // Something should arrive: their microphone, or their camera while
      // we show it (the SFU sends nothing for a tile off screen). Muted with
      // the camera off, silence proves nothing.
      const expected = !!st?.audio || (video && !!this.layout.watched.get(t.camera.video)?.onScreen);
      const flowing = !expected || now - m.lastGrowth < STALL_MS;
      if (expected && flowing) this.arriving.add(id);
      else this.arriving.delete(id);
      t.camera.setQuality(qualityOf({ loss: m.loss, rtt: m.rtt, fps: video && t.camera.video.videoWidth > 0 ? m.fps : null, flowing, video }));
      const was = this.stalled.has(id);
      if (flowing) this.stalled.delete(id);
      else this.stalled.add(id);
      if (was !== !flowing) this.paintState(r);
    }
  }

  /** Whether media is seen arriving from anyone (false with nobody sending). */
  anyFlowing() {
    for (const id of this.tiles.keys()) if (this.arriving.has(id)) return true;
    return false;
  }

  /** @param {Remote} r */
  removeTiles(r) {
    const t = this.tiles.get(r.id);
    if (!t) return;
    this.tiles.delete(r.id);
    this.layout.unobserve(t.camera.video);
    if (t.screen) this.layout.unobserve(t.screen.video);
    t.screen?.remove();
    t.camera.remove();
    if (this.spotlit === r.id) this.spotlit = "";
    this.baseState.delete(r.id);
    this.shownRemote.delete(r.id);
    this.painted.delete(r.id);
    this.stalled.delete(r.id);
    this.arriving.delete(r.id);
  }

  /** @param {boolean} on */
  setLayoutEnabled(on) { this.layout.setEnabled(on); }

  layoutReset() { this.layout.reset(); }

  clearSpeaker() { this.showSpeaker("", null); }

  changed() { this.onChange(); }

  // ------------------------------------------------------------- remotes

  /**
   * A remote's name or state changed.
   * @param {string} id
   * @param {Participant} p
   */
  setParticipant(id, p) {
    const t = this.tiles.get(id);
    if (!t) return;
    t.camera.setName(p.name, p.username);
    t.camera.setMedia(p.state);
    t.screen?.setName(p.name, p.username);
  }

  /**
   * Keeps usernames visible on the tiles of accounts that share a display
   * name with another account in the call.
   * @param {Set<string>} dups display names as ui.js nameKey
   * @param {(name: string) => string} key ui.js nameKey
   */
  markDuplicates(dups, key) {
    for (const [id, t] of this.tiles) {
      const dup = dups.has(key(this.participants.get(id)?.name ?? t.camera.name));
      t.camera.setDuplicate(dup);
      t.screen?.setDuplicate(dup);
    }
  }

  /**
   * The server's active speaker (SFU mode): outline their tile; in a big
   * room, show the last speaker large.
   * @param {string} id "" = nobody
   * @param {string|null} myId
   */
  showSpeaker(id, myId) {
    this.speaker = id;
    for (const [rid, t] of this.tiles) t.camera.setSpeaking(rid === id);
    this.localTile?.setSpeaking(!!id && id === myId);
    if (id && this.tiles.has(id)) this.spotlit = id;
    else if (id && id === myId) this.spotlit = "local";
    this.relayout();
  }

  /** The speaker view shows the last speaker large. */
  relayout() {
    if (this.spotlit && this.spotlit !== "local" && !this.tiles.has(this.spotlit)) this.spotlit = "";
    this.stage.speaker = this.spotlit ? `${this.spotlit}:camera` : "";
    this.stage.schedule();
  }

  onSoundBlocked() {
    if (this.soundBlocked) return;
    this.soundBlocked = true;
    showNotice(this.ui, "Your browser blocked the call's sound. Click anywhere on the page or press a key to hear the others.");
    const resume = () => {
      this.soundBlocked = false;
      document.removeEventListener("pointerdown", resume, true);
      document.removeEventListener("keydown", resume, true);
      for (const t of this.tiles.values()) t.camera.play();
      showNotice(this.ui, "");
    };
    document.addEventListener("pointerdown", resume, true);
    document.addEventListener("keydown", resume, true);
  }

  // --------------------------------------------------------------- local

  /**
   * Our camera preview, first among the tiles.
   * @param {MediaStream} stream
   * @param {string} name
   */
  showLocal(stream, name) {
    if (this.localTile) return;
    this.localTile = this.pinnable(new Tile({ id: null, name, kind: "camera", local: true }));
    this.ui.tiles.prepend(this.localTile.el);
    this.localTile.attach(stream);
  }

  /**
   * Our screen share's preview, after our camera.
   * @param {MediaStream} stream
   * @param {string} name
   */
  showLocalScreen(stream, name) {
    this.localScreenTile?.remove();
    this.localScreenTile = this.pinnable(new Tile({ id: null, name, kind: "screen", local: true }));
    if (this.localTile) this.localTile.el.after(this.localScreenTile.el);
    else this.ui.tiles.prepend(this.localScreenTile.el);
    this.localScreenTile.attach(stream);
  }

  removeLocalScreen() {
    this.localScreenTile?.remove();
    this.localScreenTile = null;
  }

  removeLocal() {
    this.removeLocalScreen();
    this.localTile?.remove();
    this.localTile = null;
  }
}
