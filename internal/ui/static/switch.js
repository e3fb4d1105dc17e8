// @ts-check
// The switch between mesh and SFU (docs/protocol.md, "SFU topology": the
// switch must not interrupt media for more than a second). When the
// server moves the room, each remote's tiles keep showing the old path
// until the new one decodes frames for that participant, then swap tracks
// in place (tile.js Tile.attach); the old path is retired a little later.
// Every switch is measured (the gap in each remote's video) for the
// browser tests and the console.

import { isPolite } from "./peer.js";
import { cameraSource, switchDone, framesDecoded } from "./remotes.js";

/** How often a switching tile checks whether the new path decodes frames. */
export const SWAP_POLL_MS = 100;

/** A switch gives up waiting for the new path after this long and swaps anyway (the old path is going away regardless). */
export const SWITCH_DEADLINE_MS = 8000;

/** A participant who sends no video counts as switched once the new path has their stream, or after this long. */
export const NO_VIDEO_GRACE_MS = 1500;

/**
 * @typedef {import("./protocol.js").Topology} Topology
 * @typedef {import("./remotes.js").Remote} Remote
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

/** Carries out topology changes on a MediaPaths (topology.js). */
export class Switcher {
  /** @param {import("./topology.js").MediaPaths} paths */
  constructor(paths) {
    this.p = paths;
    /** @type {SwitchRecord|null} */
    this.lastSwitch = null;
  }

  /** A participant left: a switch no longer waits for them. */
  left() {
    const rec = this.lastSwitch;
    if (rec && !rec.done) rec.done = switchDone(rec, (id) => this.p.remotes.has(id));
  }

  /**
   * Moves media to the given path. Tiles keep showing the old path until
   * the new one decodes frames for them (see watchSwap).
   * @param {Topology} to
   */
  apply(to) {
    const p = this.p;
    const from = p.current;
    p.current = to;
    p.view.setLayoutEnabled(to === "sfu");
    if (to === "sfu") {
      // The server retires SFU connections when the room goes back to the
      // mesh and makes new ones when it comes back: a lingering session of
      // ours has nobody left on the other end.
      if (from !== "sfu") p.sfuPath.close();
      p.sfuPath.ensure();
    } else {
      p.maybeRetireSfu();
      p.view.clearSpeaker();
    }
    if (from === to) return;

    /** @type {string[]} */
    const pending = [];
    const myId = p.d.myId() ?? "";
    for (const r of p.remotes.values()) {
      if (r.shown === to) continue; // the path lingered and is still in use
      if (to === "mesh") p.ensureMeshPeer(r, !isPolite(myId, r.id));
      else p.pickUpSfuStreams(r);
      if (this.showsMedia(r)) {
        pending.push(r.id);
        this.watchSwap(r);
      } else {
        this.swap(r); // nothing on the old path worth waiting for
      }
    }
    if (p.remotes.size > 0) {
      this.lastSwitch = { from, to, startedAt: Date.now(), pending, perPeer: {}, maxGapMs: null, done: pending.length === 0 };
    }
    p.view.changed();
  }

  /**
   * Whether r's tiles show media that is still arriving on their path.
   * @param {Remote} r
   */
  showsMedia(r) {
    if (!r.tile.source || r.tile.source.getTracks().length === 0) return false;
    return this.p.pathConnectionState(r, r.shown) === "connected";
  }

  /**
   * A switching tile polls until the path the room moved to decodes
   * frames for this participant, then swaps.
   * @param {Remote} r
   */
  watchSwap(r) {
    if (r.swapTimer !== undefined) return;
    const tick = async () => {
      const target = this.p.current;
      let ready = false;
      try {
        ready = await this.pathReady(r, target);
      } catch (err) {
        console.warn("parley: checking the new media path failed", err);
      }
      r.swapTimer = undefined;
      if (this.p.remotes.get(r.id) !== r || r.shown === this.p.current) return;
      const late = Date.now() - (this.lastSwitch?.startedAt ?? 0) > SWITCH_DEADLINE_MS;
      if (target === this.p.current && (ready || late)) {
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
    const cam = cameraSource(r, path);
    if (!cam) return false;
    const sendsVideo = this.p.d.participants.get(r.id)?.state.video ?? true;
    const track = cam.getVideoTracks().find((t) => t.readyState === "live");
    if (!sendsVideo || !track) {
      if (sendsVideo) return false;
      const waited = Date.now() - (this.lastSwitch?.startedAt ?? 0);
      return cam.getTracks().length > 0 || waited > NO_VIDEO_GRACE_MS;
    }
    const pc = path === "mesh" ? r.peer?.pc : this.p.sfu?.sub;
    const receiver = pc?.getReceivers().find((x) => x.track === track);
    if (!receiver) return false;
    const frames = await framesDecoded(receiver);
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
    const p = this.p;
    const to = p.current;
    if (from === to) return;
    clearTimeout(r.swapTimer);
    r.swapTimer = undefined;
    r.swapProbe = null;
    const lastOld = r.tile.lastFrameAt;
    const rec = this.lastSwitch;
    const measured = !!rec && rec.to === to && rec.pending.includes(r.id) && !(r.id in rec.perPeer);
    r.shown = to;
    p.renderMedia(r);
    p.update(r);
    if (rec && measured) {
      // Camera off: black frames on the mesh, nothing from the SFU; no
      // picture to pause.
      const sendsVideo = p.d.participants.get(r.id)?.state.video ?? true;
      if (!lastOld || !sendsVideo) this.recordGap(rec, r.id, null);
      else r.tile.nextFrame(3000).then((t) => this.recordGap(rec, r.id, Math.round((t ?? performance.now()) - lastOld)));
    }
    if (from === "mesh") p.retireMesh(r);
    else p.maybeRetireSfu();
  }

  /**
   * @param {SwitchRecord} rec
   * @param {string} id
   * @param {number|null} gap
   */
  recordGap(rec, id, gap) {
    rec.perPeer[id] = gap;
    const gaps = Object.values(rec.perPeer).filter((g) => typeof g === "number");
    rec.maxGapMs = gaps.length ? Math.max(...gaps) : null;
    rec.done = switchDone(rec, (id) => this.p.remotes.has(id));
    if (gap !== null) console.info(`parley: ${rec.from} → ${rec.to} for ${id}: video paused ${gap} ms`);
  }

  /** The last topology switch, copied (tests read it). */
  report() {
    const s = this.lastSwitch;
    if (!s) return null;
    return { from: s.from, to: s.to, maxGapMs: s.maxGapMs, perPeer: { ...s.perPeer }, pending: [...s.pending], done: s.done };
  }
}
