// @ts-check
// The studio's multi-track player on Web Audio: every track has a gain
// (volume, mute, solo) into one master gain and an analyser. Finished
// takes are decoded and scheduled sample-exactly at their offsets; a take
// still recording is played from the server's growing stream through a
// media element, starting when the playhead reaches its start.

/**
 * @typedef {import("./api.js").Take} Take
 * @typedef {{gain: GainNode, volume: number, muted: boolean, solo: boolean}} TrackMix
 * @typedef {{stop: () => void}} Voice
 */

/** How far ahead of "now" playback is scheduled, so every take starts together. */
const LEAD_SEC = 0.1;

/**
 * Where a take's audio begins on the song's timeline, in seconds: its
 * offset, moved earlier by the latency its page measured (the recorded
 * sound reached the recorder that much late).
 * @param {{offsetMs: number, latencyMs: number}} take
 */
export function takeStartSec(take) {
  return (take.offsetMs - take.latencyMs) / 1000;
}

/** Plays a song's takes in sync. */
export class Player {
  /**
   * @param {AudioContext} ctx
   * @param {(takeId: string) => string} audioURL
   */
  constructor(ctx, audioURL) {
    this.ctx = ctx;
    this.audioURL = audioURL;
    this.master = ctx.createGain();
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 8192;
    this.analyser.smoothingTimeConstant = 0.5;
    this.master.connect(this.analyser);
    this.analyser.connect(ctx.destination);
    /** @type {Map<string, TrackMix>} */
    this.mix = new Map();
    /** @type {Map<string, Promise<AudioBuffer>>} by take id and length */
    this.buffers = new Map();
    this.playing = false;
    this.startCtxTime = 0;
    this.startPos = 0;
    /** @type {Voice[]} */
    this.voices = [];
    /** @type {Take[]} what the last play() played */
    this.takes = [];
    this.generation = 0;
  }

  /**
   * The mix settings of a track (made on first use).
   * @param {string} trackId
   * @returns {TrackMix}
   */
  track(trackId) {
    let m = this.mix.get(trackId);
    if (!m) {
      m = { gain: this.ctx.createGain(), volume: 1, muted: false, solo: false };
      m.gain.connect(this.master);
      this.mix.set(trackId, m);
    }
    return m;
  }

  /**
   * Changes a track's mix and applies mute/solo to every track.
   * @param {string} trackId
   * @param {{volume?: number, muted?: boolean, solo?: boolean}} change
   */
  setMix(trackId, change) {
    Object.assign(this.track(trackId), change);
    for (const m of this.mix.values()) m.gain.gain.value = this.gainOf(m);
  }

  /**
   * The gain a track plays at: 0 when muted or when another track is soloed.
   * @param {TrackMix} m
   */
  gainOf(m) {
    const anySolo = [...this.mix.values()].some((x) => x.solo);
    return m.muted || (anySolo && !m.solo) ? 0 : m.volume;
  }

  /** The playhead in seconds of song time. */
  position() {
    return this.playing ? this.startPos + Math.max(0, this.ctx.currentTime - this.startCtxTime) : this.startPos;
  }

  /**
   * A finished take's decoded audio (cached per take and length).
   * @param {Take} take
   * @returns {Promise<AudioBuffer>}
   */
  buffer(take) {
    const key = take.id + ":" + take.bytes;
    let p = this.buffers.get(key);
    if (!p) {
      p = fetch(this.audioURL(take.id), { credentials: "same-origin" })
        .then((r) => {
          if (!r.ok) throw new Error("take " + take.id + ": " + r.status);
          return r.arrayBuffer();
        })
        .then((b) => this.ctx.decodeAudioData(b));
      p.catch(() => this.buffers.delete(key));
      this.buffers.set(key, p);
    }
    return p;
  }

  /**
   * Plays takes from fromSec (song time). Finished takes are decoded first
   * so that all start together; takes still recording stream live.
   * @param {number} fromSec
   * @param {Take[]} takes
   */
  async play(fromSec, takes) {
    this.stop();
    const gen = ++this.generation;
    await this.ctx.resume();
    const items = await Promise.all(takes.map(async (t) => ({
      take: t,
      buf: t.state === "recording" ? null : await this.buffer(t).catch((err) => {
        console.warn("parley studio: cannot decode take", t.id, err);
        return null;
      }),
    })));
    if (gen !== this.generation) return; // stopped or restarted meanwhile
    const t0 = this.ctx.currentTime + LEAD_SEC;
    this.startCtxTime = t0;
    this.startPos = Math.max(0, fromSec);
    this.playing = true;
    this.takes = takes;
    for (const { take, buf } of items) {
      const into = this.startPos - takeStartSec(take);
      const out = this.track(take.trackId).gain;
      if (buf) {
        if (into >= buf.duration) continue;
        const src = this.ctx.createBufferSource();
        src.buffer = buf;
        src.connect(out);
        if (into >= 0) src.start(t0, into);
        else src.start(t0 - into);
        this.voices.push({ stop: () => { try { src.stop(); } catch { /* not started */ } src.disconnect(); } });
      } else if (take.state === "recording") {
        this.voices.push(this.playLive(take, into, t0, out));
      }
    }
  }

  /**
   * Streams a take in progress. If the playhead is before its start, it
   * starts from its beginning when the playhead gets there; if after, it
   * starts at once, as far into the take as the playhead is (within what
   * has arrived).
   * @param {Take} take
   * @param {number} into seconds of the take already behind the playhead
   * @param {number} t0 the context time playback starts
   * @param {AudioNode} out
   * @returns {Voice}
   */
  playLive(take, into, t0, out) {
    const el = new Audio();
    el.preload = "auto";
    el.src = this.audioURL(take.id);
    const node = this.ctx.createMediaElementSource(el);
    node.connect(out);
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    const go = () => el.play().catch((err) => console.warn("parley studio: live take", take.id, err));
    if (into <= 0) {
      timer = setTimeout(go, Math.max(0, (t0 - this.ctx.currentTime - into) * 1000));
    } else {
      el.addEventListener("loadeddata", () => {
        const end = el.buffered.length ? el.buffered.end(el.buffered.length - 1) : 0;
        try { el.currentTime = Math.min(into, end); } catch { /* not seekable yet */ }
      }, { once: true });
      go();
    }
    return {
      stop: () => {
        clearTimeout(timer);
        el.pause();
        el.removeAttribute("src");
        el.load();
        node.disconnect();
      },
    };
  }

  /** Stops playback, keeping the playhead where it was. */
  stop() {
    this.generation++;
    this.startPos = this.position();
    this.playing = false;
    for (const v of this.voices) v.stop();
    this.voices = [];
  }

  /**
   * Moves the playhead; playing goes on from there.
   * @param {number} sec
   */
  seek(sec) {
    if (this.playing) {
      this.play(sec, this.takes);
    } else {
      this.startPos = Math.max(0, sec);
    }
  }

  /**
   * The loudest frequency the player outputs now, and its level.
   * @returns {{hz: number, db: number}}
   */
  dominantFrequency() {
    const data = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(data);
    let best = 0;
    for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
    return { hz: (best * this.ctx.sampleRate) / this.analyser.fftSize, db: data[best] };
  }
}
