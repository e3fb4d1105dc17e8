// Tests for the SFU-mode helpers of the call page (sfu.js, layout.js and
// the SFU parts of status.js), run by TestJavaScriptHelpers or directly:
// node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { parseStreamId, isSfuMessage, isPeerMessage, worseState, encodingsFor, CAMERA_ENCODINGS, SFU_PEER } from "../static/sfu.js";
import { renderedSize, sortTiles, sameLayout, sendDelay, LAYOUT_MIN_INTERVAL_MS, LayoutReporter } from "../static/layout.js";
import { callSummary, serverSummary } from "../static/status.js";

test("forwarded stream ids name a participant and a source", () => {
  assert.deepEqual(parseStreamId("p_3kq9x2m1ab:camera"), { participant: "p_3kq9x2m1ab", source: "camera" });
  assert.deepEqual(parseStreamId("p_3kq9x2m1ab:screen"), { participant: "p_3kq9x2m1ab", source: "screen" });
  // The source is after the last colon, whatever the id holds.
  assert.deepEqual(parseStreamId("a:b:camera"), { participant: "a:b", source: "camera" });
  for (const bad of ["p_1", "p_1:microphone", ":camera", "p_1:", "", "{3f2a-random-msid}", null, 42]) {
    assert.equal(parseStreamId(/** @type {any} */ (bad)), null, String(bad));
  }
});

test("SFU messages are told apart from mesh ones", () => {
  assert.equal(isSfuMessage({ type: "offer", from: SFU_PEER, pc: "sub" }), true);
  assert.equal(isSfuMessage({ type: "answer", from: "sfu", pc: "pub" }), true);
  assert.equal(isSfuMessage({ type: "candidate", from: "sfu" }), true);
  assert.equal(isSfuMessage({ type: "offer", from: "p_abc" }), false);
  assert.equal(isSfuMessage({ type: "offer", from: "p_abc", pc: "" }), false);
  assert.equal(isPeerMessage({ type: "offer", from: "p_abc", sdp: "v=0" }), true);
  assert.equal(isPeerMessage({ type: "offer", from: SFU_PEER, pc: "sub" }), false);
});

test("only the server is the SFU: a participant's pc is not enough", () => {
  // The forgery of issue 9: a participant's offer dressed as the SFU's.
  for (const forged of [
    { type: "offer", from: "p_attacker12", pc: "sub", sdp: "v=0" },
    { type: "candidate", from: "p_attacker12", pc: "pub", candidate: null },
    { type: "candidate", pc: "pub" },
    { type: "offer", pc: "sub", sdp: "v=0" },
  ]) {
    assert.equal(isSfuMessage(forged), false, JSON.stringify(forged));
    assert.equal(isPeerMessage(forged), false, JSON.stringify(forged));
  }
  assert.equal(isPeerMessage({ type: "offer", sdp: "v=0" }), false, "no sender");
  assert.equal(isPeerMessage({ type: "offer", from: "", sdp: "v=0" }), false, "empty sender");
});

test("the server connection state is the worse of the two", () => {
  assert.equal(worseState("connected", "connected"), "connected");
  assert.equal(worseState("connected", "connecting"), "connecting");
  assert.equal(worseState("failed", "connected"), "failed");
  assert.equal(worseState("new", "reconnecting"), "reconnecting");
  assert.equal(worseState("connecting", "new"), "new");
});

test("only the camera is simulcast, with the protocol's rids", () => {
  const enc = encodingsFor("camera");
  assert.deepEqual(enc?.map((e) => e.rid), ["q", "h", "f"]);
  assert.deepEqual(enc?.map((e) => e.scaleResolutionDownBy ?? 1), [4, 2, 1]);
  assert.ok(enc?.every((e, i) => i === 0 || e.maxBitrate > enc[i - 1].maxBitrate));
  enc[0].maxBitrate = 1; // a copy: the constant stays as it was
  assert.equal(CAMERA_ENCODINGS[0].maxBitrate, 150_000);
  // A 640×360 camera: Chrome would drop the top of three layers; two go out.
  assert.deepEqual(encodingsFor("camera", 360)?.map((e) => e.rid), ["h", "f"]);
  assert.deepEqual(encodingsFor("camera", 720)?.map((e) => e.rid), ["q", "h", "f"]);
  assert.equal(encodingsFor("microphone"), undefined);
  assert.equal(encodingsFor("screen"), undefined);
});

test("rendered size is CSS pixels × devicePixelRatio, 0×0 when not visible", () => {
  assert.deepEqual(renderedSize({ width: 320, height: 180 }, 2, true), { width: 640, height: 360 });
  assert.deepEqual(renderedSize({ width: 283.4, height: 159.4 }, 1.25, true), { width: 354, height: 199 });
  assert.deepEqual(renderedSize({ width: 320, height: 180 }, 1, false), { width: 0, height: 0 });
  assert.deepEqual(renderedSize({ width: 0, height: 180 }, 1, true), { width: 0, height: 0 });
  assert.deepEqual(renderedSize({ width: 10, height: 10 }, 0, true), { width: 10, height: 10 });
});

test("layouts compare regardless of order", () => {
  const a = [
    { participant: "p_b", source: /** @type {const} */ ("camera"), width: 320, height: 180 },
    { participant: "p_a", source: /** @type {const} */ ("screen"), width: 1280, height: 720 },
    { participant: "p_a", source: /** @type {const} */ ("camera"), width: 320, height: 180 },
  ];
  assert.deepEqual(sortTiles(a).map((t) => `${t.participant}/${t.source}`), ["p_a/camera", "p_a/screen", "p_b/camera"]);
  assert.equal(sameLayout(a, [...a].reverse()), true);
  assert.equal(sameLayout(a, a.slice(1)), false);
  assert.equal(sameLayout(a, a.map((t, i) => (i === 0 ? { ...t, width: 321 } : t))), false);
  assert.equal(sameLayout(null, a), false);
  assert.equal(sameLayout(null, null), true);
  assert.equal(sameLayout([], []), true);
});

test("layout messages are spaced by at least 250 ms", () => {
  assert.equal(LAYOUT_MIN_INTERVAL_MS, 250);
  assert.equal(sendDelay(10_000, 0), 0);
  assert.equal(sendDelay(10_000, 9_900), 150);
  assert.equal(sendDelay(10_000, 9_750), 0);
  assert.equal(sendDelay(10_000, 1_000), 0);
});

test("layout reporter coalesces, sends only changes and only when enabled", async () => {
  /** @type {any[]} */
  const sent = [];
  const rep = new LayoutReporter((tiles) => { sent.push(tiles); return true; });
  const el = (w, h) => ({ getBoundingClientRect: () => ({ width: w, height: h }) });
  const v1 = el(320, 180);
  const v2 = el(640, 360);
  rep.observe(/** @type {any} */ (v1), "p_a", "camera");
  rep.observe(/** @type {any} */ (v2), "p_b", "camera");
  await sleep(20);
  assert.equal(sent.length, 0, "disabled: nothing sent");
  rep.setEnabled(true);
  await sleep(20);
  assert.equal(sent.length, 1, "one message for the burst");
  const dpr = globalThis.devicePixelRatio || 1;
  assert.deepEqual(sent[0], [
    { participant: "p_a", source: "camera", width: 320 * dpr, height: 180 * dpr },
    { participant: "p_b", source: "camera", width: 640 * dpr, height: 360 * dpr },
  ]);
  rep.schedule();
  await sleep(300);
  assert.equal(sent.length, 1, "unchanged: not sent again");
  rep.unobserve(/** @type {any} */ (v2));
  rep.observe(/** @type {any} */ (el(100, 50)), "p_c", "screen");
  await sleep(20);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1].map((t) => t.participant), ["p_a", "p_c"]);
  // A change right after a message waits out the interval.
  rep.unobserve(/** @type {any} */ (v1));
  await sleep(50);
  assert.equal(sent.length, 2, "rate limited");
  await sleep(LAYOUT_MIN_INTERVAL_MS);
  assert.equal(sent.length, 3);
  rep.reset();
  await sleep(LAYOUT_MIN_INTERVAL_MS + 20);
  assert.equal(sent.length, 4, "reset resends");
  rep.disconnect();
});

test("SFU call status summarises both connections", () => {
  assert.equal(serverSummary({ pub: "connected", sub: "connected" }), "");
  assert.equal(serverSummary({ pub: null, sub: "connected" }), "");
  assert.equal(serverSummary({ pub: "connecting", sub: "connected" }), " Connection to the server: sending connecting.");
  assert.equal(serverSummary({ pub: "connected", sub: "failed" }), " Connection to the server: receiving failed — retrying.");
  assert.equal(serverSummary({ pub: "new", sub: "reconnecting" }), " Connection to the server: sending waiting, receiving reconnecting.");
  const base = { view: /** @type {const} */ ("call"), joining: false, inCallCount: 0, others: 3, connected: 3, failed: 0, signalUp: true };
  assert.equal(callSummary({ ...base, sfu: { pub: "connected", sub: "connected" } }),
    "You are in the call with 3 others. Media goes through the server.");
  assert.equal(callSummary({ ...base, connected: 0, sfu: { pub: "connected", sub: "connecting" } }),
    "You are in the call with 3 others (3 connecting). Media goes through the server. Connection to the server: receiving connecting.");
  assert.equal(callSummary({ ...base, sfu: null }), "You are in the call with 3 others.");
});

/** @param {number} ms */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
