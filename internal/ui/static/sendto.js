// @ts-check
// "Send to a device": a participant passes the streams they receive on
// to another device of theirs (a TV's browser, a second laptop) that
// shows a 6-digit code at /receive. The code pairs the two through the
// server's pairing room (/ws/send, docs/protocol.md "Sending to another
// device"); the media goes straight from this page to the device over a
// peer connection of its own, with the call's ICE servers.
//
// What is sent: the active speaker (switched with replaceTrack when the
// speaker changes), one participant, or the whole grid (one stream per
// participant; the device lays them out). A timer brings the forwarded
// tracks in step with the call a few times a second: that covers a new
// speaker, people coming and going, and a participant's tracks changing
// under us (mesh ↔ SFU switch, reconnects) without hooks into each.

import { h } from "./ui.js";
import { SUBPROTOCOL, pairURL, parsePairMessage, candidateInit, cleanCode } from "./pairing.js";

/**
 * @typedef {import("./call.js").Call} Call
 * @typedef {import("./pairing.js").PairMode} PairMode
 * @typedef {import("./pairing.js").PairMessage} PairMessage
 * @typedef {{stream: MediaStream, video: RTCRtpTransceiver, audio: RTCRtpTransceiver, remoteId: string}} Slot
 * @typedef {"idle"|"connecting"|"paired"|"sending"|"failed"} SendState
 */

/** How often the forwarded tracks are brought in step with the call. */
const SYNC_MS = 250;
/** At most this many participants in "whole grid" (the offer's size). */
export const MAX_GRID = 16;

/** The call page's "Send to a device" control and its pair. */
export class SendTo {
  /** @param {Call} call */
  constructor(call) {
    this.call = call;
    /** @type {SendState} */
    this.state = "idle";
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {PairMode} */
    this.mode = "speaker";
    /** The participant chosen for "participant" mode. */
    this.target = "";
    /** The forwarded streams, by key: "main" (speaker, participant) or a participant id (grid). */
    /** @type {Map<string, Slot>} */
    this.slots = new Map();
    this.offering = false;
    this.renegotiate = false;
    this.stopReason = "";
    this.labelKey = "";

    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/sendto.css";
    document.head.append(link);

    this.button = /** @type {HTMLButtonElement} */ (h("button", {
      type: "button", id: "sendto-btn", class: "ctl", "aria-label": "Send to a device", "aria-haspopup": "dialog",
      title: "Send what you see to another device (a TV's browser, a laptop) by its code",
    }, h("span", { class: "sendto-icon", "aria-hidden": "true" }, "⇪"), h("span", { class: "ctl-label", "aria-hidden": "true" }, "Send to a device")));
    this.button.dataset.state = "idle";
    this.button.addEventListener("click", () => this.open());
    call.ui.hangupBtn.before(this.button);

    this.codeInput = /** @type {HTMLInputElement} */ (h("input", {
      id: "sendto-code", type: "text", inputmode: "numeric", autocomplete: "off", maxlength: "7",
      "aria-describedby": "sendto-code-hint", placeholder: "123 456",
    }));
    this.who = /** @type {HTMLSelectElement} */ (h("select", { id: "sendto-who", "aria-label": "Participant to send" }));
    this.status = h("p", { id: "sendto-status", class: "sendto-status", role: "status", "aria-live": "polite" });
    this.startBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "submit", id: "sendto-start", class: "btn btn-primary" }, "Send"));
    this.stopBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "sendto-stop", class: "btn btn-danger", hidden: true, onclick: () => this.stop("Stopped sending.") }, "Stop sending"));
    /** @param {PairMode} value @param {string} label @param {Node|null} extra */
    const radio = (value, label, extra) => h("label", { class: "sendto-choice" },
      h("input", { type: "radio", name: "sendto-mode", value, id: `sendto-mode-${value}`, checked: value === "speaker" }), ` ${label} `, extra);
    const form = /** @type {HTMLFormElement} */ (h("form", { id: "sendto-form", class: "sendto-form" },
      h("h2", { id: "sendto-title" }, "Send to a device"),
      h("p", { class: "muted-text small", id: "sendto-code-hint" },
        "On the other device, open ", h("code", {}, `${location.host}/receive`), " and type the 6-digit code it shows."),
      h("label", { for: "sendto-code" }, "Code"), this.codeInput,
      h("fieldset", {}, h("legend", {}, "What to send"),
        radio("speaker", "The active speaker", null),
        radio("participant", "One participant:", this.who),
        radio("grid", "The whole grid", null)),
      this.status,
      h("div", { class: "sendto-actions" }, this.startBtn, this.stopBtn,
        h("button", { type: "button", class: "btn", onclick: () => this.dialog.close() }, "Close"))));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(); });
    this.dialog = /** @type {HTMLDialogElement} */ (h("dialog", { id: "sendto-dialog", class: "sendto-dialog", "aria-labelledby": "sendto-title" }, form));
    document.body.append(this.dialog);

    setInterval(() => this.tick(), SYNC_MS);
    window.addEventListener("pagehide", () => this.stop(""));
  }

  open() {
    this.refreshWho();
    this.render();
    this.dialog.showModal();
    (this.state === "idle" || this.state === "failed" ? this.codeInput : this.stopBtn).focus();
  }

  /** The participants one can pick, in the order of their names. */
  refreshWho() {
    const keep = this.who.value;
    const people = [...this.call.participants.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.who.replaceChildren(...people.map((p) => h("option", { value: p.id }, p.name)));
    if (people.some((p) => p.id === keep)) this.who.value = keep;
  }

  submit() {
    const code = cleanCode(this.codeInput.value);
    if (!code) {
      this.say("Type the 6 digits the device shows.");
      this.codeInput.focus();
      return;
    }
    const checked = /** @type {HTMLInputElement|null} */ (this.dialog.querySelector('input[name="sendto-mode"]:checked'));
    const mode = /** @type {PairMode} */ (checked?.value ?? "speaker");
    if (mode === "participant" && !this.who.value) {
      this.say("Nobody else is in the call to send.");
      return;
    }
    this.start(code, mode, this.who.value);
  }

  /**
   * Opens the pair and, once the device is there, the peer connection.
   * @param {string} code
   * @param {PairMode} mode
   * @param {string} target the participant for "participant" mode
   */
  start(code, mode, target) {
    this.stop("");
    this.mode = mode;
    this.target = target;
    this.stopReason = "";
    const q = `/ws/send?code=${code}&channel=${encodeURIComponent(this.call.channelId)}`;
    const ws = new WebSocket(pairURL(location, q), SUBPROTOCOL);
    this.ws = ws;
    let opened = false;
    this.setState("connecting", "Connecting to the device…");
    ws.addEventListener("open", () => { opened = true; });
    ws.addEventListener("message", (ev) => { if (this.ws === ws) void this.onMessage(parsePairMessage(ev.data)); });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.teardown(this.stopReason ? "idle" : "failed", opened
        ? this.stopReason || "The connection to the device ended."
        : "The code was not accepted. Check the 6 digits on the device (a code lasts 10 minutes). After many wrong codes, wait a few minutes.");
    });
  }

  /** @param {PairMessage|null} m */
  async onMessage(m) {
    if (!m) return;
    try {
      switch (m.type) {
        case "paired": return this.startPeer();
        case "answer":
          if (!this.pc || typeof m.sdp !== "string") return;
          await this.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
          if (this.renegotiate) await this.offer();
          return;
        case "candidate":
          if (this.pc && m.candidate) await this.pc.addIceCandidate(m.candidate);
          return;
        case "stop":
          this.stopReason = typeof m.reason === "string" && m.reason ? `${m.reason}.` : "The device stopped.";
          return;
        case "error":
          console.info("parley: send to a device:", m.message);
          return;
        default:
          return;
      }
    } catch (err) {
      console.warn("parley: send to a device:", err);
    }
  }

  startPeer() {
    const pc = new RTCPeerConnection({ iceServers: this.call.topology.iceServers });
    this.pc = pc;
    pc.addEventListener("icecandidate", (ev) => {
      if (ev.candidate && ev.candidate.candidate) this.send({ type: "candidate", candidate: candidateInit(ev.candidate) });
    });
    pc.addEventListener("connectionstatechange", () => {
      if (this.pc !== pc) return;
      const cs = pc.connectionState;
      if (cs === "connected") this.setState("sending", "Sending to the device.");
      else if (cs === "failed") this.setState("paired", "Could not reach the device: are both on a network that lets them reach each other?");
    });
    this.setState("paired", "Paired: connecting to the device…");
    this.sync();
  }

  /** @param {object} m */
  send(m) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  /** Every SYNC_MS: stop when we left the call, else follow it. */
  tick() {
    if (this.state === "idle" || this.state === "failed") return;
    if (!this.call.session.inCall) {
      this.stop("You left the call, so sending stopped.");
      return;
    }
    if (this.pc) this.sync();
  }

  /**
   * Who should be sent, by slot key.
   * @returns {Map<string, string>} slot key → participant id ("" = nobody now)
   */
  wanted() {
    const remotes = this.call.remotes;
    /** @type {Map<string, string>} */
    const out = new Map();
    if (this.mode === "grid") {
      const ids = [...remotes.keys()].sort((a, b) => this.nameOf(a).localeCompare(this.nameOf(b))).slice(0, MAX_GRID);
      for (const id of ids) out.set(id, id);
      return out;
    }
    if (this.mode === "participant") {
      out.set("main", remotes.has(this.target) ? this.target : "");
      return out;
    }
    // The server's active speaker (SFU), else the one shown large, else
    // whoever we sent before, else the first one (a two-person call has
    // no speaker messages).
    const tiles = this.call.tiles;
    const current = this.slots.get("main")?.remoteId ?? "";
    const pick = [tiles.speaker, tiles.spotlit, current, ...remotes.keys()].find((id) => !!id && remotes.has(id)) ?? "";
    out.set("main", pick);
    return out;
  }

  /** @param {string} id */
  nameOf(id) {
    return this.call.participants.get(id)?.name ?? "Someone";
  }

  /** Brings transceivers and tracks in step with wanted(); offers again if the set or the names changed. */
  sync() {
    const pc = this.pc;
    if (!pc) return;
    const want = this.wanted();
    let changed = false;
    for (const [key, slot] of this.slots) {
      if (want.has(key)) continue;
      slot.video.stop();
      slot.audio.stop();
      this.slots.delete(key);
      changed = true;
    }
    for (const [key, id] of want) {
      let slot = this.slots.get(key);
      if (!slot) {
        const stream = new MediaStream();
        slot = {
          stream, remoteId: "",
          video: pc.addTransceiver("video", { direction: "sendonly", streams: [stream] }),
          audio: pc.addTransceiver("audio", { direction: "sendonly", streams: [stream] }),
        };
        this.slots.set(key, slot);
        changed = true;
      }
      slot.remoteId = id;
      const src = this.call.remotes.get(id)?.tile.source ?? null;
      const video = src?.getVideoTracks().find((t) => t.readyState === "live") ?? null;
      const audio = src?.getAudioTracks().find((t) => t.readyState === "live") ?? null;
      // replaceTrack switches what the device sees without renegotiating.
      if (slot.video.sender.track !== video) slot.video.sender.replaceTrack(video).catch((err) => console.info("parley: replaceTrack", err));
      if (slot.audio.sender.track !== audio) slot.audio.sender.replaceTrack(audio).catch((err) => console.info("parley: replaceTrack", err));
    }
    // The names travel with the offer: a new speaker is named by a new
    // offer (the tracks already switched above).
    const key = JSON.stringify(this.labels());
    if (changed || key !== this.labelKey) void this.offer();
  }

  /** @returns {{stream: string, name: string}[]} */
  labels() {
    return [...this.slots.values()].map((s) => ({ stream: s.stream.id, name: s.remoteId ? this.nameOf(s.remoteId) : "" }));
  }

  /** Sends an offer now, or after the answer to the one in flight. */
  async offer() {
    const pc = this.pc;
    if (!pc) return;
    if (this.offering || pc.signalingState !== "stable") {
      this.renegotiate = true;
      return;
    }
    this.offering = true;
    this.renegotiate = false;
    try {
      const labels = this.labels();
      this.labelKey = JSON.stringify(labels);
      await pc.setLocalDescription(await pc.createOffer());
      if (this.pc !== pc) return;
      this.send({ type: "offer", sdp: pc.localDescription?.sdp ?? "", mode: this.mode, labels });
    } catch (err) {
      console.warn("parley: send to a device: offer", err);
    } finally {
      this.offering = false;
    }
  }

  /**
   * Stops sending and tells the device ("" = quietly, keep the status).
   * @param {string} why
   */
  stop(why) {
    const ws = this.ws;
    if (!ws && !this.pc) return;
    this.ws = null;
    if (ws) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
      ws.close(1000);
    }
    this.teardown("idle", why);
  }

  /**
   * @param {SendState} state
   * @param {string} why
   */
  teardown(state, why) {
    this.pc?.close();
    this.pc = null;
    this.slots.clear();
    this.offering = this.renegotiate = false;
    this.labelKey = "";
    this.setState(state, why);
  }

  /**
   * @param {SendState} state
   * @param {string} text
   */
  setState(state, text) {
    this.state = state;
    if (text) this.say(text);
    this.render();
  }

  /** @param {string} text */
  say(text) {
    this.status.textContent = text;
  }

  render() {
    const active = this.state !== "idle" && this.state !== "failed";
    this.button.dataset.state = this.state;
    this.button.setAttribute("aria-pressed", String(active));
    this.button.classList.toggle("sendto-active", active);
    this.stopBtn.hidden = !active;
    this.startBtn.textContent = active ? "Send instead" : "Send";
  }
}
