// @ts-check
// The lobby (docs/protocol.md, Lobby): members in the call see who waits
// to be let in and admit or deny each; a waiting guest is told what
// happens. Announcements go through moderation.js's live region.

import { h } from "./ui.js";
import { Moderation } from "./moderation.js";
import { PreJoin } from "./prejoin.js";
import { SendTo } from "./sendto.js";

/**
 * @typedef {{id: string, name: string, role?: string}} WaitingPerson
 *
 * @typedef {object} LobbyHost
 * @property {import("./ui.js").Layout} ui
 * @property {(m: import("./protocol.js").ClientMessage) => boolean} send
 * @property {(text: string) => void} say       shown and read out
 * @property {() => void} teardown
 * @property {(id: string|undefined) => string} nameOf
 */

/** The lobby as one call page sees it. */
export class LobbyView {
  /** @param {LobbyHost} host */
  constructor(host) {
    this.host = host;
    /** @type {WaitingPerson[]} */
    this.waiting = [];
    /** This page is waiting to be let in. */
    this.waitingSelf = false;
    this.title = h("h3", { id: "waiting-title", class: "small" });
    this.list = h("ul", { id: "waiting-list", class: "list", "aria-labelledby": "waiting-title" });
    this.section = h("section", { id: "waiting", class: "waiting", hidden: true }, this.title, this.list);
    host.ui.onlineList.before(this.section);
  }

  /** @param {unknown} raw the lobby message's waiting list */
  onLobby(raw) {
    const list = Array.isArray(raw) ? raw.filter((w) => w && typeof w.id === "string").map((w) => ({
      id: String(w.id), name: String(w.name ?? "Someone"), role: w.role === "guest" ? "guest" : "",
    })) : [];
    const known = new Set(this.waiting.map((w) => w.id));
    for (const w of list) {
      if (!known.has(w.id)) this.host.say(`${w.name}${w.role ? ` (${w.role})` : ""} is waiting to join. ${list.length} waiting.`);
    }
    this.waiting = list;
    this.render();
  }

  /** @param {import("./protocol.js").AdmissionMessage} m */
  onAdmission(m) {
    const by = this.host.nameOf(m.by);
    switch (m.action) {
      case "waiting":
        this.waitingSelf = true;
        this.host.say("Waiting for someone in the call to let you in…");
        break;
      case "admitted":
        this.waitingSelf = false;
        this.host.say(`${by} let you in.`);
        break;
      case "denied":
        this.waitingSelf = false;
        this.host.teardown();
        this.host.say(`${by} did not let you in. You can ask again with Join call.`);
        break;
    }
  }

  /** Nobody waits for us to decide once we left the call. */
  reset() {
    this.waiting = [];
    this.waitingSelf = false;
    this.render();
  }

  render() {
    const n = this.waiting.length;
    this.section.hidden = n === 0;
    this.title.textContent = `${n} waiting`;
    this.list.replaceChildren(...this.waiting.map((w) => h("li", { "data-waiting-id": w.id },
      h("bdi", {}, w.name), w.role ? h("span", { class: "muted-text" }, ` · ${w.role}`) : null, " ",
      h("button", { type: "button", class: "btn btn-small btn-primary admit-btn", "aria-label": `Admit ${w.name}`, onclick: () => this.host.send({ type: "admit", id: w.id }) }, "Admit"),
      " ",
      h("button", { type: "button", class: "btn btn-small btn-danger deny-btn", "aria-label": `Deny ${w.name}`, onclick: () => this.host.send({ type: "deny", id: w.id }) }, "Deny"))));
  }
}

/**
 * Builds the call page's moderation and lobby parts, wired to the call.
 * @param {import("./call.js").Call} call
 * @returns {{moderation: Moderation, lobby: LobbyView, prejoin: PreJoin}}
 */
export function meetingParts(call) {
  const moderation = new Moderation({
    ui: call.ui,
    session: call.session,
    controls: call.controls,
    participants: call.participants,
    userName: call.userName,
    send: (m) => call.sig.send(m),
    teardown: () => call.teardown(),
    sendUpdate: () => call.sendUpdate(),
    render: () => call.render(),
  });
  const lobby = new LobbyView({
    ui: call.ui,
    send: (m) => call.sig.send(m),
    say: (text) => moderation.say(text),
    teardown: () => call.teardown(),
    nameOf: (id) => moderation.nameOf(id, "You"),
  });
  new SendTo(call); // "Send to a device": a control of its own (sendto.js)
  return { moderation, lobby, prejoin: new PreJoin(call.ui) };
}
