// Tests for the pre-join check's pure parts (static/prejoin.js): the
// remembered choices and the device constraints they turn into.
import { test } from "node:test";
import assert from "node:assert/strict";

import { loadPrefs, deviceConstraints } from "../static/prejoin.js";

/** @param {string|null} stored */
function withStorage(stored, f) {
  const prev = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
  Object.defineProperty(globalThis, "localStorage", { configurable: true, value: { getItem: () => stored, setItem() {} } });
  try { return f(); } finally {
    if (prev) Object.defineProperty(globalThis, "localStorage", prev);
    else delete globalThis.localStorage;
  }
}

test("remembered device choices are read defensively", () => {
  assert.deepEqual(withStorage(null, loadPrefs), { mic: "", cam: "", speaker: "", muted: false, camOff: false });
  assert.deepEqual(withStorage("not json", loadPrefs), { mic: "", cam: "", speaker: "", muted: false, camOff: false });
  assert.deepEqual(withStorage(JSON.stringify({ mic: "m1", cam: 7, speaker: "s1", muted: true, camOff: "yes" }), loadPrefs),
    { mic: "m1", cam: "", speaker: "s1", muted: true, camOff: false });
});

test("the chosen devices become constraints: exact for the preview, preferred for joining", () => {
  const p = { mic: "m1", cam: "c1", speaker: "", muted: false, camOff: false };
  const exact = deviceConstraints(p);
  assert.deepEqual(exact.audio, { deviceId: { exact: "m1" } });
  assert.deepEqual(/** @type {any} */ (exact.video).deviceId, { exact: "c1" });
  const ideal = deviceConstraints(p, false);
  assert.deepEqual(ideal.audio, { deviceId: { ideal: "m1" } });
  assert.deepEqual(/** @type {any} */ (ideal.video).deviceId, { ideal: "c1" });
  const none = deviceConstraints({ ...p, mic: "", cam: "" });
  assert.equal(none.audio, true);
  assert.equal(/** @type {any} */ (none.video).deviceId, undefined);
});
