// @ts-check
// The synced player of a recording: every participant's video in a grid
// and every audio file mixed through Web Audio, all on one timeline. Each
// file starts at its place on the recording's timeline (manifest
// start_ms); one clock (the AudioContext's, or the wall clock) drives
// them, and elements that drift more than a tenth of a second are put back.

import { h } from "./ui.js";

/**
 * @typedef {{url: string, kind: string, startMs: number, label: string}} Track
 */

/** Plays a recording's files together. */
export class SyncedPlayer {
  /**
   * @param {HTMLElement} box
   * @param {number} durationMs
   * @param {Track[]} tracks
   */
  constructor(box, durationMs, tracks) {
    this.durationMs = durationMs;
    this.ctx = new AudioContext();
    this.mix = this.ctx.createGain();
    /** The mixed audio, for level meters (and tests). */
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 8192;
    this.mix.connect(this.analyser);
    this.analyser.connect(this.ctx.destination);
    /** @type {{el: HTMLMediaElement, startMs: number}[]} */
    this.items = [];
    const grid = h("div", { class: "tiles player-grid" });
    for (const t of tracks) {
      const el = /** @type {HTMLMediaElement} */ (h(t.kind === "video" ? "video" : "audio", { src: t.url, preload: "auto", playsinline: true }));
      el.muted = t.kind === "video"; // video files have no sound
      if (t.kind === "video") {
        grid.append(h("figure", { class: "tile" }, el, h("figcaption", {}, t.label)));
      } else {
        this.ctx.createMediaElementSource(el).connect(this.mix);
      }
      this.items.push({ el, startMs: t.startMs });
    }
    this.playing = false;
    this.offset = 0; // seconds on the timeline when the clock started
    this.clockStart = 0;
    this.playBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn", onclick: () => (this.playing ? this.pause() : this.play()) }, "Play"));
    this.seekBar = /** @type {HTMLInputElement} */ (h("input", {
      type: "range", min: "0", max: String(durationMs / 1000), step: "0.1", value: "0", "aria-label": "Position",
      oninput: () => this.seek(Number(this.seekBar.value)),
    }));
    box.replaceChildren(h("h2", {}, "Player"), grid, h("div", { class: "player-controls" }, this.playBtn, this.seekBar));
    this.timer = setInterval(() => this.sync(), 100);
  }

  /** The timeline position, in seconds. */
  position() {
    return this.playing ? this.offset + (performance.now() - this.clockStart) / 1000 : this.offset;
  }

  async play() {
    await this.ctx.resume();
    this.clockStart = performance.now();
    this.playing = true;
    this.playBtn.textContent = "Pause";
    this.sync();
  }

  pause() {
    this.offset = this.position();
    this.playing = false;
    this.playBtn.textContent = "Play";
    for (const { el } of this.items) el.pause();
  }

  /** @param {number} sec */
  seek(sec) {
    this.offset = Math.max(0, Math.min(sec, this.durationMs / 1000));
    this.clockStart = performance.now();
    for (const it of this.items) it.el.currentTime = Math.max(0, this.offset - it.startMs / 1000);
    this.sync();
  }

  /** Keeps every element where the timeline says it should be. */
  sync() {
    const pos = this.position();
    if (pos * 1000 >= this.durationMs && this.playing) this.pause();
    this.seekBar.value = String(pos);
    for (const { el, startMs } of this.items) {
      const local = pos - startMs / 1000;
      const inside = local >= 0 && (!Number.isFinite(el.duration) || local < el.duration);
      if (!this.playing || !inside) {
        if (!el.paused) el.pause();
        continue;
      }
      if (Math.abs(el.currentTime - local) > 0.1) el.currentTime = local;
      if (el.paused) void el.play().catch(() => {});
    }
  }

  close() {
    clearInterval(this.timer);
    for (const { el } of this.items) { el.pause(); el.removeAttribute("src"); }
    void this.ctx.close();
  }
}
