// @ts-check
// Tells the SFU how large each remote video is drawn (docs/protocol.md,
// `layout`), so it forwards the simulcast layer that fits and nothing for
// videos nobody can see. Sizes come from ResizeObserver (the element's box)
// and IntersectionObserver (on screen or not); messages are coalesced.

/** At most this many layout messages per second (protocol limit). */
export const LAYOUT_MAX_PER_SECOND = 4;
/** So: at least this long between two messages. */
export const LAYOUT_MIN_INTERVAL_MS = 1000 / LAYOUT_MAX_PER_SECOND;

/**
 * @typedef {"camera"|"screen"} TileSource
 * @typedef {{participant: string, source: TileSource, width: number, height: number}} LayoutTile
 */

/**
 * Device pixels a video occupies: its CSS box times devicePixelRatio,
 * rounded; 0×0 when it is not visible at all.
 * @param {{width: number, height: number}} box CSS pixels
 * @param {number} dpr
 * @param {boolean} visible intersects the viewport and is displayed
 * @returns {{width: number, height: number}}
 */
export function renderedSize(box, dpr, visible) {
  const w = Math.round((box.width || 0) * (dpr > 0 ? dpr : 1));
  const h = Math.round((box.height || 0) * (dpr > 0 ? dpr : 1));
  if (!visible || w <= 0 || h <= 0) return { width: 0, height: 0 };
  return { width: w, height: h };
}

/**
 * Tiles in a canonical order (participant, then camera before screen), so
 * two layouts compare equal whatever order the DOM had.
 * @param {LayoutTile[]} tiles
 * @returns {LayoutTile[]}
 */
export function sortTiles(tiles) {
  return [...tiles].sort((a, b) =>
    a.participant < b.participant ? -1 : a.participant > b.participant ? 1
      : a.source === b.source ? 0 : a.source === "camera" ? -1 : 1);
}

/**
 * Whether two layouts say the same thing to the server.
 * @param {LayoutTile[]|null} a
 * @param {LayoutTile[]|null} b
 */
export function sameLayout(a, b) {
  if (!a || !b) return a === b;
  if (a.length !== b.length) return false;
  const x = sortTiles(a);
  const y = sortTiles(b);
  return x.every((t, i) => t.participant === y[i].participant && t.source === y[i].source &&
    t.width === y[i].width && t.height === y[i].height);
}

/**
 * How long to wait before a message may go out.
 * @param {number} now
 * @param {number} lastSentAt 0 = never sent
 * @param {number} [minInterval]
 */
export function sendDelay(now, lastSentAt, minInterval = LAYOUT_MIN_INTERVAL_MS) {
  if (!lastSentAt) return 0;
  return Math.max(0, lastSentAt + minInterval - now);
}

/**
 * @typedef {object} Watched
 * @property {string} participant
 * @property {TileSource} source
 * @property {{width: number, height: number}} box  CSS pixels (content box)
 * @property {boolean} onScreen
 */

/** Watches remote videos and reports their sizes while enabled. */
export class LayoutReporter {
  /**
   * @param {(tiles: LayoutTile[]) => boolean} send  sends a layout message; false if not sent
   */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    /** @type {Map<Element, Watched>} */
    this.watched = new Map();
    /** @type {LayoutTile[]|null} */
    this.lastSent = null;
    this.lastSentAt = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    const RO = globalThis.ResizeObserver;
    const IO = globalThis.IntersectionObserver;
    this.resizeObs = RO ? new RO((entries) => {
      for (const e of entries) {
        const w = this.watched.get(e.target);
        if (!w) continue;
        const b = e.contentBoxSize?.[0];
        w.box = b ? { width: b.inlineSize, height: b.blockSize } : { width: e.contentRect.width, height: e.contentRect.height };
      }
      this.schedule();
    }) : null;
    this.visibilityObs = IO ? new IO((entries) => {
      for (const e of entries) {
        const w = this.watched.get(e.target);
        if (w) w.onScreen = e.isIntersecting;
      }
      this.schedule();
    }) : null;
  }

  /**
   * @param {Element} el the video element
   * @param {string} participant
   * @param {TileSource} source
   */
  observe(el, participant, source) {
    if (this.watched.has(el)) return;
    const r = el.getBoundingClientRect?.();
    // Until the observers report, assume what the box says now.
    this.watched.set(el, { participant, source, box: { width: r?.width || 0, height: r?.height || 0 }, onScreen: !this.visibilityObs });
    this.resizeObs?.observe(el);
    this.visibilityObs?.observe(el);
    this.schedule();
  }

  /** @param {Element} el */
  unobserve(el) {
    if (!this.watched.delete(el)) return;
    this.resizeObs?.unobserve(el);
    this.visibilityObs?.unobserve(el);
    this.schedule();
  }

  /** @param {boolean} on report only in SFU mode */
  setEnabled(on) {
    if (this.enabled === on) return;
    this.enabled = on;
    this.lastSent = null; // a new SFU session knows nothing yet
    if (on) this.schedule();
    else { clearTimeout(this.timer); this.timer = undefined; }
  }

  /** Forget what was sent (new socket or session): the next report goes out. */
  reset() {
    this.lastSent = null;
    this.schedule();
  }

  /** @returns {LayoutTile[]} */
  current() {
    const dpr = globalThis.devicePixelRatio || 1;
    return sortTiles([...this.watched.values()].map((w) => ({
      participant: w.participant, source: w.source, ...renderedSize(w.box, dpr, w.onScreen),
    })));
  }

  schedule() {
    if (!this.enabled || this.timer !== undefined) return;
    const wait = sendDelay(Date.now(), this.lastSentAt);
    // Even "now" waits for the end of the task: a burst of observer
    // callbacks (a tile added, the grid reflowing) becomes one message.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  flush() {
    if (!this.enabled) return;
    const tiles = this.current();
    if (sameLayout(tiles, this.lastSent)) return;
    if (this.send(tiles)) {
      this.lastSent = tiles;
      this.lastSentAt = Date.now();
    }
  }

  disconnect() {
    clearTimeout(this.timer);
    this.resizeObs?.disconnect();
    this.visibilityObs?.disconnect();
    this.watched.clear();
  }
}
