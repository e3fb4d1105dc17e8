// @ts-check
// The microphone side of the studio: choosing an input, the "music" input
// mode, a level meter, and MediaRecorder cutting the take into chunks of
// TIMESLICE_MS while it records.

/** MediaRecorder timeslice: each chunk holds about this much audio. */
export const TIMESLICE_MS = 250;

/**
 * Input processing off, stereo where the device has it: what an
 * instrument needs (speech processing makes music into mush).
 */
export const MUSIC_CONSTRAINTS = Object.freeze({
  echoCancellation: false,
  noiseSuppression: false,
  autoGainControl: false,
  channelCount: { ideal: 2 },
});

/** The browser's speech defaults, for a voice in a noisy room. */
export const SPEECH_CONSTRAINTS = Object.freeze({
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
});

/**
 * getUserMedia audio constraints for a device and mode.
 * @param {string} deviceId "" for the default input
 * @param {boolean} music
 * @returns {MediaTrackConstraints}
 */
export function audioConstraints(deviceId, music) {
  /** @type {MediaTrackConstraints} */
  const c = { ...(music ? MUSIC_CONSTRAINTS : SPEECH_CONSTRAINTS) };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

/**
 * The first container MediaRecorder can make: Opus in WebM, else Ogg.
 * @param {(t: string) => boolean} supported MediaRecorder.isTypeSupported
 */
export function pickMimeType(supported) {
  for (const t of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg"]) {
    if (supported(t)) return t;
  }
  return "";
}

/** @returns {Promise<MediaDeviceInfo[]>} the audio inputs (labels once permission is given) */
export async function listInputs() {
  const all = await navigator.mediaDevices.enumerateDevices();
  return all.filter((d) => d.kind === "audioinput");
}

/**
 * Opens a microphone.
 * @param {string} deviceId
 * @param {boolean} music
 */
export function openMic(deviceId, music) {
  return navigator.mediaDevices.getUserMedia({ audio: audioConstraints(deviceId, music), video: false });
}

/**
 * The page's round-trip audio latency in ms: what the microphone adds
 * (track settings, where the browser reports it) plus the output path
 * (AudioContext base and output latency). A take is shifted back by this
 * on playback, so parts played along with the others line up.
 * @param {BaseAudioContext & {outputLatency?: number}} ctx
 * @param {MediaStream|null} stream
 */
export function estimateLatencyMs(ctx, stream) {
  let s = 0;
  const settings = /** @type {any} */ (stream?.getAudioTracks()[0]?.getSettings() || {});
  if (typeof settings.latency === "number") s += settings.latency;
  const ac = /** @type {AudioContext} */ (ctx);
  if (typeof ac.baseLatency === "number") s += ac.baseLatency;
  if (typeof ac.outputLatency === "number") s += ac.outputLatency;
  return Math.round(s * 1000);
}

/** RMS level of the microphone, 0–1, read by the meter on each frame. */
export class LevelMeter {
  /**
   * @param {AudioContext} ctx
   * @param {MediaStream} stream
   */
  constructor(ctx, stream) {
    this.source = ctx.createMediaStreamSource(stream);
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.source.connect(this.analyser);
    this.buf = new Float32Array(this.analyser.fftSize);
  }

  /** The current level, 0–1. */
  level() {
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buf.length) * Math.SQRT2);
  }

  disconnect() {
    this.source.disconnect();
  }
}

/**
 * One take's MediaRecorder: hands each chunk (with the take's length so
 * far) to onChunk, and resolves stop() after the last one.
 */
export class TakeRecorder {
  /**
   * @param {MediaStream} stream
   * @param {(data: Blob, elapsedMs: number) => void} onChunk
   * @param {number} [timeslice]
   */
  constructor(stream, onChunk, timeslice = TIMESLICE_MS) {
    const mimeType = pickMimeType((t) => MediaRecorder.isTypeSupported(t));
    this.rec = new MediaRecorder(stream, { mimeType, audioBitsPerSecond: 128000 });
    this.mimeType = this.rec.mimeType || mimeType;
    this.timeslice = timeslice;
    this.startedAt = 0;
    this.stoppedAt = 0;
    this.rec.ondataavailable = (ev) => onChunk(ev.data, this.elapsedMs());
  }

  /** Starts recording; resolves when the recorder has started. */
  start() {
    return new Promise((resolve, reject) => {
      this.rec.onstart = () => {
        this.startedAt = performance.now();
        resolve(undefined);
      };
      this.rec.onerror = (ev) => reject(/** @type {any} */ (ev).error || new Error("recorder failed"));
      this.rec.start(this.timeslice);
    });
  }

  /** How long the take is so far (or was, once stopped), in ms. */
  elapsedMs() {
    if (!this.startedAt) return 0;
    return (this.stoppedAt || performance.now()) - this.startedAt;
  }

  /** Stops; resolves after the last chunk was handed over. */
  stop() {
    return new Promise((resolve) => {
      if (this.rec.state === "inactive") return resolve(undefined);
      this.rec.onstop = () => resolve(undefined);
      this.stoppedAt = performance.now();
      this.rec.stop();
    });
  }
}
