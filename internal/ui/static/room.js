// @ts-check
// The meeting-room view: while in the call, the call takes the whole
// window (body.in-call; app.css hides the page header and the channel's
// management, which stay one button away: "Channel settings" shows the
// page again with the call running, "Back to the call" returns). Also the
// grid ↔ speaker view button and, on phones, the people sheet.

/**
 * @typedef {object} RoomHost
 * @property {import("./ui.js").Layout} ui
 * @property {import("./tiles.js").TileView} tiles
 */

/** The room view's buttons and the body classes they set. */
export class Room {
  /** @param {RoomHost} host */
  constructor(host) {
    this.host = host;
    this.inCall = false;
    /** The page (header, channel settings) shown during the call. */
    this.pageView = false;
    const ui = host.ui;
    // Only channel pages have settings to show.
    ui.manageBtn.hidden = !document.getElementById("members") && !document.getElementById("meeting-code-card");
    ui.manageBtn.addEventListener("click", () => this.setPageView(!this.pageView));
    ui.viewBtn.addEventListener("click", () => this.setMode(ui.viewBtn.dataset.mode === "grid" ? "speaker" : "grid"));
    ui.peopleToggle.addEventListener("click", () => this.setPeopleOpen(!ui.people.classList.contains("open")));
    ui.chatToggle.addEventListener("click", () => { if (ui.chat.classList.contains("open")) this.setPeopleOpen(false, false); });
  }

  /** @param {"grid"|"speaker"} mode */
  setMode(mode) {
    const b = this.host.ui.viewBtn;
    b.dataset.mode = mode;
    // The button says what pressing it does.
    b.textContent = mode === "grid" ? "Speaker view" : "Grid view";
    this.host.tiles.setMode(mode);
  }

  /**
   * The people sheet (phones; on wide screens the list is always shown).
   * @param {boolean} open
   * @param {boolean} [focus]
   */
  setPeopleOpen(open, focus = true) {
    const ui = this.host.ui;
    ui.people.classList.toggle("open", open);
    ui.peopleToggle.setAttribute("aria-expanded", String(open));
    if (open && ui.chat.classList.contains("open")) {
      ui.chat.classList.remove("open");
      ui.chatToggle.setAttribute("aria-expanded", "false");
    }
    if (!focus) return;
    if (open) /** @type {HTMLElement|null} */ (ui.people.querySelector(".sheet-close"))?.focus();
    else ui.peopleToggle.focus();
  }

  /**
   * Entered or left the call.
   * @param {boolean} inCall
   */
  setInCall(inCall) {
    this.inCall = inCall;
    if (!inCall) this.pageView = false;
    this.apply();
  }

  /** @param {boolean} on */
  setPageView(on) {
    this.pageView = on;
    this.apply();
    if (on) document.getElementById("members")?.scrollIntoView({ block: "start" }) ?? document.getElementById("meeting-code-card")?.scrollIntoView();
    else this.host.ui.manageBtn.focus();
  }

  apply() {
    const room = this.inCall && !this.pageView;
    document.body.classList.toggle("in-call", room);
    document.documentElement.classList.toggle("in-call", room);
    const b = this.host.ui.manageBtn;
    b.textContent = this.pageView ? "Back to the call" : "Channel settings";
    if (!room) this.setPeopleOpen(false, false);
  }
}
