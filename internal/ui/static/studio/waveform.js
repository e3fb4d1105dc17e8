// @ts-check
// Waveforms: peaks of a decoded take, drawn on a canvas; a take still
// recording is drawn from the levels its recorder (or its growing length)
// gives.

/**
 * Peak absolute sample of each of n equal slices of the buffer's channels.
 * @param {{numberOfChannels: number, length: number, getChannelData: (c: number) => Float32Array}} buffer
 * @param {number} n
 * @returns {Float32Array}
 */
export function peaks(buffer, n) {
  const out = new Float32Array(Math.max(0, n));
  if (n <= 0 || buffer.length === 0) return out;
  const step = buffer.length / n;
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) {
      const from = Math.floor(i * step);
      const to = Math.min(data.length, Math.max(from + 1, Math.floor((i + 1) * step)));
      let p = out[i];
      for (let j = from; j < to; j++) {
        const v = Math.abs(data[j]);
        if (v > p) p = v;
      }
      out[i] = p;
    }
  }
  return out;
}

/**
 * Draws peaks (0–1) as a mirrored waveform filling the canvas.
 * @param {HTMLCanvasElement} canvas
 * @param {ArrayLike<number>} values
 * @param {string} color
 */
export function drawPeaks(canvas, values, color) {
  const g = canvas.getContext("2d");
  if (!g) return;
  const w = canvas.width;
  const h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.fillStyle = color;
  const n = values.length;
  if (n === 0) return;
  const bar = w / n;
  for (let i = 0; i < n; i++) {
    const v = Math.min(1, values[i]);
    const bh = Math.max(1, v * h);
    g.fillRect(i * bar, (h - bh) / 2, Math.max(1, bar - 0.5), bh);
  }
}
