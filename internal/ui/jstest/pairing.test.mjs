// Tests for the pure helpers of "Send to a device" (static/pairing.js), run
// by TestJavaScriptHelpers or directly: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { cleanCode, formatCode, pairURL, parsePairMessage, candidateInit } from "../static/pairing.js";

test("a typed code is six digits, spaces and dashes allowed", () => {
  assert.equal(cleanCode("123456"), "123456");
  assert.equal(cleanCode(" 123 456 "), "123456");
  assert.equal(cleanCode("123-456"), "123456");
  for (const bad of ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"]) assert.equal(cleanCode(bad), "", bad);
});

test("a code shows as two groups of three", () => {
  assert.equal(formatCode("012345"), "012 345");
  assert.equal(formatCode(""), "");
});

test("pairing sockets follow the page's scheme and host", () => {
  assert.equal(pairURL({ protocol: "http:", host: "127.0.0.1:8080" }, "/ws/receive"), "ws://127.0.0.1:8080/ws/receive");
  assert.equal(pairURL({ protocol: "https:", host: "meet.example" }, "/ws/send?code=123456"), "wss://meet.example/ws/send?code=123456");
});

test("only objects with a string type are messages", () => {
  assert.deepEqual(parsePairMessage('{"type":"code","code":"123456","expiresIn":600}'), { type: "code", code: "123456", expiresIn: 600 });
  for (const bad of ["", "null", "[]", '{"type":1}', "{", 42]) assert.equal(parsePairMessage(bad), null, String(bad));
});

test("a candidate keeps only the relayed fields", () => {
  const c = /** @type {any} */ ({ candidate: "candidate:1", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "u", foundation: "1", port: 5 });
  assert.deepEqual(candidateInit(c), { candidate: "candidate:1", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "u" });
  assert.deepEqual(candidateInit({ candidate: "c", sdpMid: null, sdpMLineIndex: null }), { candidate: "c" });
});
