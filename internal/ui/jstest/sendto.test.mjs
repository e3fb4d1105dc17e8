// Tests of "Send to a device"'s sender logic (static/sendto.js) against a
// fake call and a fake peer connection: which participants are forwarded
// in each mode, replaceTrack on a new speaker (no new transceivers), and
// renegotiation only when the set of streams or their names change. The
// browser test (internal/e2e TestSendToDevice) runs it for real.
// Run by TestJavaScriptHelpers or directly: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

let streams = 0;
globalThis.MediaStream = class { constructor() { this.id = `stream${++streams}`; } };
const { SendTo, MAX_GRID } = await import("../static/sendto.js");

/** @param {string} kind @param {string} id */
function track(kind, id) { return { kind, id, readyState: "live" }; }

/** A remote participant whose camera tile shows video and audio. */
function remote(id) {
  const v = track("video", `${id}-video`);
  const a = track("audio", `${id}-audio`);
  return { id, v, a, tile: { source: { getVideoTracks: () => [v], getAudioTracks: () => [a] } } };
}

function fakePC() {
  const pc = { transceivers: /** @type {any[]} */ ([]) };
  pc.addTransceiver = (kind) => {
    const t = {
      kind, stopped: false,
      sender: { track: null, replaceTrack(x) { this.track = x; return Promise.resolve(); } },
      stop() { this.stopped = true; },
    };
    pc.transceivers.push(t);
    return t;
  };
  return pc;
}

/** A SendTo without its DOM: the sync logic on a fake call. */
function sender(mode, people, target = "") {
  const remotes = new Map(people.map((p) => [p.id, p]));
  const participants = new Map(people.map((p) => [p.id, { id: p.id, name: p.id.toUpperCase() }]));
  const s = Object.create(SendTo.prototype);
  Object.assign(s, {
    pc: fakePC(), mode, target, slots: new Map(), labelKey: "", offers: 0,
    call: { remotes, participants, tiles: { speaker: "", spotlit: "" } },
  });
  s.offer = async () => { s.offers++; s.labelKey = JSON.stringify(s.labels()); };
  return s;
}

const tracksOf = (s) => s.pc.transceivers.filter((t) => !t.stopped).map((t) => t.sender.track?.id ?? null);

test("speaker mode forwards the active speaker and switches with replaceTrack", () => {
  const b = remote("b"), d = remote("d");
  const s = sender("speaker", [b, d]);
  s.sync();
  assert.deepEqual(tracksOf(s), ["b-video", "b-audio"], "no speaker yet: the first one");
  assert.equal(s.offers, 1);
  s.call.tiles.speaker = "d";
  s.sync();
  assert.equal(s.pc.transceivers.length, 2, "the same two transceivers");
  assert.deepEqual(tracksOf(s), ["d-video", "d-audio"]);
  assert.equal(s.offers, 2, "offered again only to rename the tile");
  assert.deepEqual(s.labels().map((l) => l.name), ["D"]);
  s.sync();
  assert.equal(s.offers, 2, "nothing changed: no offer");
  // We speak (our own id is not a remote): the device keeps d.
  s.call.tiles.speaker = "me";
  s.sync();
  assert.deepEqual(tracksOf(s), ["d-video", "d-audio"]);
});

test("participant mode sends nothing while they are away", () => {
  const b = remote("b"), d = remote("d");
  const s = sender("participant", [b, d], "d");
  s.sync();
  assert.deepEqual(tracksOf(s), ["d-video", "d-audio"]);
  s.call.remotes.delete("d");
  s.sync();
  assert.deepEqual(tracksOf(s), [null, null]);
  s.call.remotes.set("d", d);
  s.sync();
  assert.deepEqual(tracksOf(s), ["d-video", "d-audio"]);
});

test("grid mode gives each participant a stream and renegotiates as they come and go", () => {
  const b = remote("b"), d = remote("d");
  const s = sender("grid", [d, b]);
  s.sync();
  assert.deepEqual(s.labels().map((l) => l.name), ["B", "D"], "in the order of their names");
  assert.equal(new Set(s.labels().map((l) => l.stream)).size, 2, "one stream each");
  assert.equal(s.offers, 1);
  s.call.remotes.delete("b");
  s.sync();
  assert.deepEqual(tracksOf(s), ["d-video", "d-audio"]);
  assert.equal(s.offers, 2);
  const many = Array.from({ length: MAX_GRID + 3 }, (_, i) => remote(`p${String(i).padStart(2, "0")}`));
  const g = sender("grid", many);
  g.sync();
  assert.equal(g.slots.size, MAX_GRID);
});
