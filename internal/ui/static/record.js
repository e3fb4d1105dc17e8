// @ts-check
// Recording on the call page: the recording indicator everyone sees (with
// who started it, announced through a live region), and the Record /
// Stop recording button for those allowed to record (the channel's owner,
// or members when the owner allows it). The server is the truth: the
// button only sends `record`; the indicator follows `recording`
// (docs/protocol.md, Recording).

import { h, setText, showToast } from "./ui.js";

/**
 * @typedef {import("./protocol.js").RecordingState} RecordingState
 * @typedef {import("./ui.js").Layout} Layout
 */

/** The recording indicator and button of one call page. */
export class RecordControl {
  /**
   * @param {Layout} ui
   * @param {{channelId: string, send: (msg: import("./protocol.js").RecordMessage) => boolean}} opts
   */
  constructor(ui, opts) {
    this.ui = ui;
    this.send = opts.send;
    this.channelId = opts.channelId;
    /** @type {RecordingState} */
    this.state = { active: false };
    this.indicator = h("p", { id: "recording-indicator", class: "recording-indicator", role: "status", "aria-live": "polite", hidden: true });
    this.button = /** @type {HTMLButtonElement} */ (h("button", {
      type: "button", id: "record-btn", class: "ctl ctl-record", "aria-pressed": "false",
      title: "Record the call on the server", hidden: true, onclick: () => this.toggle(),
    }, h("span", { class: "record-dot", "aria-hidden": "true" }), h("span", { class: "ctl-label" }, "Record")));
    this.ui.callStatus.after(this.indicator);
    this.ui.hangupBtn.before(this.button);
    void this.loadPermission();
  }

  /** Shows the button when the API says we may record. */
  async loadPermission() {
    try {
      const res = await fetch(`/api/channels/${encodeURIComponent(this.channelId)}/recording`, { credentials: "same-origin" });
      if (!res.ok) return;
      const body = await res.json();
      this.button.hidden = !(body && body.mayRecord === true);
    } catch {
      // offline: the button stays hidden; recording is not essential
    }
  }

  toggle() {
    this.send({ type: "record", action: this.state.active ? "stop" : "start" });
  }

  /**
   * The server's recording state (recording message).
   * @param {unknown} raw
   */
  update(raw) {
    const r = /** @type {Partial<RecordingState>|null} */ (raw && typeof raw === "object" ? raw : null);
    if (!r) return;
    const was = this.state.active;
    this.state = { active: r.active === true, by: r.by, reason: typeof r.reason === "string" ? r.reason : "" };
    const who = r.by && typeof r.by.name === "string" ? r.by.name : "someone";
    this.indicator.hidden = !this.state.active;
    setText(this.indicator, this.state.active ? `● Recording — started by ${who}` : "");
    this.ui.root.dataset.recording = this.state.active ? "on" : "off";
    this.button.setAttribute("aria-pressed", String(this.state.active));
    const label = this.button.querySelector(".ctl-label");
    if (label) setText(/** @type {HTMLElement} */ (label), this.state.active ? "Stop recording" : "Record");
    if (was && !this.state.active) showToast(this.ui, `Recording stopped${this.state.reason ? `: ${this.state.reason}` : ""}.`);
  }
}
