// Tests for the mesh ↔ SFU switch (topology.js, switch.js, sfupath.js)
// against fake peers, fake SFU connections and a fake tile view, on a fake
// clock: no browser, no WebRTC, no waiting. Run by TestJavaScriptHelpers or
// directly: node --test internal/ui/jstest/
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";

import { MediaPaths, NEWCOMER_OFFER_WAIT_MS } from "../static/topology.js";
import { SWAP_POLL_MS, SWITCH_DEADLINE_MS } from "../static/switch.js";
import { OLD_PATH_LINGER_MS } from "../static/sfupath.js";
import { peerStateFor } from "../static/peer.js";

// ------------------------------------------------------------------ fakes

let nextId = 0;

/** A MediaStreamTrack stand-in. */
function fakeTrack(kind) {
  return { id: `t${++nextId}`, kind, readyState: "live", addEventListener() {} };
}

/** A MediaStream stand-in holding the given tracks. */
function fakeStream(id, tracks = []) {
  const list = [...tracks];
  return {
    id,
    getTracks: () => [...list],
    getVideoTracks: () => list.filter((t) => t.kind === "video"),
    getAudioTracks: () => list.filter((t) => t.kind === "audio"),
    addTrack: (t) => list.push(t),
    addEventListener() {},
  };
}

/** A receiver whose stats report `frames.n` decoded video frames. */
function fakeReceiver(track, frames) {
  return {
    track,
    getStats: async () => new Map([["in", { type: "inbound-rtp", kind: "video", framesDecoded: frames.n }]]),
  };
}

/** An RTCPeerConnection stand-in: a state and receivers. */
function fakePC() {
  return { connectionState: "new", receivers: [], getReceivers() { return this.receivers; } };
}

/** A mesh peer (peer.js Peer) stand-in that records what it is asked. */
class FakePeer {
  constructor(opts) {
    this.opts = opts;
    this.id = opts.id;
    this.pc = fakePC();
    this.attached = false;
    this.closed = false;
    this.camStreamId = null;
    this.descriptions = [];
    this.candidates = [];
  }
  get state() { return peerStateFor(this.pc.connectionState); }
  attachCamera() { this.attached = true; }
  setScreen() {}
  replaceCameraTrack() {}
  handleDescription(d) { this.descriptions.push(d); }
  handleCandidate(c) { this.candidates.push(c); }
  isForeignOffer() { return false; }
  resync() {}
  setIceServers() {}
  close() { this.closed = true; this.pc.connectionState = "closed"; }
  /** The remote side sends a track on this connection. */
  track(stream, track) { this.opts.onTrack(this, { streams: [stream], track }); }
}

/** The SFU connections (sfu.js SfuSession) stand-in. */
class FakeSfu {
  constructor(opts) {
    this.opts = opts;
    this.sub = fakePC();
    this.pubConn = fakePC();
    this.senders = { microphone: null, camera: null, screen: null };
    this.closed = false;
    this.published = [];
    this.descriptions = [];
    this.candidates = [];
  }
  get pubState() { return peerStateFor(this.pubConn.connectionState); }
  get subState() { return peerStateFor(this.sub.connectionState); }
  get publishing() { return this.published.length > 0; }
  publishCamera(s) { this.published.push(s); }
  setScreen() {}
  handleDescription(m) { this.descriptions.push(m); }
  handleCandidate(m) { this.candidates.push(m); }
  resync() {}
  setIceServers() {}
  offerRefused() {}
  close() { this.closed = true; this.sub.connectionState = "closed"; }
  /** The server forwards a stream on the subscribe connection. */
  forward(stream) { this.opts.onTrack({ streams: [stream], track: stream.getTracks()[0] }); }
}

/** A TopologyView that keeps what a tile would show. */
function fakeView() {
  return {
    layoutOn: false,
    layoutResets: 0,
    createTile() { return { source: null, lastFrameAt: 0, nextFrame: async () => null }; },
    showMedia(r, camera) { r.tile.source = camera; },
    showState() {},
    removeTiles() {},
    setLayoutEnabled(on) { this.layoutOn = on; },
    layoutReset() { this.layoutResets++; },
    clearSpeaker() {},
    changed() {},
  };
}

const ME = "p_aaaaaaaa"; // sorts first: polite towards everyone below
const BOB = "p_bbbbbbbb";

function participant(id, video = true) {
  return { id, userId: "u_" + id, name: id, state: { audio: true, video, screen: false, hand: false } };
}

/** A MediaPaths wired to fakes, with handles on them. */
function setup() {
  const peers = [];
  const sfus = [];
  const sent = [];
  const participants = new Map([[BOB, participant(BOB)]]);
  const camera = fakeStream("local", [fakeTrack("audio"), fakeTrack("video")]);
  const view = fakeView();
  const paths = new MediaPaths({
    remotes: new Map(),
    participants,
    view,
    send: (m) => { sent.push(m); return true; },
    myId: () => ME,
    local: () => ({ camera, screen: null }),
    newPeer: (o) => { const p = new FakePeer(o); peers.push(p); return p; },
    newSfu: (o) => { const s = new FakeSfu(o); sfus.push(s); return s; },
    newStream: () => fakeStream("loose"),
  });
  return { paths, peers, sfus, sent, participants, view, camera };
}

/** Lets async timer callbacks (stats reads) finish. */
async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/**
 * A fake clock behind setTimeout, clearTimeout and Date.now (node:test's
 * mock.timers needs Node 20; Debian's nodejs is 18). Timers run in due
 * order, each followed by a flush so the async ones finish first.
 */
function fakeClock(start) {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout, now: Date.now };
  let now = start;
  let seq = 0;
  /** @type {Map<number, {at: number, fn: () => void}>} */
  const timers = new Map();
  globalThis.setTimeout = /** @type {any} */ ((fn, ms = 0, ...args) => {
    timers.set(++seq, { at: now + Math.max(0, ms), fn: () => fn(...args) });
    return seq;
  });
  globalThis.clearTimeout = /** @type {any} */ ((id) => { timers.delete(id); });
  Date.now = () => now;
  return {
    /** Moves the clock ms forward, running every timer that falls due. */
    async tick(ms) {
      const end = now + ms;
      for (;;) {
        let next = null;
        for (const [id, t] of timers) if (t.at <= end && (!next || t.at < next.t.at)) next = { id, t };
        if (!next) break;
        timers.delete(next.id);
        now = next.t.at;
        next.t.fn();
        await flush();
      }
      now = end;
    },
    restore() {
      globalThis.setTimeout = real.setTimeout;
      globalThis.clearTimeout = real.clearTimeout;
      Date.now = real.now;
    },
  };
}

/** @type {ReturnType<typeof fakeClock>} */
let clock;
beforeEach(() => { clock = fakeClock(1_000_000); });
afterEach(() => clock.restore());

/** @param {number} ms */
const advance = (ms) => clock.tick(ms);

/** Bob in the mesh, his camera decoding on our connection to him. */
function bobOnMesh(t) {
  const r = t.paths.add(participant(BOB));
  const peer = t.peers[0];
  const meshVideo = fakeTrack("video");
  const meshCam = fakeStream("bob-cam", [fakeTrack("audio"), meshVideo]);
  peer.track(meshCam, meshVideo);
  peer.pc.connectionState = "connected";
  return { r, peer, meshCam };
}

// ------------------------------------------------------------------ tests

test("mesh → SFU: the tile keeps the mesh picture until the SFU decodes frames, then the mesh lingers and closes", async () => {
  const t = setup();
  const { r, peer, meshCam } = bobOnMesh(t);
  assert.equal(r.tile.source, meshCam);
  assert.equal(peer.attached, true, "we offered: our camera is on the connection");

  t.paths.apply("sfu");
  assert.equal(t.sfus.length, 1, "SFU connections opened");
  assert.deepEqual(t.sfus[0].published, [t.camera], "our camera is published");
  assert.equal(t.view.layoutOn, true, "SFU mode reports the layout");
  assert.equal(r.shown, "mesh", "nothing on the SFU yet: keep the mesh picture");
  assert.deepEqual(t.paths.switchReport()?.pending, [BOB]);

  await advance(SWAP_POLL_MS * 3);
  assert.equal(r.shown, "mesh", "still no SFU stream");

  const sfu = t.sfus[0];
  const frames = { n: 10 };
  const sfuVideo = fakeTrack("video");
  const sfuCam = fakeStream(`${BOB}:camera`, [fakeTrack("audio"), sfuVideo]);
  sfu.sub.receivers.push(fakeReceiver(sfuVideo, frames));
  sfu.forward(sfuCam);
  assert.equal(r.sfuCam, sfuCam, "the forwarded stream is filed under Bob");
  assert.equal(r.tile.source, meshCam, "a stream is not a picture: wait for decoded frames");

  await advance(SWAP_POLL_MS * 2);
  assert.equal(r.shown, "mesh", "no new frames since the first look");
  frames.n += 3;
  await advance(SWAP_POLL_MS);
  assert.equal(r.shown, "sfu", "frames decoded: swapped");
  assert.equal(r.tile.source, sfuCam);
  assert.equal(peer.closed, false, "the mesh lingers: Bob may not have switched yet");

  await advance(OLD_PATH_LINGER_MS);
  assert.equal(peer.closed, true, "the old path is closed after the linger");
  assert.equal(r.peer, null);
  assert.equal(t.paths.switchReport()?.done, true);
});

test("SFU → mesh: the polite side waits for the offer, swaps on mesh frames, and retires the SFU after the linger", async () => {
  const t = setup();
  t.paths.apply("sfu");
  const r = t.paths.add(participant(BOB));
  assert.equal(t.peers.length, 0, "SFU mode: no mesh connection");
  const sfu = t.sfus[0];
  const sfuVideo = fakeTrack("video");
  const sfuCam = fakeStream(`${BOB}:camera`, [sfuVideo]);
  sfu.sub.receivers.push(fakeReceiver(sfuVideo, { n: 1 }));
  sfu.sub.connectionState = "connected";
  sfu.forward(sfuCam);
  assert.equal(r.tile.source, sfuCam);

  t.paths.apply("mesh");
  assert.equal(t.view.layoutOn, false);
  assert.equal(t.peers.length, 1, "a mesh connection to Bob");
  const peer = t.peers[0];
  assert.equal(peer.opts.polite, true);
  assert.equal(peer.attached, false, "polite: wait for Bob's offer");
  assert.equal(r.shown, "sfu");
  assert.equal(sfu.closed, false);

  const frames = { n: 0 };
  const meshVideo = fakeTrack("video");
  const meshCam = fakeStream("bob-cam", [meshVideo]);
  peer.pc.receivers.push(fakeReceiver(meshVideo, frames));
  peer.track(meshCam, meshVideo);
  peer.pc.connectionState = "connected";
  await advance(SWAP_POLL_MS);
  frames.n = 5;
  await advance(SWAP_POLL_MS);
  assert.equal(r.shown, "mesh");
  assert.equal(r.tile.source, meshCam);
  assert.equal(sfu.closed, false, "the SFU lingers after the last tile left it");
  await advance(NEWCOMER_OFFER_WAIT_MS);
  assert.equal(peer.attached, true, "no offer came: we offered ourselves");
  await advance(OLD_PATH_LINGER_MS);
  assert.equal(sfu.closed, true);
  assert.equal(t.paths.sfu, null);
});

test("a switch whose new path never decodes gives up waiting at the deadline", async () => {
  const t = setup();
  const { r } = bobOnMesh(t);
  t.paths.apply("sfu");
  await advance(SWITCH_DEADLINE_MS - SWAP_POLL_MS);
  assert.equal(r.shown, "mesh");
  await advance(SWAP_POLL_MS * 3);
  assert.equal(r.shown, "sfu", "swapped anyway");
});

test("a tile without media swaps at once; so does a switch back before the first one finished", async () => {
  const t = setup();
  const r = t.paths.add(participant(BOB)); // no track yet, not connected
  t.paths.apply("sfu");
  assert.equal(r.shown, "sfu", "nothing to keep showing");
  assert.deepEqual(t.paths.switchReport()?.pending, []);
  assert.equal(t.paths.switchReport()?.done, true);

  const t2 = setup();
  const { r: r2 } = bobOnMesh(t2);
  t2.paths.apply("sfu");
  t2.paths.apply("mesh");
  await advance(SWAP_POLL_MS * 2);
  assert.equal(r2.shown, "mesh");
  assert.equal(t2.peers[0].closed, false, "the mesh connection was never given up");
});

test("a participant leaving mid-switch completes the switch record", async () => {
  const t = setup();
  bobOnMesh(t);
  t.paths.apply("sfu");
  assert.equal(t.paths.switchReport()?.done, false);
  t.paths.remove(BOB);
  assert.equal(t.paths.switchReport()?.done, true);
  assert.equal(t.peers[0].closed, true);
});

test("only from: \"sfu\" reaches the SFU connections; a participant's pc is dropped", () => {
  const t = setup();
  t.paths.apply("sfu");
  const sfu = t.sfus[0];
  t.paths.handleDescription({ type: "offer", from: "sfu", pc: "sub", sdp: "v=0" });
  t.paths.handleCandidate({ type: "candidate", from: "sfu", pc: "sub", candidate: null });
  assert.equal(sfu.descriptions.length, 1);
  assert.equal(sfu.candidates.length, 1);

  // The forgery of issue 9: a participant's offer dressed as the SFU's.
  t.paths.handleDescription({ type: "offer", from: BOB, pc: "sub", sdp: "v=0" });
  t.paths.handleCandidate({ type: "candidate", from: BOB, pc: "pub", candidate: null });
  t.paths.handleDescription({ type: "offer", pc: "sub", sdp: "v=0" });
  assert.equal(sfu.descriptions.length, 1, "not the SFU's");
  assert.equal(sfu.candidates.length, 1);
  assert.equal(t.peers.length, 0, "nor a mesh offer");
  assert.equal(t.paths.remotes.size, 0);
});

test("mesh offers: a newcomer's offer makes a connection; one sent after the room moved to the SFU is stale", () => {
  const t = setup();
  t.paths.handleDescription({ type: "offer", from: BOB, sdp: "v=0" });
  assert.equal(t.peers.length, 1, "an offer can beat participant-joined");
  assert.equal(t.peers[0].attached, true, "our tracks ride on their offer's m-lines");
  assert.deepEqual(t.peers[0].descriptions, [{ type: "offer", sdp: "v=0" }]);
  t.paths.handleCandidate({ type: "candidate", from: BOB, candidate: { candidate: "c" } });
  assert.deepEqual(t.peers[0].candidates, [{ candidate: "c" }]);

  const s = setup();
  s.paths.apply("sfu");
  s.paths.handleDescription({ type: "offer", from: BOB, sdp: "v=0" });
  s.paths.handleDescription({ type: "answer", from: "p_cccccccc", sdp: "v=0" });
  assert.equal(s.peers.length, 0);
});

test("restartSfu starts the SFU connections afresh, only in SFU mode", () => {
  const t = setup();
  t.paths.restartSfu();
  assert.equal(t.sfus.length, 0);
  t.paths.apply("sfu");
  t.paths.restartSfu();
  assert.equal(t.sfus.length, 2);
  assert.equal(t.sfus[0].closed, true);
  assert.equal(t.paths.sfu, t.sfus[1]);
  t.sfus[1].opts.onServerReady();
  assert.equal(t.view.layoutResets, 1, "the server has our connections: say the layout again");
});
