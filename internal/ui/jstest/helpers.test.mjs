// Tests for the pure helpers of the call page, run by TestJavaScriptHelpers
// (internal/ui/ui_test.go) or directly: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { backoffDelay, socketURL } from "../static/signaling.js";
import { isPolite, peerStateFor, fingerprintOf } from "../static/peer.js";
import { describeMediaError } from "../static/media.js";
import { initials, hueFor, duplicateNames, nameKey, nameWithUsername } from "../static/ui.js";
import { checkChatText, insertionIndex } from "../static/chat.js";
import { signalText, peerStatusText, callSummary, shortcutFor, isTypingTarget, hasTurnServer, lobbySummary } from "../static/status.js";

test("backoff doubles from 0.5 s and caps at 5 s", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50, 1e9].map(backoffDelay), [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
});

test("socket URL follows the page's scheme and host", () => {
  assert.equal(socketURL({ protocol: "http:", host: "127.0.0.1:8080" }, "c_1"), "ws://127.0.0.1:8080/ws/c/c_1");
  assert.equal(socketURL({ protocol: "https:", host: "meet.example" }, "c_1"), "wss://meet.example/ws/c/c_1");
});

test("the lower id is polite", () => {
  assert.equal(isPolite("p_aaaaaaaa", "p_bbbbbbbb"), true);
  assert.equal(isPolite("p_bbbbbbbb", "p_aaaaaaaa"), false);
  assert.equal(isPolite("p_9zzzzzzz", "p_azzzzzzz"), true); // digits sort before letters, byte-wise
});

test("connection states map to tile states", () => {
  assert.deepEqual(
    ["new", "connecting", "connected", "disconnected", "failed", "closed"].map(peerStateFor),
    ["new", "connecting", "connected", "reconnecting", "failed", "new"]);
});

test("fingerprint is read from SDP", () => {
  const sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 AB:CD:EF\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
  assert.equal(fingerprintOf(sdp), "sha-256 ab:cd:ef");
  assert.equal(fingerprintOf("v=0\r\n"), "");
});

test("media errors say what happened and what to do", () => {
  const d = describeMediaError({ name: "NotAllowedError" }, "camera");
  assert.equal(d.why, "Camera permission was denied");
  assert.match(d.fix, /site settings/);
  assert.match(describeMediaError({ name: "NotFoundError" }, "camera and microphone").why, /were found/);
  assert.match(describeMediaError(new Error("x"), "camera").why, /could not be used/);
});

test("initials and hue", () => {
  assert.equal(initials("Ada Lovelace"), "AL");
  assert.equal(initials("  grace  "), "G");
  assert.equal(initials("Jean Claude Van Damme"), "JD");
  assert.equal(initials(""), "?");
  assert.equal(initials("émile zola"), "ÉZ"); // code points, not UTF-16 halves
  assert.equal(hueFor("p_abc"), hueFor("p_abc"));
  assert.ok(hueFor("p_abc") >= 0 && hueFor("p_abc") < 360);
});

test("chat text is trimmed and length-checked in code points", () => {
  assert.deepEqual(checkChatText("  hi  "), { text: "hi", error: "" });
  assert.deepEqual(checkChatText("   "), { text: "", error: "" });
  assert.equal(checkChatText("😀".repeat(2000)).error, "");
  assert.match(checkChatText("a".repeat(2001)).error, /limit is 2000/);
});

test("chat messages are placed in time order", () => {
  const ats = ["2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"];
  assert.equal(insertionIndex(ats, "2026-01-01T10:03:00Z"), 3);
  assert.equal(insertionIndex(ats, "2026-01-01T10:01:30Z"), 2);
  assert.equal(insertionIndex(ats, "2026-01-01T09:00:00Z"), 0);
  assert.equal(insertionIndex(ats, "2026-01-01T10:01:00Z"), 2); // equal times keep arrival order
  assert.equal(insertionIndex(ats, "garbage"), 3);
});

test("status texts", () => {
  assert.equal(signalText("connected", { inCall: true }), "Connected");
  assert.equal(signalText("reconnecting", { inCall: true }), "Reconnecting… your call continues peer to peer");
  // Through the server, the call goes on only if the stats say media arrives.
  assert.equal(signalText("reconnecting", { inCall: true, viaServer: true, flowing: false }), "Reconnecting… media interrupted");
  assert.equal(signalText("reconnecting", { inCall: true, viaServer: true, flowing: true }), "Reconnecting… media still arrives");
  assert.match(signalText("offline", { inCall: false, reason: "you are signed out." }), /^Offline — you are signed out/);
  const sfuDown = { view: /** @type {"call"} */ ("call"), joining: false, inCallCount: 0, others: 2, connected: 2, failed: 0, signalUp: false, sfu: { pub: "connected", sub: "connected" } };
  assert.match(callSummary({ ...sfuDown, flowing: false }), /media through it is interrupted/);
  assert.doesNotMatch(callSummary({ ...sfuDown, flowing: false }), /keeps flowing|continues/);
  assert.match(callSummary({ ...sfuDown, sfu: null, flowing: true }), /keeps flowing/);
  assert.match(peerStatusText("failed", { name: "Ada", gone: false, hasTurn: false }), /enable TURN/);
  assert.match(peerStatusText("connected", { name: "Ada", gone: true, hasTurn: false }), /^Ada lost their connection/);
  assert.equal(callSummary({ view: "call", joining: false, inCallCount: 0, others: 3, connected: 1, failed: 1, signalUp: true }),
    "You are in the call with 3 others (1 connecting, 1 failed).");
  assert.equal(callSummary({ view: "lobby", joining: false, inCallCount: 1, others: 0, connected: 0, failed: 0, signalUp: true }),
    "You are not in the call. 1 person is in the call.");
  assert.equal(lobbySummary(0, []), "Nobody is in the call yet — join to start it.");
  assert.equal(lobbySummary(1, ["Ann"]), "1 person is in the call: Ann.");
  assert.equal(lobbySummary(5, ["A", "B", "C", "D", "E"]), "5 people are in the call: A, B, C, D, ….");
});

test("shortcuts fire only outside text inputs and without modifiers", () => {
  const input = { tagName: "INPUT", type: "text" };
  const button = { tagName: "BUTTON" };
  assert.equal(shortcutFor({ key: "m", target: button }), "mute");
  assert.equal(shortcutFor({ key: "V", target: null }), "camera");
  assert.equal(shortcutFor({ key: "l", target: button }), "leave");
  assert.equal(shortcutFor({ key: "m", target: input }), "");
  assert.equal(shortcutFor({ key: "m", ctrlKey: true, target: button }), "");
  assert.equal(shortcutFor({ key: "x", target: button }), "");
  assert.equal(isTypingTarget({ tagName: "INPUT", type: "checkbox" }), false);
  assert.equal(isTypingTarget({ tagName: "DIV", isContentEditable: true }), true);
  assert.equal(isTypingTarget({ tagName: "TEXTAREA" }), true);
});

test("TURN detection", () => {
  assert.equal(hasTurnServer([{ urls: ["stun:127.0.0.1:3478"] }]), false);
  assert.equal(hasTurnServer([{ urls: "turn:127.0.0.1:3478?transport=udp" }]), true);
  assert.equal(hasTurnServer([]), false);
});

test("display names shared by two accounts are found, whatever their case or width", () => {
  const people = [
    { userId: "u1", name: "Ann" },
    { userId: "u2", name: "ＡＮＮ" }, // fullwidth capitals
    { userId: "u3", name: "Bob" },
    { userId: "u3", name: "Bob" }, // one account on two devices is not a look-alike
  ];
  assert.deepEqual([...duplicateNames(people)], ["ann"]);
  assert.equal(nameKey(" Ａnn "), "ann");
  assert.equal(nameWithUsername("Ann", "ann_impostor"), "Ann (@ann_impostor)");
  assert.equal(nameWithUsername("Ann", ""), "Ann");
});
