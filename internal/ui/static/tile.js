// @ts-check
// One video tile: a participant's camera, a screen share, or our own
// preview. tiles.js decides which tiles the call shows; a tile only knows
// how to show one stream, its name and its state.

import { h, icon, initials, hueFor, nameWithUsername } from "./ui.js";

/**
 * One video tile: a participant's camera, a screen share, or our preview.
 */
export class Tile {
  /**
   * @param {{id: string|null, name: string, username?: string, kind: "camera"|"screen", local: boolean}} o
   */
  constructor(o) {
    this.kind = o.kind;
    this.local = o.local;
    this.name = o.name;
    /** The account's username ("" unknown, or our own tile). */
    this.username = o.username || "";
    this.video = /** @type {HTMLVideoElement} */ (h("video", { autoplay: true, playsinline: true }));
    // Remote camera tiles carry the participant's audio; everything else
    // must stay silent (our own mic would echo).
    this.video.muted = o.local || o.kind === "screen";
    this.video.playsInline = true;
    // Whether frames are actually shown is read from the element, not from
    // track.muted: Chrome can leave a remote track flagged muted after an
    // offer collision although frames arrive.
    for (const type of ["loadedmetadata", "resize", "playing", "emptied"]) {
      this.video.addEventListener(type, () => this.updateFrames());
    }
    this.label = h("span", { class: "tile-name" });
    // The account's username, shown on hover and focus, and always while
    // another account in the call has the same display name.
    this.handle = h("span", { class: "tile-username" });
    this.micOff = h("span", { class: "tile-flag mic-off", role: "img", "aria-label": "muted", hidden: true }, icon("mic", true), h("span", { class: "visually-hidden" }, "muted"));
    this.camOff = h("span", { class: "tile-flag cam-off", role: "img", "aria-label": "camera off", hidden: true }, icon("cam", true), h("span", { class: "visually-hidden" }, "camera off"));
    this.avatarText = h("span", { class: "avatar-initials" });
    this.avatar = h("div", { class: "avatar", "aria-hidden": "true" }, this.avatarText);
    this.status = h("p", { class: "peer-status", "aria-live": "polite" });
    // Network quality from the connection's real stats (netstats.js).
    this.quality = h("span", { class: "tile-quality", role: "img", "data-level": "unknown", "aria-label": "Network quality: measuring", title: "Network quality: measuring" },
      h("span", { class: "q-bar" }), h("span", { class: "q-bar" }), h("span", { class: "q-bar" }));
    /** Pins this tile large (tiles.js wires the click). */
    this.pinBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "tile-pin", "data-on": "false" }, "Pin"));
    const classes = ["tile"];
    if (o.kind === "screen") classes.push("screen");
    if (o.local) classes.push("local");
    this.el = h("div", {
      class: classes.join(" "),
      role: "group",
      "data-participant-id": o.local ? null : o.id,
      "data-screen": o.kind === "screen" ? "true" : null,
      "data-audio": "on", "data-video": "on", "data-frames": "no",
      "data-peer-state": o.local ? null : "new",
      // Focusable so keyboard users can reveal the username as mouse users do.
      tabindex: o.local ? null : "0",
    }, this.video, this.avatar, h("div", { class: "tile-bar" }, this.label, this.handle, this.micOff, this.camOff, o.local ? null : this.quality),
    o.local ? null : this.status, this.pinBtn);
    if (o.id) this.avatar.style.setProperty("--avatar-hue", String(hueFor(o.id)));
    this.setName(o.name, o.username);
    /** @type {MediaStreamTrack|null} */
    this.watchedTrack = null;
    /** @type {(() => void)|null} */
    this.onPlayBlocked = null;
    /** The element's own stream (see attach). */
    this.stream = new MediaStream();
    /** @type {MediaStream|null} what attach() last showed */
    this.source = null;
    this.syncListener = () => this.sync();
    /** When the last frame was presented (performance.now() clock), 0 = never. */
    this.lastFrameAt = 0;
    /** @type {number|null} pending requestVideoFrameCallback handle */
    this.frameCallback = null;
    /** @type {((t: number|null) => void)[]} */
    this.frameWaiters = [];
    this.removed = false;
    if (!o.local) this.startFrameClock();
  }

  /**
   * @param {string} name display name
   * @param {string} [username] the account's username; kept if omitted
   */
  setName(name, username) {
    this.name = name || "Someone";
    if (username !== undefined) this.username = username;
    const user = this.local ? "" : this.username || "";
    // The name goes in a <bdi> so that right-to-left text in it cannot
    // reorder the rest of the label.
    const bdi = h("bdi", {}, this.name);
    let text;
    if (this.kind === "screen" && this.local) {
      text = "Your screen";
      this.label.replaceChildren(text);
    } else if (this.kind === "screen") {
      text = `${nameWithUsername(this.name, user)}'s screen`;
      this.label.replaceChildren(bdi, "'s screen");
    } else {
      text = this.local ? `${this.name} (you)` : nameWithUsername(this.name, user);
      this.label.replaceChildren(bdi, this.local ? " (you)" : "");
    }
    this.handle.textContent = user ? `@${user}` : "";
    this.el.setAttribute("aria-label", text);
    if (user) this.el.setAttribute("title", text);
    else this.el.removeAttribute("title");
    this.avatarText.textContent = initials(this.name);
    this.setPinned(this.pinBtn.dataset.on === "true");
  }

  /**
   * The pin button's words follow the state: "Pin Bob" / "Unpin Bob".
   * @param {boolean} on
   */
  setPinned(on) {
    const what = this.kind === "screen" ? (this.local ? "your screen" : `${this.name}'s screen`) : this.local ? "yourself" : this.name;
    this.pinBtn.dataset.on = String(on);
    this.pinBtn.textContent = on ? "Unpin" : "Pin";
    this.pinBtn.setAttribute("aria-label", `${on ? "Unpin" : "Pin"} ${what}`);
  }

  /**
   * Shows the network quality measured for this participant.
   * @param {{level: string, text: string}} q level: good, fair, poor, none, unknown
   */
  setQuality(q) {
    if (this.quality.dataset.level === q.level && this.quality.title === q.text) return;
    this.quality.dataset.level = q.level;
    this.quality.title = q.text;
    this.quality.setAttribute("aria-label", q.text);
  }

  /**
   * Marks the tile as one of several accounts with the same display name:
   * the username then stays visible.
   * @param {boolean} dup
   */
  setDuplicate(dup) {
    this.el.classList.toggle("dup-name", dup);
  }

  /**
   * Reflects what the participant says they send.
   * @param {{audio: boolean, video: boolean}} st
   */
  setMedia(st) {
    if (this.kind === "screen") return;
    this.el.dataset.audio = st.audio ? "on" : "off";
    this.el.dataset.video = st.video ? "on" : "off";
    this.micOff.hidden = !!st.audio;
    this.camOff.hidden = !!st.video;
  }

  /**
   * @param {import("./peer.js").PeerState} state
   * @param {string} text
   */
  setPeerState(state, text) {
    if (this.local) return;
    this.el.dataset.peerState = state;
    if (this.status.textContent !== text) this.status.textContent = text;
  }

  /**
   * Shows a stream. The video element keeps playing one MediaStream of its
   * own for its whole life, and attach() copies the source's tracks into
   * it: switching the source (mesh ↔ SFU, a peer's reconnect) swaps tracks
   * in place, which neither blanks the picture nor restarts the element
   * (srcObject would do both, and reset its frame counters). Tracks the
   * source gains or loses later follow automatically.
   * @param {MediaStream} stream
   */
  attach(stream) {
    if (this.source !== stream) {
      this.source?.removeEventListener("addtrack", this.syncListener);
      this.source?.removeEventListener("removetrack", this.syncListener);
      this.source = stream;
      stream.addEventListener("addtrack", this.syncListener);
      stream.addEventListener("removetrack", this.syncListener);
    }
    this.sync();
    if (this.video.srcObject !== this.stream) this.video.srcObject = this.stream;
    this.play();
  }

  /** Stops showing any source (the avatar shows instead). */
  detach() {
    this.source?.removeEventListener("addtrack", this.syncListener);
    this.source?.removeEventListener("removetrack", this.syncListener);
    this.source = null;
    this.sync();
  }

  /** Makes the element's stream hold the source's audio and first video track. */
  sync() {
    const src = this.source;
    const want = src ? [...src.getAudioTracks(), ...src.getVideoTracks().slice(0, 1)] : [];
    const have = this.stream.getTracks();
    // Old tracks out before new ones in: the element then never holds two
    // video tracks, and the picture switches on the next decoded frame.
    for (const t of have) if (!want.includes(t)) this.stream.removeTrack(t);
    for (const t of want) if (!have.includes(t)) this.stream.addTrack(t);
    this.watchVideo();
  }

  play() {
    const p = this.video.play();
    if (p && typeof p.catch === "function") {
      p.catch((err) => {
        // Autoplay with sound can be refused before any user gesture.
        if (err && err.name === "NotAllowedError") this.onPlayBlocked?.();
      });
    }
  }

  watchVideo() {
    const track = this.stream.getVideoTracks()[0] || null;
    if (track !== this.watchedTrack) {
      if (this.watchedTrack) this.watchedTrack.onended = null;
      this.watchedTrack = track;
      if (track) track.onended = () => this.updateFrames();
    }
    this.updateFrames();
  }

  updateFrames() {
    const t = this.watchedTrack;
    const live = !!t && t.readyState === "live" && t.enabled && this.video.videoWidth > 0;
    this.el.dataset.frames = live ? "yes" : "no";
  }

  /**
   * Counts presented frames (requestVideoFrameCallback), to tell when a
   * new media path has taken over and how long the picture stood still.
   */
  startFrameClock() {
    const v = /** @type {any} */ (this.video);
    if (typeof v.requestVideoFrameCallback !== "function" || this.frameCallback !== null) return;
    /** @param {number} now */
    const onFrame = (now) => {
      if (this.removed) return;
      this.lastFrameAt = now;
      const waiters = this.frameWaiters;
      this.frameWaiters = [];
      for (const w of waiters) w(now);
      this.frameCallback = v.requestVideoFrameCallback(onFrame);
    };
    this.frameCallback = v.requestVideoFrameCallback(onFrame);
  }

  /**
   * The time (performance.now() clock) the next frame is presented, or
   * null if none comes within timeoutMs or frames cannot be observed.
   * @param {number} timeoutMs
   * @returns {Promise<number|null>}
   */
  nextFrame(timeoutMs) {
    if (this.frameCallback === null) return Promise.resolve(null);
    return new Promise((resolve) => {
      /** @param {number|null} t */
      const done = (t) => { clearTimeout(timer); this.frameWaiters = this.frameWaiters.filter((w) => w !== done); resolve(t); };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.frameWaiters.push(done);
    });
  }

  /**
   * The active speaker's tile is outlined.
   * @param {boolean} on
   */
  setSpeaking(on) {
    this.el.classList.toggle("speaking", on);
    if (on) this.el.dataset.speaking = "true";
    else delete this.el.dataset.speaking;
  }

  remove() {
    this.removed = true;
    if (this.frameCallback !== null) {
      /** @type {any} */ (this.video).cancelVideoFrameCallback?.(this.frameCallback);
      this.frameCallback = null;
    }
    for (const w of this.frameWaiters) w(null);
    this.frameWaiters = [];
    this.detach();
    if (this.watchedTrack) this.watchedTrack.onended = null;
    this.video.srcObject = null;
    this.el.remove();
  }
}

