// @ts-check
// Draws the studio: the current song's tracks, each with its mix controls,
// record button and takes (waveform at the take's offset on the timeline).
// It only builds DOM; what the buttons do comes in as callbacks.

import { el, formatTime } from "./dom.js";
import { drawPeaks } from "./waveform.js";

/**
 * @typedef {import("./api.js").Song} Song
 * @typedef {import("./api.js").Track} Track
 * @typedef {import("./api.js").Take} Take
 * @typedef {{
 *   userId: string, owner: boolean, recordingTrack: string, recordingTake: string,
 *   mix: (trackId: string) => {volume: number, muted: boolean, solo: boolean},
 *   onMix: (trackId: string, change: {volume?: number, muted?: boolean, solo?: boolean}) => void,
 *   onRecord: (trackId: string) => void, onStopRecording: () => void,
 *   onRenameTrack: (t: Track) => void, onMoveTrack: (t: Track, by: number) => void, onDeleteTrack: (t: Track) => void,
 *   onChoose: (t: Track, take: Take) => void, onDeleteTake: (take: Take) => void,
 *   downloadURL: (take: Take) => string,
 * }} TrackActions
 */

/** Waveform colours by take state. */
const COLORS = { done: "#2b6cb0", interrupted: "#b7791f", recording: "#c53030" };

/**
 * The song's length as drawn: to the end of its last take, at least 30 s.
 * @param {Song|undefined} song
 */
export function songLength(song) {
  let end = 30;
  for (const t of song?.tracks || []) {
    for (const k of t.takes) end = Math.max(end, (k.offsetMs + k.durationMs) / 1000 + 5);
  }
  return Math.ceil(end);
}

/**
 * A take's one-line description.
 * @param {Take} k
 */
export function takeLabel(k) {
  const state = k.state === "recording" ? "recording…" : k.state === "interrupted" ? "interrupted" : "";
  return [k.userName, formatTime(k.durationMs / 1000), "at " + formatTime(k.offsetMs / 1000), state].filter(Boolean).join(" · ");
}

/**
 * Places a take's canvas on its lane.
 * @param {HTMLElement} canvas
 * @param {Take} k
 * @param {number} len song length in seconds
 */
export function placeOnLane(canvas, k, len) {
  canvas.style.left = ((k.offsetMs / 1000 / len) * 100).toFixed(3) + "%";
  canvas.style.width = (Math.max(0.3, (k.durationMs / 1000 / len) * 100)).toFixed(3) + "%";
}

/**
 * Draws the tracks of a song into container.
 * @param {HTMLElement} container
 * @param {Song|undefined} song
 * @param {TrackActions} a
 * @param {(take: Take, canvas: HTMLCanvasElement) => void} drawTake fills a take's canvas
 */
export function renderTracks(container, song, a, drawTake) {
  container.replaceChildren();
  if (!song) {
    container.append(el("p", { className: "muted-text" }, ["No song yet: add one above."]));
    return;
  }
  const len = songLength(song);
  container.dataset.songLength = String(len);
  for (const t of song.tracks) {
    const mix = a.mix(t.id);
    const recordingHere = a.recordingTrack === t.id;
    const head = el("div", { className: "track-head" }, [
      el("strong", { className: "track-name" }, [t.name]),
      el("button", { className: "btn btn-small", type: "button", onclick: () => a.onRenameTrack(t) }, ["Rename"]),
      el("button", { className: "btn btn-small", type: "button", attrs: { "aria-label": "Move " + t.name + " up" }, onclick: () => a.onMoveTrack(t, -1) }, ["↑"]),
      el("button", { className: "btn btn-small", type: "button", attrs: { "aria-label": "Move " + t.name + " down" }, onclick: () => a.onMoveTrack(t, 1) }, ["↓"]),
      el("button", { className: "btn btn-small btn-danger", type: "button", onclick: () => a.onDeleteTrack(t) }, ["Delete track"]),
      el("label", {}, [el("input", { type: "checkbox", className: "mute", checked: mix.muted, onchange: (/** @type {Event} */ e) => a.onMix(t.id, { muted: /** @type {HTMLInputElement} */ (e.target).checked }) }), " Mute"]),
      el("label", {}, [el("input", { type: "checkbox", className: "solo", checked: mix.solo, onchange: (/** @type {Event} */ e) => a.onMix(t.id, { solo: /** @type {HTMLInputElement} */ (e.target).checked }) }), " Solo"]),
      el("label", {}, ["Volume ", el("input", { type: "range", className: "volume", min: "0", max: "1.5", step: "0.05", value: String(mix.volume),
        oninput: (/** @type {Event} */ e) => a.onMix(t.id, { volume: Number(/** @type {HTMLInputElement} */ (e.target).value) }) })]),
      recordingHere
        ? el("button", { className: "btn btn-danger record-btn recording", type: "button", onclick: () => a.onStopRecording() }, ["■ Stop recording"])
        : el("button", { className: "btn btn-primary record-btn", type: "button", disabled: !!a.recordingTrack, onclick: () => a.onRecord(t.id) }, ["● Record"]),
    ]);
    const takes = el("ul", { className: "takes list" });
    for (const k of t.takes) {
      const canvas = /** @type {HTMLCanvasElement} */ (el("canvas", { className: "wave", width: 600, height: 40 }));
      placeOnLane(canvas, k, len);
      const mayDelete = k.userId === a.userId || a.owner;
      takes.append(el("li", { className: "take", dataset: { takeId: k.id, state: k.state } }, [
        el("label", { className: "choose" }, [
          el("input", { type: "radio", name: "chosen-" + t.id, checked: t.chosenTake === k.id, onchange: () => a.onChoose(t, k) }),
          el("span", { className: "take-label" }, [takeLabel(k)]),
        ]),
        el("div", { className: "lane" }, [canvas]),
        // A fixed-width box, so every lane of the song has the same scale.
        el("span", { className: "take-actions" }, [
          k.state === "recording" ? null : el("a", { className: "btn btn-small download", href: a.downloadURL(k), download: "" }, ["Download"]),
          mayDelete ? el("button", { className: "btn btn-small btn-danger delete-take", type: "button", onclick: () => a.onDeleteTake(k) }, ["Delete"]) : null,
        ]),
      ]));
      drawTake(k, canvas);
    }
    container.append(el("section", { className: "track card", dataset: { trackId: t.id } }, [head, takes]));
  }
}

/**
 * Draws a take still recording: its recorder's levels when this page
 * records it, else a bar as long as what has arrived.
 * @param {HTMLCanvasElement} canvas
 * @param {number[]|null} levels
 */
export function drawLive(canvas, levels) {
  drawPeaks(canvas, levels && levels.length ? levels : [0.5], COLORS.recording);
}

export { COLORS };
