// @ts-check
// What actually arrives from each participant, read from the connections'
// real statistics once a second: packet loss, round-trip time, frame rate,
// the received picture size, and whether media flows at all. The tiles
// show it as a network-quality indicator; the status line uses "flows" to
// say truthfully whether the call continues while the server is away.

/** Poll interval. */
export const STATS_INTERVAL_MS = 1000;
/** No new bytes for this long while something should arrive: stalled. */
export const STALL_MS = 2500;

/**
 * @typedef {object} Quality
 * @property {"good"|"fair"|"poor"|"none"|"unknown"} level
 * @property {string} text  what a screen reader and the tooltip say
 */

/**
 * The quality level for measured numbers.
 * @param {{loss: number, rtt: number|null, fps: number|null, flowing: boolean, video: boolean}} m
 *   loss: fraction 0..1 over the last interval; rtt in seconds; fps of received video (null: no video expected)
 * @returns {Quality}
 */
export function qualityOf(m) {
  if (!m.flowing) return { level: "none", text: "Network quality: nothing is arriving" };
  const parts = [`${Math.round(m.loss * 100)}% loss`];
  if (m.rtt !== null) parts.push(`${Math.round(m.rtt * 1000)} ms round trip`);
  if (m.video && m.fps !== null) parts.push(`${Math.round(m.fps)} frames/s`);
  let level = /** @type {Quality["level"]} */ ("good");
  if (m.loss > 0.1 || (m.rtt !== null && m.rtt > 0.5) || (m.video && m.fps !== null && m.fps < 5)) level = "poor";
  else if (m.loss > 0.02 || (m.rtt !== null && m.rtt > 0.25) || (m.video && m.fps !== null && m.fps < 12)) level = "fair";
  return { level, text: `Network quality: ${level} (${parts.join(", ")})` };
}

/**
 * @typedef {object} Measured  one participant's media, as last measured
 * @property {number} bytes      total bytes received (audio + video)
 * @property {number} lost
 * @property {number} received   packets
 * @property {number} frames     video frames decoded
 * @property {number} width      received picture (0 = none)
 * @property {number} height
 * @property {number} lastGrowth when bytes last grew (Date.now())
 * @property {number} fps
 * @property {number} loss
 * @property {number|null} rtt
 * @property {number} [lastPoll] when this was measured (Date.now())
 */

/**
 * Sums the inbound-rtp entries of a stats report per participant.
 * @param {any[]} stats
 * @param {(trackIdentifier: string, mid: string) => string|null} whose participant id of a track, or null
 * @returns {{byId: Map<string, {bytes: number, lost: number, received: number, frames: number, width: number, height: number}>, rtt: number|null}}
 */
export function sumInbound(stats, whose) {
  const byId = new Map();
  let rtt = null;
  for (const s of stats) {
    if (s.type === "candidate-pair" && s.nominated && typeof s.currentRoundTripTime === "number") rtt = s.currentRoundTripTime;
    if (s.type !== "inbound-rtp") continue;
    const id = whose(String(s.trackIdentifier ?? ""), String(s.mid ?? ""));
    if (!id) continue;
    const o = byId.get(id) ?? { bytes: 0, lost: 0, received: 0, frames: 0, width: 0, height: 0 };
    o.bytes += s.bytesReceived || 0;
    o.lost += Math.max(0, s.packetsLost || 0);
    o.received += s.packetsReceived || 0;
    if (s.kind === "video" && !String(s.trackIdentifier ?? "").endsWith(":screen")) {
      // The camera (the largest picture); a screen share is counted apart.
      o.frames += s.framesDecoded || 0;
      if ((s.frameWidth || 0) > o.width) { o.width = s.frameWidth; o.height = s.frameHeight || 0; }
    }
    byId.set(id, o);
  }
  return { byId, rtt };
}

/** Polls the stats of every connection that carries remote media. */
export class StatsMonitor {
  /**
   * @param {() => {pc: RTCPeerConnection, whose: (track: string, mid: string) => string|null}[]} sources
   *   the connections to read now and how to tell whose a track is
   * @param {(measured: Map<string, Measured>) => void} onUpdate
   */
  constructor(sources, onUpdate) {
    this.sources = sources;
    this.onUpdate = onUpdate;
    /** @type {Map<string, Measured>} */
    this.measured = new Map();
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.timer = undefined;
    this.busy = false;
  }

  start() {
    if (this.timer === undefined) this.timer = setInterval(() => this.poll(), STATS_INTERVAL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
    this.measured.clear();
  }

  async poll() {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      /** @type {Map<string, Measured>} */
      const next = new Map();
      for (const src of this.sources()) {
        let report;
        try {
          report = [...(await src.pc.getStats()).values()];
        } catch {
          continue; // closed meanwhile
        }
        const { byId, rtt } = sumInbound(report, src.whose);
        for (const [id, cur] of byId) {
          const prev = this.measured.get(id);
          const dt = prev ? Math.max(0.001, (now - (prev.lastPoll ?? now - STATS_INTERVAL_MS)) / 1000) : STATS_INTERVAL_MS / 1000;
          const dLost = prev ? Math.max(0, cur.lost - prev.lost) : 0;
          const dRecv = prev ? Math.max(0, cur.received - prev.received) : 0;
          const grew = !prev || cur.bytes > prev.bytes;
          next.set(id, {
            ...cur,
            rtt,
            loss: dLost + dRecv > 0 ? dLost / (dLost + dRecv) : 0,
            fps: prev && cur.frames >= prev.frames ? (cur.frames - prev.frames) / dt : 0,
            lastGrowth: grew ? now : prev.lastGrowth,
            lastPoll: now,
          });
        }
      }
      this.measured = next;
      this.onUpdate(next);
    } finally {
      this.busy = false;
    }
  }
}
