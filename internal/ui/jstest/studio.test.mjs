// Tests for the studio page's pure parts (run by TestJavaScriptHelpers,
// or: node --test internal/ui/jstest/): chunk upload order and resends,
// WAV encoding, tone detection, waveform peaks, input constraints.
import { test } from "node:test";
import assert from "node:assert/strict";

import { ChunkUploader, backoff } from "../static/studio/uploader.js";
import { ApiError } from "../static/studio/api.js";
import { encodeWAV, toneAmplitude } from "../static/studio/mixdown.js";
import { peaks } from "../static/studio/waveform.js";
import { audioConstraints, pickMimeType } from "../static/studio/recorder.js";
import { takeStartSec } from "../static/studio/player.js";

/** A fake server for the uploader: it stores chunks in order, can be made
 * unreachable, and answers an unexpected number with 409 and its count. */
function fakeServer() {
  const srv = {
    chunks: /** @type {string[]} */ ([]),
    down: false,
    finished: false,
    timers: /** @type {Function[]} */ ([]),
    async putChunk(_take, seq, data) {
      if (srv.down) throw new TypeError("Failed to fetch");
      if (seq !== srv.chunks.length) throw new ApiError(409, "out of order", { expected: srv.chunks.length });
      srv.chunks.push(await data.text());
      return { chunks: srv.chunks.length, bytes: srv.chunks.join("").length };
    },
    async finish() {
      if (srv.down) throw new TypeError("Failed to fetch");
      srv.finished = true;
      return {};
    },
  };
  return srv;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test("chunks go up in order and are forgotten once acknowledged", async () => {
  const srv = fakeServer();
  const up = new ChunkUploader(srv, "k1");
  for (const s of ["a", "b", "c"]) up.push(new Blob([s]), 250);
  await up.finish(750);
  assert.deepEqual(srv.chunks, ["a", "b", "c"]);
  assert.equal(up.pending, 0);
  assert.ok(srv.finished);
});

test("unacknowledged chunks are kept while the server is unreachable and sent when it is back", async () => {
  const srv = fakeServer();
  const timers = [];
  const up = new ChunkUploader(srv, "k1", { setTimeout: (f) => { timers.push(f); return 0; } });
  up.push(new Blob(["a"]), 250);
  await tick();
  srv.down = true;
  up.push(new Blob(["b"]), 500);
  up.push(new Blob(["c"]), 750);
  await tick(); await tick();
  assert.equal(up.pending, 2, "b and c wait");
  assert.equal(timers.length, 1, "one retry scheduled");
  srv.down = false;
  up.retryNow();
  const done = up.finish(750);
  await done;
  assert.deepEqual(srv.chunks, ["a", "b", "c"]);
});

test("a 409 moves the uploader to the server's count (a chunk stored but not acknowledged is not sent twice)", async () => {
  const srv = fakeServer();
  srv.chunks.push("a"); // stored before a crash; the page never saw the ack
  const up = new ChunkUploader(srv, "k1");
  up.push(new Blob(["a"]), 250);
  up.push(new Blob(["b"]), 500);
  await up.finish(500);
  assert.deepEqual(srv.chunks, ["a", "b"]);
});

test("a refusal stops the upload and finish reports it", async () => {
  const srv = fakeServer();
  srv.putChunk = async () => { throw new ApiError(507, "the channel's studio storage is full", {}); };
  const errors = [];
  const up = new ChunkUploader(srv, "k1", { onError: (e) => errors.push(e.message) });
  up.push(new Blob(["a"]), 250);
  await assert.rejects(up.finish(250), /storage is full/);
  assert.deepEqual(errors, ["the channel's studio storage is full"]);
});

test("retry backoff doubles from 250 ms to 4 s", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 99].map(backoff), [250, 500, 1000, 2000, 4000, 4000, 4000]);
});

test("WAV header and samples", () => {
  const data = [new Float32Array([0, 1, -1, 0.5]), new Float32Array([0, -1, 1, -0.5])];
  const wav = new DataView(encodeWAV({ numberOfChannels: 2, sampleRate: 48000, length: 4, getChannelData: (c) => data[c] }));
  const text = (at, n) => String.fromCharCode(...new Uint8Array(wav.buffer, at, n));
  assert.equal(text(0, 4), "RIFF");
  assert.equal(text(8, 4), "WAVE");
  assert.equal(wav.getUint16(22, true), 2);
  assert.equal(wav.getUint32(24, true), 48000);
  assert.equal(wav.getUint32(40, true), 16);
  assert.equal(wav.getInt16(44 + 4, true), 32767); // sample 1, left
  assert.equal(wav.getInt16(44 + 6, true), -32768); // sample 1, right
});

test("tone amplitude finds the tone that is there", () => {
  const sr = 48000;
  const s = new Float32Array(sr);
  for (let i = 0; i < sr; i++) s[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / sr);
  assert.ok(Math.abs(toneAmplitude(s, sr, 440) - 0.5) < 0.01);
  assert.ok(toneAmplitude(s, sr, 660) < 0.01);
});

test("peaks take the loudest sample of each slice", () => {
  const d = new Float32Array([0, 0.2, -0.9, 0.1, 0.3, 0]);
  assert.deepEqual([...peaks({ numberOfChannels: 1, length: 6, getChannelData: () => d }, 2)].map((v) => +v.toFixed(2)), [0.9, 0.3]);
});

test("music mode turns input processing off and asks for stereo", () => {
  assert.deepEqual(audioConstraints("mic1", true), { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: { ideal: 2 }, deviceId: { exact: "mic1" } });
  assert.equal(audioConstraints("", false).echoCancellation, true);
  assert.equal(pickMimeType((t) => t.startsWith("audio/ogg")), "audio/ogg;codecs=opus");
  assert.equal(takeStartSec({ offsetMs: 3000, latencyMs: 40 }), 2.96);
});
