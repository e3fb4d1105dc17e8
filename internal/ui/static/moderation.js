// @ts-check
// Moderation and raised hands on the call page (docs/protocol.md,
// Moderation): the owner's and moderators' buttons (mute, ask to unmute,
// camera off, remove, lock, end for everyone), what the page does when it
// is the one moderated, and the announcements of every action, shown and
// read out (a live region). The server decides who may do what; these
// buttons only appear for those it would let.

import { h } from "./ui.js";
import { asRole, canModerate } from "./protocol.js";

/**
 * @typedef {import("./protocol.js").Participant} Participant
 * @typedef {import("./protocol.js").ModeratedMessage} ModeratedMessage
 * @typedef {import("./protocol.js").ModerationAction} ModerationAction
 *
 * @typedef {object} ModerationHost  the call, as moderation sees it
 * @property {import("./ui.js").Layout} ui
 * @property {import("./session.js").CallSession} session
 * @property {import("./controls.js").Controls} controls
 * @property {Map<string, Participant>} participants
 * @property {string} userName
 * @property {(m: import("./protocol.js").ClientMessage) => boolean} send
 * @property {() => void} teardown  back to the lobby
 * @property {() => void} sendUpdate
 * @property {() => void} render
 */

/** Moderation state and controls of one call page. */
export class Moderation {
  /** @param {ModerationHost} host */
  constructor(host) {
    this.host = host;
    /** My role in the channel (hello, then participant-updated). */
    /** @type {import("./protocol.js").Role} */
    this.role = "";
    /** My raised hand's place (participant-updated about me), 0 = down. */
    this.myHandSeq = 0;
    this.locked = false;
    /** A moderator muted me with "ask to unmute". */
    this.held = false;

    const ui = host.ui;
    this.announce = h("p", { id: "moderation-status", class: "moderation-status", role: "status", "aria-live": "assertive", "aria-atomic": "true" });
    this.lockBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "lock-btn", class: "btn btn-small", "aria-pressed": "false" }, "Lock call"));
    this.endBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "end-all-btn", class: "btn btn-small btn-danger" }, "End call for everyone"));
    this.bar = h("div", { id: "moderator-bar", class: "moderator-bar", role: "group", "aria-label": "Moderate the call", hidden: true },
      this.lockBtn, this.endBtn);
    this.lockBanner = h("p", { id: "lock-banner", class: "muted-text small", hidden: true }, "🔒 The call is locked: nobody new can join.");
    this.handBtn = /** @type {HTMLButtonElement} */ (h("button", {
      type: "button", id: "hand-btn", class: "ctl", "aria-pressed": "false", "aria-label": "Raise hand", title: "Raise or lower your hand (H)",
    }, h("span", { "aria-hidden": "true", class: "hand-icon" }, "✋"), h("span", { class: "ctl-label", "aria-hidden": "true" }, "Raise hand")));
    this.handsTitle = h("h3", { id: "hands-title", class: "small", hidden: true }, "Raised hands");
    this.hands = h("ol", { id: "hands-list", class: "list hands-list", "aria-labelledby": "hands-title", hidden: true });

    ui.hangupBtn.before(this.handBtn);
    // Beside the people, not above the tiles: the tiles keep their size.
    ui.onlineList.before(this.bar, this.lockBanner);
    ui.root.prepend(this.announce);
    ui.onlineList.after(this.handsTitle, this.hands);

    this.handBtn.addEventListener("click", () => this.toggleHand());
    this.lockBtn.addEventListener("click", () => this.moderate(this.locked ? "unlock" : "lock"));
    this.endBtn.addEventListener("click", () => {
      if (window.confirm("End the call for everyone? Everyone is taken out of it.")) this.moderate("end");
    });
    document.addEventListener("keydown", (ev) => {
      if (!host.session.inCall || ev.key.toLowerCase() !== "h" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = /** @type {HTMLElement|null} */ (ev.target);
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
      ev.preventDefault();
      this.toggleHand();
    });
  }

  /** @param {unknown} role from hello's user */
  setRole(role) {
    this.role = asRole(role);
  }

  /** @param {boolean} locked from hello or joined */
  setLocked(locked) {
    this.locked = !!locked;
  }

  /**
   * participant-updated about me: my role and hand as the server has them.
   * @param {Participant} p
   */
  onSelfUpdated(p) {
    const was = canModerate(this.role);
    this.role = asRole(p.role);
    this.myHandSeq = p.handSeq ?? 0;
    if (was !== canModerate(this.role)) {
      this.say(canModerate(this.role) ? "You can now moderate this call." : "You no longer moderate this call.");
    }
  }

  /**
   * @param {ModerationAction} action
   * @param {string} [id]
   * @param {boolean} [ask]
   */
  moderate(action, id, ask) {
    /** @type {import("./protocol.js").ModerateMessage} */
    const m = { type: "moderate", action };
    if (id) m.id = id;
    if (ask) m.ask = true;
    this.host.send(m);
  }

  toggleHand() {
    const c = this.host.controls;
    if (!this.host.session.inCall) return;
    c.state.hand = !c.state.hand;
    this.host.sendUpdate();
  }

  /**
   * Shows and reads out text.
   * @param {string} text
   */
  say(text) {
    // The same words twice in a row would not be read again: vary them.
    this.announce.textContent = this.announce.textContent === text ? `${text} ` : text;
  }

  /**
   * @param {string|undefined} id
   * @param {string} me what to call me ("you")
   */
  nameOf(id, me = "you") {
    if (!id) return "The server";
    if (id === this.host.session.myId) return me;
    return this.host.participants.get(id)?.name || "Someone";
  }

  /** @param {ModeratedMessage} m */
  onModerated(m) {
    const host = this.host;
    const myId = host.session.myId;
    const toMe = !!m.id && m.id === myId;
    const by = this.nameOf(m.by, "You");
    const whom = this.nameOf(m.id);
    switch (m.action) {
      case "mute":
        if (toMe) {
          this.held = !!m.ask;
          host.controls.forceOff("audio");
          host.sendUpdate(); // tells the server the mute is applied
          this.say(m.ask
            ? `${by} muted you and asked you to wait: raise your hand to ask to speak.`
            : `${by} muted you. You can unmute yourself when you need to.`);
        } else {
          this.say(`${by} muted ${whom}${m.ask ? " and asked them to wait to unmute" : ""}.`);
        }
        break;
      case "allow-unmute":
        if (toMe) {
          this.held = false;
          this.say(`${by} lets you unmute again.`);
        } else {
          this.say(`${by} let ${whom} unmute.`);
        }
        break;
      case "camera-off":
        if (toMe) {
          host.controls.forceOff("video");
          host.sendUpdate();
          this.say(`${by} turned your camera off. You can turn it back on.`);
        } else {
          this.say(`${by} turned off ${whom}'s camera.`);
        }
        break;
      case "remove":
        if (toMe) {
          host.teardown();
          this.say(`${by} removed you from the call. You can join again once it has ended.`);
        } else {
          this.say(`${by} removed ${whom} from the call.`);
        }
        break;
      case "lock":
        this.locked = true;
        this.say(`${by} locked the call: nobody new can join.`);
        break;
      case "unlock":
        this.locked = false;
        this.say(m.by ? `${by} unlocked the call.` : "The call is open again.");
        break;
      case "end":
        if (host.session.wantsIn) host.teardown();
        this.locked = false;
        this.held = false;
        this.say(`${by} ended the call for everyone.`);
        break;
      default:
        return;
    }
    host.render();
  }

  /** Back to the lobby: nothing of the call's moderation applies. */
  reset() {
    this.held = false;
    this.myHandSeq = 0;
  }

  /**
   * Brings the moderation controls in step: the bar for moderators, the
   * hand button, the raised hands in order, and each person's buttons.
   * @param {Participant[]} people everyone in the call, me included when joined
   */
  render(people) {
    const host = this.host;
    const inCall = host.session.inCall;
    const mod = inCall && canModerate(this.role);
    const myId = host.session.myId;
    this.bar.hidden = !mod;
    this.lockBtn.textContent = this.locked ? "Unlock call" : "Lock call";
    this.lockBtn.setAttribute("aria-pressed", String(this.locked));
    this.lockBanner.hidden = !this.locked;
    const up = host.controls.state.hand;
    this.handBtn.setAttribute("aria-pressed", String(up));
    this.handBtn.setAttribute("aria-label", up ? "Lower hand" : "Raise hand");
    const label = this.handBtn.querySelector(".ctl-label");
    if (label) label.textContent = up ? "Lower hand" : "Raise hand";

    const raised = people
      .map((p) => (p.id === myId ? { ...p, handSeq: up ? this.myHandSeq || Number.MAX_SAFE_INTEGER : 0 } : p))
      .filter((p) => (p.handSeq ?? 0) > 0)
      .sort((a, b) => (a.handSeq ?? 0) - (b.handSeq ?? 0));
    this.hands.replaceChildren(...raised.map((p) => h("li", { "data-participant-id": p.id },
      h("bdi", {}, p.id === myId ? `${p.name} (you)` : p.name))));
    this.hands.hidden = this.handsTitle.hidden = raised.length === 0;
    const order = new Map(raised.map((p, i) => [p.id, i + 1]));

    for (const li of host.ui.onlineList.querySelectorAll("li[data-participant-id]")) {
      const id = /** @type {HTMLElement} */ (li).dataset.participantId || "";
      const p = id === myId ? null : host.participants.get(id);
      const extras = [];
      const role = id === myId ? this.role : asRole(p?.role);
      if (role) extras.push(h("span", { class: "muted-text person-role" }, ` · ${role}`));
      const place = order.get(id);
      if (place) extras.push(h("span", { class: "flag hand-flag", title: `Hand raised, ${ordinal(place)}` }, "✋", h("span", { class: "visually-hidden" }, `, hand raised, ${ordinal(place)}`)));
      if (mod && p && (p.role !== "owner" || this.role === "owner")) {
        const n = p.name;
        extras.push(h("span", { class: "person-actions" },
          p.state.audio ? modButton("Mute", `Mute ${n}`, "mod-mute", () => this.moderate("mute", id)) : null,
          modButton("Mute, ask to unmute", `Mute, ask to unmute: ${n} waits until allowed to unmute`, "mod-mute-ask", () => this.moderate("mute", id, true)),
          modButton("Allow unmute", `Allow unmute: let ${n} unmute again`, "mod-allow", () => this.moderate("allow-unmute", id)),
          p.state.video ? modButton("Camera off", `Camera off for ${n}`, "mod-camera", () => this.moderate("camera-off", id)) : null,
          modButton("Remove", `Remove ${n} from the call`, "mod-remove", () => this.moderate("remove", id), "btn-danger")));
      }
      li.append(...extras);
    }
  }
}

/**
 * @param {string} text
 * @param {string} label
 * @param {string} cls
 * @param {() => void} onclick
 * @param {string} [extra]
 */
function modButton(text, label, cls, onclick, extra = "") {
  return h("button", { type: "button", class: `btn btn-small ${cls} ${extra}`.trim(), "aria-label": label, onclick }, text);
}

/** @param {number} n */
function ordinal(n) {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${s}`;
}
