// Tests for the call's lifecycle state machine (session.js) and the close
// codes that end it (protocol.js), run by TestJavaScriptHelpers or
// directly: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { CallSession, TRANSITIONS, nextPhase } from "../static/session.js";
import { finalCloseReason } from "../static/protocol.js";

const STATE = { audio: true, video: false, screen: false, hand: false };

/** A session that pressed Join, got its devices and said hello. */
function joining() {
  const s = new CallSession();
  assert.equal(s.fire("join"), true);
  assert.equal(s.fire("media-ready"), true);
  s.helloReceived();
  return s;
}

test("a first join goes out once, without resume, and joined puts us in the call", () => {
  const changes = [];
  const s = new CallSession((from, to) => changes.push(`${from}→${to}`));
  assert.equal(s.joinMessage(STATE), null, "lobby: no join");
  s.fire("join");
  assert.equal(s.busy, true);
  s.helloReceived();
  assert.equal(s.joinMessage(STATE), null, "still getting media");
  s.fire("media-ready");
  assert.deepEqual(s.joinMessage(STATE), { type: "join", state: STATE });
  s.fire("join-sent");
  assert.equal(s.joinMessage(STATE), null, "one join per socket");
  assert.equal(s.inCall, false);
  assert.deepEqual(s.joinedAs("p_1", "tok_1"), { previous: null });
  assert.equal(s.phase, "in-call");
  assert.equal(s.joined, true);
  assert.equal(s.canUpdate, true);
  assert.deepEqual(changes, ["lobby→getting-media", "getting-media→joining", "joining→join-sent", "join-sent→in-call"]);
});

test("after an outage the join resumes our id with the token joined gave", () => {
  const s = joining();
  s.fire("join-sent");
  s.joinedAs("p_1", "tok_1");
  s.socketClosed();
  assert.equal(s.phase, "reconnecting");
  assert.equal(s.inCall, true, "media keeps flowing: the call view stays");
  assert.equal(s.canUpdate, false, "the join will carry our state");
  assert.equal(s.joinMessage(STATE), null, "no socket yet");
  s.helloReceived();
  assert.deepEqual(s.joinMessage(STATE), { type: "join", state: STATE, resume: "p_1", resumeToken: "tok_1" });
  s.fire("join-sent");
  assert.equal(s.phase, "resume-sent");
  s.socketClosed(); // lost again before joined
  s.helloReceived();
  assert.equal(s.joinMessage(STATE)?.resumeToken, "tok_1", "sent again on the next socket");
  s.fire("join-sent");
  assert.deepEqual(s.joinedAs("p_1", "tok_2"), { previous: "p_1" });
  s.socketClosed();
  s.helloReceived();
  assert.equal(s.joinMessage(STATE)?.resumeToken, "tok_2", "the newest token");
});

test("a refused resume joins as a newcomer; a deliberate join never resumes", () => {
  const s = joining();
  s.fire("join-sent");
  s.joinedAs("p_1", "tok_1");
  s.socketClosed();
  s.helloReceived();
  s.fire("join-sent");
  assert.equal(s.fire("resume-refused"), true);
  assert.equal(s.phase, "joining");
  assert.deepEqual(s.joinMessage(STATE), { type: "join", state: STATE });

  s.fire("leave");
  assert.equal(s.phase, "lobby");
  assert.equal(s.myId, null);
  assert.equal(s.resumeToken, null);
  s.fire("join");
  s.fire("media-ready");
  assert.equal(s.joinMessage(STATE)?.resume, undefined);
});

test("a joined after hanging up is ignored", () => {
  const s = joining();
  s.fire("join-sent");
  s.fire("leave");
  assert.equal(s.joinedAs("p_1", "tok"), null);
  assert.equal(s.phase, "lobby");
  assert.equal(s.myId, null);
});

test("a socket lost before joined sends join again on the next one", () => {
  const s = joining();
  s.fire("join-sent");
  s.socketClosed();
  assert.equal(s.phase, "joining");
  assert.equal(s.inCall, false);
  s.helloReceived();
  assert.deepEqual(s.joinMessage(STATE), { type: "join", state: STATE });
});

test("close 4001, 4003 and 4004 are final; ended accepts nothing", () => {
  assert.match(finalCloseReason(4001), /signed out/);
  assert.match(finalCloseReason(4003), /removed/);
  assert.match(finalCloseReason(4004), /deleted/);
  for (const code of [1000, 1006, 4000, 4002, 0]) assert.equal(finalCloseReason(code), "", String(code));

  const s = joining();
  s.fire("join-sent");
  s.joinedAs("p_1", "tok");
  s.fire("end");
  assert.equal(s.phase, "ended");
  assert.equal(s.resumeToken, null, "nothing left to resume");
  for (const ev of Object.keys(TRANSITIONS.lobby)) assert.equal(s.fire(/** @type {any} */ (ev)), false, ev);
  s.helloReceived();
  assert.equal(s.joinMessage(STATE), null);
});

test("every phase can be left, and only the lifecycle's events move it", () => {
  for (const [phase, edges] of Object.entries(TRANSITIONS)) {
    if (phase === "ended") continue;
    assert.equal(edges.end, "ended", phase);
    assert.equal(edges.leave, "lobby", phase);
    for (const to of Object.values(edges)) assert.ok(to in TRANSITIONS, `${phase} → ${to}`);
  }
  assert.equal(nextPhase("lobby", "joined"), null);
  assert.equal(nextPhase("in-call", "join"), null);
});
