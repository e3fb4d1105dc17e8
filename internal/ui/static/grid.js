// @ts-check
// Where each video tile goes: a grid that fills the space the call has
// (tiles between 4:3 and 2:1, so a camera's 16:9 picture is cropped only a
// little), or one featured tile large (a pinned tile, a screen share, the
// active speaker) with the others in a strip beside or below it. The
// arithmetic is pure (tested in node); StageLayout applies it to the DOM
// whenever the space or the set of tiles changes.

/** Tiles are never narrower than this (width / height)… */
export const MIN_ASPECT = 4 / 3;
/** …except in a portrait area (a phone held upright), where they may be
 * square: six people on a phone then get two columns of three tiles
 * covering most of the screen, not 4:3 tiles leaving bands empty. */
export const PORTRAIT_MIN_ASPECT = 1;
/** …nor wider than this. */
export const MAX_ASPECT = 2;
/** A camera's own shape: strip tiles and a featured camera use it. */
export const VIDEO_ASPECT = 16 / 9;

/**
 * @typedef {{x: number, y: number, w: number, h: number}} Rect
 */

/**
 * Fits a box of an aspect within a cell, clamped to [min, max] aspect.
 * @param {number} cw
 * @param {number} ch
 * @param {number} min
 * @param {number} max
 * @returns {{w: number, h: number}}
 */
function fit(cw, ch, min, max) {
  if (cw <= 0 || ch <= 0) return { w: 0, h: 0 };
  const a = cw / ch;
  if (a > max) return { w: ch * max, h: ch };
  if (a < min) return { w: cw, h: cw / min };
  return { w: cw, h: ch };
}

/**
 * The narrowest tile shape for a W×H area.
 * @param {number} W
 * @param {number} H
 */
export function minAspect(W, H) {
  return H > W ? PORTRAIT_MIN_ASPECT : MIN_ASPECT;
}

/**
 * The grid for n tiles in a W×H area: the column count that makes the
 * tiles largest, rows centred (from the top in a portrait area), the last
 * row's tiles centred.
 * @param {number} n
 * @param {number} W
 * @param {number} H
 * @param {number} gap
 * @returns {Rect[]}
 */
export function gridRects(n, W, H, gap) {
  if (n <= 0 || W <= 0 || H <= 0) return [];
  const min = minAspect(W, H);
  let best = { cols: 1, rows: n, w: 0, h: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const t = fit((W - (cols - 1) * gap) / cols, (H - (rows - 1) * gap) / rows, min, MAX_ASPECT);
    if (t.w * t.h > best.w * best.h + 0.5) best = { cols, rows, ...t };
  }
  const { cols, rows, w, h } = best;
  // Centred; in a portrait area (a phone) from the top, the first video
  // right below the phone's top bar and any spare height above the controls.
  const top = H > W ? 0 : (H - (rows * h + (rows - 1) * gap)) / 2;
  /** @type {Rect[]} */
  const out = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / cols);
    const inRow = row === rows - 1 ? n - row * cols : cols;
    const left = (W - (inRow * w + (inRow - 1) * gap)) / 2;
    out.push({ x: left + (i % cols) * (w + gap), y: top + row * (h + gap), w, h });
  }
  return out;
}

/**
 * One featured tile and a strip of n others: the strip goes to the right
 * in a landscape area, along the bottom in a portrait one.
 * @param {number} n tiles in the strip
 * @param {number} W
 * @param {number} H
 * @param {number} gap
 * @param {number} featuredAspect 0 = fill the featured area (a screen share, drawn contained)
 * @returns {{featured: Rect, strip: Rect[]}}
 */
export function stageRects(n, W, H, gap, featuredAspect) {
  if (W <= 0 || H <= 0) return { featured: { x: 0, y: 0, w: 0, h: 0 }, strip: [] };
  /** @type {Rect[]} */
  const strip = [];
  let area = { x: 0, y: 0, w: W, h: H };
  if (n > 0 && W >= H) {
    // A column on the right, its tiles as large as fit.
    const sw = Math.min(280, Math.max(140, W * 0.22));
    let tw = sw;
    let th = tw / VIDEO_ASPECT;
    if (n * th + (n - 1) * gap > H) { th = (H - (n - 1) * gap) / n; tw = th * VIDEO_ASPECT; }
    const top = (H - (n * th + (n - 1) * gap)) / 2;
    for (let i = 0; i < n; i++) strip.push({ x: W - sw + (sw - tw) / 2, y: top + i * (th + gap), w: tw, h: th });
    area = { x: 0, y: 0, w: W - sw - gap, h: H };
  } else if (n > 0) {
    // A band along the bottom, in as many rows as make its tiles largest:
    // at least a row's height, and in a tall area (a phone) the height the
    // featured camera leaves, up to 45% of it. A strip tile is at most
    // 45% of the width, so the featured tile stays the large one.
    const fh = featuredAspect > 0 ? W / featuredAspect : H * 0.6;
    const sh = Math.max(Math.min(160, Math.max(72, H * 0.18)), Math.min(H - fh - gap, H * 0.45));
    let best = { rows: 1, cols: n, w: 0, h: 0 };
    for (let rows = 1; rows <= n; rows++) {
      const cols = Math.ceil(n / rows);
      let tw = Math.min((W - (cols - 1) * gap) / cols, W * 0.45);
      let th = tw / VIDEO_ASPECT;
      if (rows * th + (rows - 1) * gap > sh) { th = (sh - (rows - 1) * gap) / rows; tw = th * VIDEO_ASPECT; }
      if (tw > best.w + 0.5) best = { rows, cols, w: tw, h: th };
    }
    const { rows, cols, w: tw, h: th } = best;
    const used = rows * th + (rows - 1) * gap;
    for (let i = 0; i < n; i++) {
      const row = Math.floor(i / cols);
      const inRow = row === rows - 1 ? n - row * cols : cols;
      const left = (W - (inRow * tw + (inRow - 1) * gap)) / 2;
      strip.push({ x: left + (i % cols) * (tw + gap), y: H - used + row * (th + gap), w: tw, h: th });
    }
    area = { x: 0, y: 0, w: W, h: H - used - gap };
  }
  let featured = area;
  if (featuredAspect > 0) {
    const f = fit(area.w, area.h, featuredAspect, featuredAspect);
    featured = { x: area.x + (area.w - f.w) / 2, y: area.y + (area.h - f.h) / 2, w: f.w, h: f.h };
    if (n > 0 && W < H && strip.length) {
      // Below it, as the grid: from the top, the strip right under it.
      const shift = Math.min(...strip.map((r) => r.y)) - (featured.h + gap);
      featured = { ...featured, y: 0 };
      for (const r of strip) r.y -= shift;
    }
  }
  return { featured, strip };
}

/**
 * The key a tile is pinned by: "<participant>:camera", "<participant>:screen",
 * "local:camera", "local:screen".
 * @param {HTMLElement} el
 */
export function tileKey(el) {
  const who = el.dataset.participantId || "local";
  return `${who}:${el.dataset.screen === "true" ? "screen" : "camera"}`;
}

/**
 * Which tile is shown large, or null for the plain grid: a pinned tile,
 * else the newest screen share, else (speaker view) the active or last
 * speaker, else the first remote camera.
 * @param {{key: string, screen: boolean, local: boolean}[]} tiles in DOM order
 * @param {{mode: "grid"|"speaker", pinned: string, speaker: string}} o speaker: a tile key
 * @returns {string|null}
 */
export function featuredKey(tiles, o) {
  if (o.pinned && tiles.some((t) => t.key === o.pinned)) return o.pinned;
  const screens = tiles.filter((t) => t.screen && !t.local);
  if (screens.length) return screens[screens.length - 1].key;
  if (o.mode !== "speaker" || tiles.length < 2) return null;
  if (o.speaker && tiles.some((t) => t.key === o.speaker)) return o.speaker;
  return tiles.find((t) => !t.local)?.key ?? tiles[0].key;
}

/** Positions the tiles of a container (absolutely, in CSS pixels). */
export class StageLayout {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    /** @type {"grid"|"speaker"} */
    this.mode = "grid";
    /** Tile key pinned large, "" = none. */
    this.pinned = "";
    /** Tile key of the active (or last) speaker. */
    this.speaker = "";
    this.gap = 8;
    /** Called after each arrangement (featured key or null). */
    /** @type {(featured: string|null) => void} */
    this.onArranged = () => {};
    this.frame = 0;
    const RO = globalThis.ResizeObserver;
    this.resizeObs = RO ? new RO(() => this.schedule()) : null;
    this.resizeObs?.observe(container);
    const MO = globalThis.MutationObserver;
    this.mutationObs = MO ? new MO(() => this.schedule()) : null;
    this.mutationObs?.observe(container, { childList: true });
  }

  schedule() {
    if (this.frame) return;
    const raf = globalThis.requestAnimationFrame ?? ((/** @type {() => void} */ f) => setTimeout(f, 16));
    this.frame = Number(raf(() => { this.frame = 0; this.arrange(); })) || 1;
  }

  arrange() {
    const els = /** @type {HTMLElement[]} */ ([...this.container.children].filter((c) => c.classList.contains("tile")));
    // clientWidth rounds (378.8 → 379): the floor of the real size keeps
    // the last tile from poking a pixel past the area (a phone's width).
    const box = this.container.getBoundingClientRect();
    const W = Math.min(this.container.clientWidth, Math.floor(box.width));
    const H = Math.min(this.container.clientHeight, Math.floor(box.height));
    if (W <= 0 || H <= 0) return; // hidden (the lobby): placed when shown
    const tiles = els.map((el) => ({ el, key: tileKey(el), screen: el.dataset.screen === "true", local: el.classList.contains("local") }));
    const key = featuredKey(tiles, this);
    /** @param {HTMLElement} el @param {Rect} r */
    const place = (el, r) => {
      const s = el.style;
      // Edges rounded, not sizes: a tile ends where its rectangle does.
      const x = Math.round(r.x), y = Math.round(r.y);
      s.left = `${x}px`; s.top = `${y}px`;
      s.width = `${Math.round(r.x + r.w) - x}px`; s.height = `${Math.round(r.y + r.h) - y}px`;
    };
    if (key === null) {
      const rects = gridRects(tiles.length, W, H, this.gap);
      tiles.forEach((t, i) => { place(t.el, rects[i]); delete t.el.dataset.featured; });
    } else {
      const feat = /** @type {typeof tiles[0]} */ (tiles.find((t) => t.key === key));
      const rest = tiles.filter((t) => t !== feat);
      const r = stageRects(rest.length, W, H, this.gap, feat.screen ? 0 : VIDEO_ASPECT);
      place(feat.el, r.featured);
      feat.el.dataset.featured = "true";
      rest.forEach((t, i) => { place(t.el, r.strip[i]); delete t.el.dataset.featured; });
    }
    this.container.dataset.layout = key === null ? "grid" : "featured";
    for (const t of tiles) t.el.dataset.pinned = String(t.key === this.pinned);
    this.onArranged(key);
  }

  /**
   * Pins a tile large, or unpins it.
   * @param {string} key
   */
  togglePin(key) {
    this.pinned = this.pinned === key ? "" : key;
    this.schedule();
  }

  disconnect() {
    this.resizeObs?.disconnect();
    this.mutationObs?.disconnect();
  }
}
