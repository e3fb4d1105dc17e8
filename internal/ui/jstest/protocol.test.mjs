// Checks the message typedefs of static/protocol.js against the contract,
// docs/protocol.md: every message type of the doc's tables has a typedef
// in the right union (ServerMessage or ClientMessage), with a property for
// every field the table lists, and no typedef requires a field the doc
// does not list. Adding a message or a field to one and not the other
// fails here. Run by TestJavaScriptHelpers or directly:
// node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { asParticipants, asMediaState, isTopology, placeholderParticipant } from "../static/protocol.js";

const doc = readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8");
const src = readFileSync(new URL("../static/protocol.js", import.meta.url), "utf8");

/**
 * The message tables of the doc: direction ("server"|"client"), type, and
 * the top-level field names of its fields column.
 * @returns {{dir: string, type: string, fields: string[]}[]}
 */
function docMessages() {
  const out = [];
  let dir = "";
  for (const line of doc.split("\n")) {
    if (line.startsWith("## ")) dir = /server → client/.test(line) ? "server" : /client → server/.test(line) ? "client" : "";
    if (!line.startsWith("| `")) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const typeCell = cells[0];
    let fields = cells[1];
    let d = dir;
    const m = /\((server|client) → (server|client)\)/.exec(typeCell);
    if (m) d = m[1];
    if (!d) continue; // a table that is not about messages (error codes)
    // Field names are the backticked identifiers outside parentheses.
    let prev;
    do { prev = fields; fields = fields.replace(/\([^()]*\)/g, ""); } while (fields !== prev);
    const names = [...fields.matchAll(/`([A-Za-z]+)`/g)].map((x) => x[1]).filter((n) => n !== "null");
    for (const t of typeCell.matchAll(/`([a-z-]+)`/g)) out.push({ dir: d, type: t[1], fields: names });
  }
  return out;
}

/**
 * The typedefs of protocol.js: name, the literal of its `type` property,
 * and its properties (optional ones marked).
 */
function typedefs() {
  const comments = [...src.matchAll(/\/\*\*([\s\S]*?)\*\//g)].map((m) => m[1].replace(/^\s*\* ?/gm, ""));
  /** @type {Map<string, {type: string, props: Map<string, boolean>}>} */
  const defs = new Map();
  /** @type {Map<string, string[]>} */
  const unions = new Map();
  for (const c of comments) {
    for (const chunk of c.split("@typedef").slice(1)) {
      const head = /^\s*\{([\s\S]*?)\}\s+(\w+)/.exec(chunk);
      if (!head) continue;
      const [, type, name] = head;
      if (type.includes("|") && /Message\b/.test(type)) unions.set(name, type.split("|").map((s) => s.trim()));
      const props = new Map();
      let literal = "";
      for (const p of chunk.matchAll(/@property \{([^}]*)\} (\[?)(\w+)/g)) {
        props.set(p[3], p[2] === "[");
        if (p[3] === "type") literal = p[1].replace(/"/g, "");
      }
      if (literal) defs.set(name, { type: literal, props });
    }
  }
  return { defs, unions };
}

test("protocol.js has a typedef for every message of docs/protocol.md, and no other", () => {
  const { defs, unions } = typedefs();
  const msgs = docMessages();
  assert.ok(msgs.length >= 20, `found ${msgs.length} messages in the doc`);
  const union = { server: unions.get("ServerMessage") ?? [], client: unions.get("ClientMessage") ?? [] };
  for (const dir of /** @type {const} */ (["server", "client"])) {
    const inDoc = msgs.filter((m) => m.dir === dir).map((m) => m.type).sort();
    const typed = union[dir].map((n) => defs.get(n)?.type ?? `?${n}`).sort();
    assert.deepEqual(typed, inDoc, `${dir} → … messages: protocol.js vs docs/protocol.md`);
  }
  for (const m of msgs) {
    const name = union[/** @type {"server"|"client"} */ (m.dir)].find((n) => defs.get(n)?.type === m.type);
    const def = name ? defs.get(name) : undefined;
    assert.ok(def, `${m.dir} message ${m.type}`);
    for (const f of m.fields) assert.ok(def.props.has(f), `${name} lacks the field ${f} that docs/protocol.md lists`);
    for (const [p, optional] of def.props) {
      if (p !== "type" && !optional) assert.ok(m.fields.includes(p), `${name} requires ${p}, which docs/protocol.md does not list`);
    }
  }
});

test("participants are read defensively", () => {
  assert.deepEqual(asParticipants([{ id: "p_1", name: "Ann", username: "ann", state: { audio: 1, screen: true } }, { name: "no id" }, null, "x"]), [
    { id: "p_1", userId: "", name: "Ann", username: "ann", state: { audio: true, video: false, screen: true, hand: false }, role: "", handSeq: 0 },
  ]);
  // Roles other than the two that moderate, and odd hand numbers, read as nothing.
  const [p] = asParticipants([{ id: "p_2", role: "admin", handSeq: "1" }]);
  assert.equal(p.role, "");
  assert.equal(p.handSeq, 0);
  assert.equal(asParticipants([{ id: "p_3", role: "moderator", handSeq: 4 }])[0].handSeq, 4);
  assert.deepEqual(asParticipants("nope"), []);
  assert.deepEqual(asMediaState(null), { audio: false, video: false, screen: false, hand: false });
  assert.equal(placeholderParticipant("p_2").name, "Someone");
  assert.equal(isTopology("sfu"), true);
  assert.equal(isTopology("p2p"), false);
});
