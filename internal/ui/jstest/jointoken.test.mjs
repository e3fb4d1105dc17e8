// Tests for the join token keeper (static/jointoken.js): which token the
// page connects with, and what a fresh one (join-token) changes.
import { test } from "node:test";
import assert from "node:assert/strict";

import { JoinTokenKeeper, tokenID } from "../static/jointoken.js";

/** A JWT-shaped token with the given jti (unsigned: the page never checks). */
function jwt(jti) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", kid: "k1" })}.${b64({ jti, sub: "i1", ch: "c1" })}.sig`;
}

function memoryStorage(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), map: m };
}

const loc = /** @type {Location} */ (/** @type {unknown} */ ({ protocol: "https:", host: "parley.test", href: "https://parley.test/c/c1?token=old" }));

test("tokenID reads the jti, and nothing from garbage", () => {
  assert.equal(tokenID(jwt("j1")), "j1");
  assert.equal(tokenID("garbage"), "");
  assert.equal(tokenID("a.%%%.c"), "");
});

test("the socket URL carries the current token; pages without one are untouched", () => {
  const k = new JoinTokenKeeper({ socketPath: "/ws/c/c1", joinToken: jwt("j1"), joinTokenExpires: "2026-01-01T00:00:00Z" }, "c1", memoryStorage());
  assert.equal(k.socketURL(loc), `wss://parley.test/ws/c/c1?token=${encodeURIComponent(jwt("j1"))}`);
  assert.equal(k.receiveOnly, false);
  const guest = new JoinTokenKeeper({ socketPath: "/ws/g/abc" }, "c1", memoryStorage());
  assert.equal(guest.active, false);
  assert.equal(guest.socketURL(loc), "wss://parley.test/ws/g/abc");
  assert.equal(guest.closeText(4001), null);
  assert.equal(new JoinTokenKeeper({}, "c1", memoryStorage()).socketURL(loc), "");
});

test("a fresher stored token of the same grant wins; another grant's does not", () => {
  const fresh = JSON.stringify({ token: jwt("j1") + "2", expiresAt: "2026-01-01T01:00:00Z" });
  const same = new JoinTokenKeeper({ socketPath: "/ws/c/c1", joinToken: jwt("j1"), joinTokenExpires: "2026-01-01T00:00:00Z" }, "c1",
    memoryStorage({ "parley.joinToken.c1": fresh }));
  assert.equal(same.token, jwt("j1") + "2");
  const other = new JoinTokenKeeper({ socketPath: "/ws/c/c1", joinToken: jwt("j2"), joinTokenExpires: "2026-01-01T00:00:00Z" }, "c1",
    memoryStorage({ "parley.joinToken.c1": fresh }));
  assert.equal(other.token, jwt("j2"));
});

test("a fresh token moves the socket, the history URL and storage; 4001 ends the page with a reason", () => {
  const store = memoryStorage();
  const k = new JoinTokenKeeper({ socketPath: "/ws/c/c1", joinToken: jwt("j1"), joinTokenExpires: "2026-01-01T00:00:00Z", publish: "0" }, "c1", store);
  assert.equal(k.receiveOnly, true);
  const sig = { url: "" };
  const chat = { opts: { historyURL: "/c/c1/join-messages?token=old" } };
  const replaced = [];
  globalThis.history = /** @type {any} */ ({ state: null, replaceState: (_s, _t, u) => replaced.push(u) });
  try {
    k.renew({ type: "join-token", token: "new.tok.en", expiresAt: "2026-01-01T00:30:00Z" }, sig, chat, loc);
  } finally {
    delete globalThis.history;
  }
  assert.equal(sig.url, "wss://parley.test/ws/c/c1?token=new.tok.en");
  assert.equal(chat.opts.historyURL, "/c/c1/join-messages?token=new.tok.en");
  assert.deepEqual(replaced, ["https://parley.test/c/c1?token=new.tok.en"]);
  assert.deepEqual(JSON.parse(store.map.get("parley.joinToken.c1")), { token: "new.tok.en", expiresAt: "2026-01-01T00:30:00Z" });
  assert.match(k.closeText(4001) || "", /revoked or has expired/);
  assert.equal(k.closeText(4003), null);
});
