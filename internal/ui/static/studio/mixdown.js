// @ts-check
// The song's mixdown, rendered in the browser: what the player plays, with
// the same offsets and mix, through an OfflineAudioContext, written as a
// 16-bit PCM WAV file.

/**
 * @typedef {{buffer: AudioBuffer, startSec: number, gain: number}} MixItem
 * @typedef {{numberOfChannels: number, sampleRate: number, length: number, getChannelData: (c: number) => Float32Array}} PCM
 */

/**
 * Renders the items (decoded takes at their timeline positions) to one
 * stereo buffer as long as the last one ends.
 * @param {MixItem[]} items
 * @param {number} [sampleRate]
 * @returns {Promise<AudioBuffer>}
 */
export async function renderMix(items, sampleRate = 48000) {
  const end = Math.max(0.1, ...items.map((it) => Math.max(0, it.startSec) + it.buffer.duration - Math.max(0, -it.startSec)));
  const off = new OfflineAudioContext(2, Math.ceil(end * sampleRate), sampleRate);
  for (const it of items) {
    if (it.gain === 0) continue;
    const src = off.createBufferSource();
    src.buffer = it.buffer;
    const g = off.createGain();
    g.gain.value = it.gain;
    src.connect(g).connect(off.destination);
    if (it.startSec >= 0) src.start(it.startSec);
    else src.start(0, -it.startSec);
  }
  return off.startRendering();
}

/**
 * Encodes PCM as a WAV file (RIFF, 16-bit little-endian, interleaved).
 * @param {PCM} pcm
 * @returns {ArrayBuffer}
 */
export function encodeWAV(pcm) {
  const ch = pcm.numberOfChannels;
  const n = pcm.length;
  const out = new ArrayBuffer(44 + n * ch * 2);
  const v = new DataView(out);
  const text = (/** @type {number} */ at, /** @type {string} */ s) => {
    for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i));
  };
  text(0, "RIFF");
  v.setUint32(4, 36 + n * ch * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, ch, true);
  v.setUint32(24, pcm.sampleRate, true);
  v.setUint32(28, pcm.sampleRate * ch * 2, true);
  v.setUint16(32, ch * 2, true);
  v.setUint16(34, 16, true);
  text(36, "data");
  v.setUint32(40, n * ch * 2, true);
  const chans = Array.from({ length: ch }, (_, c) => pcm.getChannelData(c));
  let at = 44;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < ch; c++) {
      const s = Math.max(-1, Math.min(1, chans[c][i]));
      v.setInt16(at, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      at += 2;
    }
  }
  return out;
}

/**
 * Amplitude of one frequency in the samples (Goertzel), 0–1 for a full
 * scale sine: how a test checks which tones a mixdown holds.
 * @param {Float32Array} samples
 * @param {number} sampleRate
 * @param {number} hz
 */
export function toneAmplitude(samples, sampleRate, hz) {
  const n = samples.length;
  if (n === 0) return 0;
  const w = (2 * Math.PI * hz) / sampleRate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = samples[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / n;
}
