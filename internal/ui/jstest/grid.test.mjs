// Tests for the tile arithmetic (grid.js) and the network-quality levels
// (netstats.js). Run by TestJavaScriptHelpers or: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { gridRects, stageRects, featuredKey, minAspect, MIN_ASPECT, PORTRAIT_MIN_ASPECT, MAX_ASPECT } from "../static/grid.js";
import { qualityOf, sumInbound } from "../static/netstats.js";

/** @param {{w: number, h: number}[]} rs */
const covered = (rs) => rs.reduce((a, r) => a + r.w * r.h, 0);

test("the grid fills most of the area for 1 to 25 tiles, inside it, without overlap", () => {
  // The call's tile area at 1280×800 (side panel shown) and on phones
  // (379×688 is Chromium's at 390×844, TestSixPersonLayout).
  for (const [W, H] of [[900, 640], [920, 658], [1248, 640], [374, 640], [379, 688], [400, 760], [349, 480]]) {
    for (let n = 1; n <= 25; n++) {
      const rs = gridRects(n, W, H, 8);
      assert.equal(rs.length, n);
      for (const r of rs) {
        assert.ok(r.x >= -0.01 && r.y >= -0.01 && r.x + r.w <= W + 0.01 && r.y + r.h <= H + 0.01, `n=${n} ${W}×${H}: ${JSON.stringify(r)} outside`);
        const a = r.w / r.h;
        assert.ok(a >= minAspect(W, H) - 1e-6 && a <= MAX_ASPECT + 1e-6, `n=${n} ${W}×${H}: aspect ${a}`);
      }
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          const a = rs[i], b = rs[j];
          const overlap = a.x < b.x + b.w - 0.01 && b.x < a.x + a.w - 0.01 && a.y < b.y + b.h - 0.01 && b.y < a.y + a.h - 0.01;
          assert.ok(!overlap, `n=${n}: tiles ${i} and ${j} overlap`);
        }
      }
      if ([2, 3, 6].includes(n)) {
        const share = covered(rs) / (W * H);
        assert.ok(share >= 0.6, `n=${n} in ${W}×${H}: tiles cover ${(100 * share).toFixed(0)}%, want ≥ 60%`);
      }
    }
  }
});

test("a featured tile takes most of the area; the strip goes beside or below", () => {
  const wide = stageRects(4, 1200, 640, 8, 16 / 9);
  assert.ok(wide.featured.w > 800, `featured ${wide.featured.w} wide`);
  assert.ok(wide.strip.every((r) => r.x >= wide.featured.x + wide.featured.w), "strip on the right");
  const tall = stageRects(4, 374, 640, 8, 16 / 9);
  assert.ok(tall.strip.every((r) => r.y >= tall.featured.y + tall.featured.h), "strip below");
  assert.ok(tall.strip.every((r) => r.x >= 0 && r.x + r.w <= 374.01), "strip fits across");
  assert.equal(minAspect(374, 640), PORTRAIT_MIN_ASPECT);
  assert.equal(minAspect(900, 640), MIN_ASPECT);
  // A phone: the five others in rows below the featured camera, each
  // far smaller than it but large enough to see (not a row of thumbnails).
  const phone = stageRects(5, 379, 688, 8, 16 / 9);
  const f = phone.featured;
  assert.ok(f.w >= 378 && f.y === 0, `featured ${JSON.stringify(f)} on the phone: full width, at the top`);
  assert.ok(Math.abs(Math.min(...phone.strip.map((r) => r.y)) - (f.h + 8)) < 0.01, "the strip right below it");
  for (const r of phone.strip) {
    assert.ok(r.y >= f.y + f.h && r.x >= 0 && r.x + r.w <= 379.01 && r.y + r.h <= 688.01, `strip tile ${JSON.stringify(r)} outside the band`);
    assert.ok(r.w >= 150 && r.w * r.h < (f.w * f.h) / 2, `strip tile ${r.w}×${r.h} vs featured ${f.w}×${f.h}`);
  }
  for (let n = 1; n <= 12; n++) {
    const st = stageRects(n, 379, 688, 8, 16 / 9);
    assert.equal(st.strip.length, n);
    assert.ok(st.strip.every((r) => r.w * r.h < st.featured.w * st.featured.h && r.y >= st.featured.y + st.featured.h - 0.01), `n=${n}: strip`);
  }
  const screen = stageRects(0, 1200, 640, 8, 0);
  assert.deepEqual(screen.featured, { x: 0, y: 0, w: 1200, h: 640 });
});

test("pinned beats a screen share, which beats the speaker view", () => {
  const tiles = [
    { key: "local:camera", screen: false, local: true },
    { key: "a:camera", screen: false, local: false },
    { key: "b:camera", screen: false, local: false },
    { key: "b:screen", screen: true, local: false },
  ];
  assert.equal(featuredKey(tiles, { mode: "grid", pinned: "a:camera", speaker: "" }), "a:camera");
  assert.equal(featuredKey(tiles, { mode: "grid", pinned: "", speaker: "" }), "b:screen");
  const cams = tiles.slice(0, 3);
  assert.equal(featuredKey(cams, { mode: "grid", pinned: "", speaker: "b:camera" }), null);
  assert.equal(featuredKey(cams, { mode: "speaker", pinned: "", speaker: "b:camera" }), "b:camera");
  assert.equal(featuredKey(cams, { mode: "speaker", pinned: "", speaker: "" }), "a:camera");
  // Our own screen share is not shown large unless pinned.
  assert.equal(featuredKey([...cams, { key: "local:screen", screen: true, local: true }], { mode: "grid", pinned: "", speaker: "" }), null);
});

test("network quality from loss, round trip and frame rate", () => {
  assert.equal(qualityOf({ loss: 0, rtt: 0.03, fps: 24, flowing: true, video: true }).level, "good");
  assert.equal(qualityOf({ loss: 0.05, rtt: 0.03, fps: 24, flowing: true, video: true }).level, "fair");
  assert.equal(qualityOf({ loss: 0, rtt: 0.6, fps: 24, flowing: true, video: true }).level, "poor");
  assert.equal(qualityOf({ loss: 0, rtt: 0.03, fps: 3, flowing: true, video: true }).level, "poor");
  assert.equal(qualityOf({ loss: 0, rtt: 0.03, fps: 3, flowing: true, video: false }).level, "good");
  assert.equal(qualityOf({ loss: 0, rtt: null, fps: null, flowing: false, video: true }).level, "none");
  assert.match(qualityOf({ loss: 0.012, rtt: 0.045, fps: 24, flowing: true, video: true }).text, /1% loss, 45 ms round trip, 24 frames\/s/);
});

test("inbound stats are summed per participant", () => {
  const { byId, rtt } = sumInbound([
    { type: "candidate-pair", nominated: true, currentRoundTripTime: 0.02 },
    { type: "inbound-rtp", kind: "audio", trackIdentifier: "p1:microphone", bytesReceived: 100, packetsReceived: 10, packetsLost: 1 },
    { type: "inbound-rtp", kind: "video", trackIdentifier: "p1:camera", bytesReceived: 1000, packetsReceived: 20, framesDecoded: 5, frameWidth: 640, frameHeight: 360 },
    { type: "inbound-rtp", kind: "video", trackIdentifier: "p1:screen", bytesReceived: 5000, packetsReceived: 50, frameWidth: 1920, frameHeight: 1080 },
    { type: "inbound-rtp", kind: "video", trackIdentifier: "zz:camera", bytesReceived: 1 },
  ], (t) => (t.startsWith("p1:") ? "p1" : null));
  assert.equal(rtt, 0.02);
  assert.deepEqual(byId.get("p1"), { bytes: 6100, lost: 1, received: 80, frames: 5, width: 640, height: 360 });
  assert.equal(byId.size, 1);
});
