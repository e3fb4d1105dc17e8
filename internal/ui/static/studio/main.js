// @ts-check
// The studio page (docs/studio.md): loads the channel's studio, keeps it
// fresh from the channel's WebSocket, records takes while uploading them
// in chunks, and plays, overdubs and mixes the song.

import { StudioAPI, ApiError } from "./api.js";
import { ChunkUploader } from "./uploader.js";
import { listInputs, openMic, LevelMeter, TakeRecorder, estimateLatencyMs } from "./recorder.js";
import { Player, takeStartSec } from "./player.js";
import { peaks, drawPeaks } from "./waveform.js";
import { renderMix, encodeWAV, toneAmplitude } from "./mixdown.js";
import { StudioSocket } from "./live.js";
import { el, formatTime, formatBytes } from "./dom.js";
import { renderTracks, drawLive, placeOnLane, takeLabel, songLength, COLORS } from "./render.js";

/**
 * @typedef {import("./api.js").Take} Take
 * @typedef {import("./api.js").Track} Track
 * @typedef {import("./api.js").Song} Song
 * @typedef {import("./api.js").StudioView} StudioView
 * @typedef {import("../protocol.js").StudioEvent} StudioEvent
 * @typedef {{take: Take, trackId: string, recorder: TakeRecorder, uploader: ChunkUploader, levels: number[], sent: number, stopping?: boolean}} Recording
 */

const root = /** @type {HTMLElement} */ (document.getElementById("studio-app"));
const channelId = root.dataset.channelId || "";
const userId = root.dataset.userId || "";
const owner = root.dataset.owner === "true";

const api = new StudioAPI(channelId);
const ctx = new AudioContext({ latencyHint: "interactive" });
const player = new Player(ctx, (id) => api.audioURL(id));

const state = {
  /** @type {StudioView|null} */ view: null,
  songId: localStorage.getItem("parley-studio-song-" + channelId) || "",
  /** @type {MediaStream|null} */ mic: null,
  /** @type {LevelMeter|null} */ meter: null,
  /** @type {Recording|null} */ rec: null,
  /** when this page last learnt each live take's length: take id → {ms, at (performance.now())} */
  /** @type {Map<string, {ms: number, at: number}>} */ liveSeen: new Map(),
  /** @type {Map<string, Float32Array>} */ peaks: new Map(),
  /** levels of takes recorded elsewhere, from their progress messages */
  /** @type {Map<string, number[]>} */ liveLevels: new Map(),
  connected: false,
  loaded: false,
};

// --- the page's fixed parts ---
const micSelect = /** @type {HTMLSelectElement} */ (el("select", { id: "mic-select", onchange: () => reopenMic() }));
const musicMode = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", id: "music-mode", checked: true, onchange: () => reopenMic() }));
const meterEl = /** @type {HTMLMeterElement} */ (el("meter", { id: "level-meter", min: 0, max: 1, value: 0, attrs: { "aria-label": "Input level" } }));
const latencyEl = el("span", { id: "latency", className: "muted-text" });
const timeEl = el("output", { id: "time" }, ["0:00.0"]);
const seek = /** @type {HTMLInputElement} */ (el("input", { type: "range", id: "seek", min: "0", max: "30", step: "0.1", value: "0", attrs: { "aria-label": "Playhead" },
  oninput: () => player.seek(Number(seek.value)) }));
const mixLink = /** @type {HTMLAnchorElement} */ (el("a", { id: "mixdown-link", className: "btn btn-small", download: "mixdown.wav", hidden: true }, ["Download mixdown"]));
const status = el("p", { id: "studio-status", attrs: { role: "status" } });
const usage = el("span", { id: "studio-usage", className: "muted-text" });
const songSelect = /** @type {HTMLSelectElement} */ (el("select", { id: "song-select", onchange: () => { selectSong(songSelect.value); } }));
const newSong = /** @type {HTMLInputElement} */ (el("input", { id: "new-song-name", placeholder: "New song", attrs: { "aria-label": "New song name" } }));
const newTrack = /** @type {HTMLInputElement} */ (el("input", { id: "new-track-name", placeholder: "New track, e.g. Drums", attrs: { "aria-label": "New track name" } }));
const tracksEl = el("div", { id: "tracks" });

root.append(
  el("section", { className: "card studio-controls" }, [
    el("div", { className: "row" }, [
      el("label", {}, ["Microphone ", micSelect]),
      el("label", {}, [musicMode, " Music input (no echo cancellation, noise suppression or auto gain; stereo)"]),
      meterEl, latencyEl,
    ]),
    el("div", { className: "row transport" }, [
      el("button", { id: "play-btn", className: "btn", type: "button", onclick: () => play() }, ["▶ Play"]),
      el("button", { id: "stop-btn", className: "btn", type: "button", onclick: () => player.stop() }, ["■ Stop"]),
      el("button", { id: "rewind-btn", className: "btn", type: "button", attrs: { "aria-label": "Back to the start" }, onclick: () => player.seek(0) }, ["|◀ Start"]),
      seek, timeEl,
      el("button", { id: "mixdown-btn", className: "btn", type: "button", onclick: () => mixdown().catch(show) }, ["Mixdown (WAV)"]),
      mixLink,
    ]),
    status, usage,
  ]),
  el("section", { className: "card" }, [
    el("div", { className: "row" }, [el("label", {}, ["Song ", songSelect]),
      el("button", { id: "rename-song-btn", className: "btn btn-small", type: "button", onclick: () => renameSong() }, ["Rename song"]),
      el("button", { id: "delete-song-btn", className: "btn btn-small btn-danger", type: "button", onclick: () => deleteSong() }, ["Delete song"])]),
    el("form", { id: "new-song-form", className: "row", onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); addSong(); } }, [newSong, el("button", { className: "btn", id: "new-song-btn" }, ["Add song"])]),
  ]),
  tracksEl,
  el("form", { id: "new-track-form", className: "row", onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); addTrack(); } }, [newTrack, el("button", { className: "btn", id: "new-track-btn" }, ["Add track"])]),
);

/** @param {unknown} err */
function show(err) {
  const msg = err instanceof Error ? err.message : String(err);
  status.textContent = msg;
  status.dataset.kind = "error";
}

/** @param {string} msg */
function info(msg) {
  status.textContent = msg;
  status.dataset.kind = "info";
}

/** @returns {Song|undefined} */
function currentSong() {
  return state.view?.songs.find((s) => s.id === state.songId);
}

/** @param {string} id */
function selectSong(id) {
  state.songId = id;
  localStorage.setItem("parley-studio-song-" + channelId, id);
  player.stop();
  render();
}

// --- loading and live updates ---

let refreshTimer = /** @type {ReturnType<typeof setTimeout>|undefined} */ (undefined);
/** Refetches the studio soon (several events in a burst make one fetch). */
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(show), 50);
}

async function refresh() {
  const v = await api.view();
  state.view = v;
  if (!v.songs.some((s) => s.id === state.songId)) state.songId = v.songs[0]?.id || "";
  for (const s of v.songs) for (const t of s.tracks) for (const k of t.takes) {
    if (k.state === "recording" && !state.liveSeen.has(k.id)) state.liveSeen.set(k.id, { ms: k.durationMs, at: performance.now() });
  }
  state.loaded = true;
  render();
}

/** @param {StudioEvent} ev */
function onEvent(ev) {
  if (ev.event === "take-added" && ev.take) state.liveSeen.set(ev.take, { ms: 0, at: performance.now() });
  if (ev.event === "take-progress" && ev.take) {
    state.liveSeen.set(ev.take, { ms: ev.durationMs || 0, at: performance.now() });
    if (ev.levels?.length) {
      const lv = state.liveLevels.get(ev.take) || [];
      lv.push(...ev.levels);
      state.liveLevels.set(ev.take, lv);
    }
    const k = findTake(ev.take);
    if (k) {
      k.durationMs = ev.durationMs || k.durationMs;
      k.bytes = ev.bytes || k.bytes;
      k.chunks = ev.chunks || k.chunks;
      updateTakeRow(k);
      return;
    }
  }
  refreshSoon();
}

/** @param {string} id */
function findTake(id) {
  for (const s of state.view?.songs || []) for (const t of s.tracks) for (const k of t.takes) if (k.id === id) return k;
  return undefined;
}

/**
 * Redraws one take's label and lane (progress of a live take).
 * @param {Take} k
 */
function updateTakeRow(k) {
  const row = tracksEl.querySelector(`li.take[data-take-id="${CSS.escape(k.id)}"]`);
  if (!row) return refreshSoon();
  const label = row.querySelector(".take-label");
  if (label) label.textContent = takeLabel(k);
  const canvas = /** @type {HTMLCanvasElement|null} */ (row.querySelector("canvas.wave"));
  if (canvas) {
    placeOnLane(canvas, k, Number(tracksEl.dataset.songLength) || songLength(currentSong()));
    drawTake(k, canvas);
  }
}

/**
 * Fills a take's canvas: peaks once decoded, live levels while recording.
 * @param {Take} k
 * @param {HTMLCanvasElement} canvas
 */
function drawTake(k, canvas) {
  if (k.state === "recording") {
    drawLive(canvas, state.rec?.take.id === k.id ? state.rec.levels : state.liveLevels.get(k.id) || null);
    return;
  }
  const key = k.id + ":" + k.bytes;
  const p = state.peaks.get(key);
  if (p) {
    drawPeaks(canvas, p, COLORS[k.state] || COLORS.done);
    canvas.dataset.drawn = "1";
    return;
  }
  player.buffer(k).then((buf) => {
    const pk = peaks(buf, 300);
    state.peaks.set(key, pk);
    drawPeaks(canvas, pk, COLORS[k.state] || COLORS.done);
    canvas.dataset.drawn = "1";
  }).catch(() => { /* an empty or undecodable take stays blank */ });
}

function render() {
  const v = state.view;
  if (!v) return;
  songSelect.replaceChildren(...v.songs.map((s) => el("option", { value: s.id, selected: s.id === state.songId }, [s.name + " (by " + s.creatorName + ")"])));
  usage.textContent = "Studio storage: " + formatBytes(v.usedBytes) + " of " + formatBytes(v.quotaBytes);
  const song = currentSong();
  seek.max = String(songLength(song));
  renderTracks(tracksEl, song, {
    userId, owner,
    recordingTrack: state.rec?.trackId || "",
    recordingTake: state.rec?.take.id || "",
    mix: (id) => player.track(id),
    onMix: (id, change) => player.setMix(id, change),
    onRecord: (id) => record(id).catch((err) => { show(err); state.rec = null; render(); }),
    onStopRecording: () => stopRecording().catch(show),
    onRenameTrack: (t) => { const n = prompt("Track name", t.name); if (n) api.updateTrack(t.id, { name: n }).catch(show); },
    onMoveTrack: (t, by) => api.updateTrack(t.id, { position: Math.max(0, t.position + by) }).catch(show),
    onDeleteTrack: (t) => { if (confirm("Delete the track " + t.name + " and its takes?")) api.deleteTrack(t.id).catch(show); },
    onChoose: (t, k) => api.choose(t.id, k.id).catch(show),
    onDeleteTake: (k) => { if (confirm("Delete this take? Its file is removed.")) api.deleteTake(k.id).catch(show); },
    downloadURL: (k) => api.audioURL(k.id, true),
  }, drawTake);
}

// --- songs and tracks ---

async function addSong() {
  const name = newSong.value.trim();
  if (!name) return;
  try {
    const s = await api.createSong(name);
    newSong.value = "";
    state.songId = s.id;
    await refresh();
  } catch (err) { show(err); }
}

async function addTrack() {
  const name = newTrack.value.trim();
  if (!name || !state.songId) return show(new Error("add a song first, then its tracks"));
  try {
    await api.createTrack(state.songId, name);
    newTrack.value = "";
    await refresh();
  } catch (err) { show(err); }
}

function renameSong() {
  const s = currentSong();
  const n = s && prompt("Song name", s.name);
  if (s && n) api.renameSong(s.id, n).catch(show);
}

function deleteSong() {
  const s = currentSong();
  if (s && confirm("Delete the song " + s.name + " with all its tracks and takes?")) api.deleteSong(s.id).catch(show);
}

// --- the microphone ---

async function reopenMic() {
  state.meter?.disconnect();
  state.mic?.getTracks().forEach((t) => t.stop());
  state.mic = await openMic(micSelect.value, musicMode.checked);
  state.meter = new LevelMeter(ctx, state.mic);
  latencyEl.textContent = "latency ≈ " + estimateLatencyMs(ctx, state.mic) + " ms";
  const inputs = await listInputs();
  const chosen = micSelect.value;
  micSelect.replaceChildren(...inputs.map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === chosen }, [d.label || "Microphone " + (i + 1)])));
}

// --- playing ---

/**
 * What plays for a song: each track's chosen take (else its newest), and
 * every take being recorded by someone else, heard live.
 * @param {Song|undefined} song
 * @param {string} [skip] a take not to play (the one this page records)
 * @returns {Take[]}
 */
function playable(song, skip) {
  /** @type {Take[]} */
  const out = [];
  for (const t of song?.tracks || []) {
    const pick = t.takes.find((k) => k.id === t.chosenTake) || t.takes[t.takes.length - 1];
    if (pick && pick.id !== skip) out.push(pick);
    for (const k of t.takes) if (k.state === "recording" && k !== pick && k.id !== skip) out.push(k);
  }
  return out;
}

async function play() {
  await player.play(player.position(), playable(currentSong()));
}

/**
 * Where a take being recorded elsewhere is now on the timeline, in s: its
 * offset plus its length at the last report plus the time since.
 * @param {Take} k
 */
function livePosition(k) {
  const seen = state.liveSeen.get(k.id) || { ms: k.durationMs, at: performance.now() };
  return k.offsetMs / 1000 + (seen.ms + (performance.now() - seen.at)) / 1000;
}

// --- recording ---

/**
 * Records a take on a track while the song plays. It starts at the
 * playhead; when someone else is recording this song and the player is
 * stopped, it starts where their take is now, so the two line up as
 * played.
 * @param {string} trackId
 */
async function record(trackId) {
  if (state.rec) return;
  await ctx.resume();
  if (!state.mic) await reopenMic();
  const mic = /** @type {MediaStream} */ (state.mic);
  const song = currentSong();
  const others = playable(song).filter((k) => k.state === "recording" && k.userId !== userId);
  let at = player.position();
  if (!player.playing && others.length > 0) at = Math.max(...others.map(livePosition));
  const take = await api.createTake(trackId, at * 1000, estimateLatencyMs(ctx, mic));
  const uploader = new ChunkUploader(api, take.id, {
    onPending: (n) => { root.dataset.pending = String(n); },
    // A refusal (storage full, take deleted) will not pass on a resend:
    // stop, keeping what the server stored.
    onError: (err) => { show(err); stopRecording().catch(() => {}); },
  });
  const recorder = new TakeRecorder(mic, (blob, ms) => uploader.push(blob, ms, chunkLevels()));
  state.rec = { take, trackId, recorder, uploader, levels: [], sent: 0, stopping: false };
  render();
  await player.play(at, playable(currentSong(), take.id).filter((k) => k.trackId !== trackId || k.state === "recording"));
  // The backing starts at the scheduled context time; the recorder starts
  // then too, so the take's first sample is at `at` on the timeline.
  const wait = (player.startCtxTime - ctx.currentTime) * 1000;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await recorder.start();
  info("Recording… chunks are uploaded as you play.");
}

/**
 * The levels measured since the last chunk, as at most 8 peaks: what
 * other pages draw of this take while it grows.
 * @returns {number[]}
 */
function chunkLevels() {
  const rec = state.rec;
  if (!rec) return [];
  const fresh = rec.levels.slice(rec.sent);
  rec.sent = rec.levels.length;
  const n = Math.min(8, fresh.length);
  const out = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * fresh.length) / n);
    const to = Math.max(from + 1, Math.floor(((i + 1) * fresh.length) / n));
    out.push(Math.max(...fresh.slice(from, to)));
  }
  return out;
}

async function stopRecording() {
  const rec = state.rec;
  if (!rec || rec.stopping) return;
  rec.stopping = true;
  await rec.recorder.stop();
  player.stop();
  info("Saving the last chunks…");
  try {
    await rec.uploader.finish(rec.recorder.elapsedMs());
    info("Take saved.");
  } catch (err) {
    show(new Error((err instanceof Error ? err.message : String(err)) + " The take keeps what the server stored."));
    // Duration 0: the server keeps the length of what it acknowledged.
    await api.finish(rec.take.id, 0).catch(() => { /* deleted, or gone with the channel */ });
  } finally {
    state.rec = null;
    await refresh();
  }
}

addEventListener("online", () => state.rec?.uploader.retryNow());
addEventListener("beforeunload", (e) => {
  if (state.rec || Number(root.dataset.pending) > 0) e.preventDefault();
});

// --- mixdown ---

/**
 * Renders what the player would play (finished takes, with the mix) to a
 * WAV file and offers it for download.
 * @returns {Promise<{seconds: number, tones: Record<string, number>}>}
 */
async function mixdown() {
  info("Rendering the mixdown…");
  const takes = playable(currentSong()).filter((k) => k.state !== "recording");
  const items = await Promise.all(takes.map(async (k) => ({ buffer: await player.buffer(k), startSec: takeStartSec(k), gain: player.gainOf(player.track(k.trackId)) })));
  const buf = await renderMix(items, ctx.sampleRate);
  const wav = encodeWAV(buf);
  if (mixLink.href) URL.revokeObjectURL(mixLink.href);
  mixLink.href = URL.createObjectURL(new Blob([wav], { type: "audio/wav" }));
  mixLink.download = (currentSong()?.name || "mixdown").replace(/[^\w .-]+/g, "_") + ".wav";
  mixLink.hidden = false;
  info("Mixdown ready: " + formatTime(buf.duration) + ".");
  const mono = buf.getChannelData(0);
  /** @type {Record<string, number>} */
  const tones = {};
  for (const hz of [440, 660]) tones[hz] = toneAmplitude(mono, buf.sampleRate, hz);
  return { seconds: buf.duration, tones };
}

// --- every frame: meter, playhead, own live waveform ---

function frame() {
  const level = state.meter ? state.meter.level() : 0;
  meterEl.value = level;
  const pos = player.position();
  timeEl.textContent = formatTime(pos);
  if (document.activeElement !== seek) seek.value = String(pos);
  const rec = state.rec;
  if (rec && rec.recorder.startedAt) {
    rec.levels.push(level);
    rec.take.durationMs = rec.recorder.elapsedMs();
    if (rec.levels.length % 10 === 0) updateTakeRow(rec.take);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

const socket = new StudioSocket(channelId, {
  onEvent,
  onOpen: () => refresh().catch(show),
  onState: (c) => { state.connected = c; root.dataset.connected = String(c); },
});
socket.connect();
reopenMic().catch((err) => show(new Error("No microphone: " + (err instanceof Error ? err.message : err) + ". Allow the microphone to record; you can still listen.")));

// For the browser tests and the curious (docs/studio.md).
Object.assign(window, {
  parleyStudio: {
    api, player, state, ctx,
    get ready() { return state.loaded && state.connected; },
    record, stopRecording, play, mixdown, playable: () => playable(currentSong()),
    selectSong,
    dominantFrequency: () => player.dominantFrequency(),
    ApiError,
  },
});
