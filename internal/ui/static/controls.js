// @ts-check
// Our own devices and the buttons that drive them: microphone, camera and
// screen share, the keyboard shortcuts, and what the buttons say. Owns the
// local streams and the state we announce (`update`); the media paths
// (topology.js) are told when a track comes or goes.

import { getLocalMedia, getDeviceTrack, describeMediaError, canShareScreen, getScreen } from "./media.js";
import { deviceConstraints } from "./prejoin.js";
import { icon, showNotice } from "./ui.js";
import { shortcutFor } from "./status.js";
import { music, setMusic } from "./musicmode.js";

/**
 * @typedef {import("./protocol.js").MediaState} MediaState
 *
 * @typedef {object} ControlsHost  the call, as the controls see it
 * @property {import("./ui.js").Layout} ui
 * @property {import("./session.js").CallSession} session
 * @property {import("./topology.js").MediaPaths} topology
 * @property {import("./tiles.js").TileView} tiles
 * @property {string} userName
 * @property {() => void} join
 * @property {() => void} leave
 * @property {() => void} sendUpdate  tells the others our state
 * @property {() => void} render
 * @property {{held: boolean}} [moderation]
 * @property {import("./prejoin.js").PreJoin} [prejoin]
 * @property {{receiveOnly: boolean}} [joinToken]  a join token without the publish grant
 */

/** @returns {MediaState} */
function nothing() {
  return { audio: false, video: false, screen: false, hand: false };
}

/** Local devices and the call controls. */
export class Controls {
  /** @param {ControlsHost} host */
  constructor(host) {
    this.host = host;
    /** What we send (and announce). */
    /** @type {MediaState} */
    this.state = nothing();
    /** Camera+mic stream; exists (maybe without tracks) while in the call. */
    /** @type {MediaStream|null} */
    this.localStream = null;
    /** @type {MediaStream|null} */
    this.screenStream = null;
  }

  /** Hooks the buttons and shortcuts up. */
  bind() {
    const ui = this.host.ui;
    ui.joinBtn.addEventListener("click", () => this.host.join());
    ui.muteBtn.addEventListener("click", () => this.toggleDevice("audio"));
    ui.cameraBtn.addEventListener("click", () => this.toggleDevice("video"));
    ui.screenBtn.addEventListener("click", () => this.toggleScreen());
    ui.musicBtn.addEventListener("click", () => this.toggleMusic());
    ui.hangupBtn.addEventListener("click", () => this.host.leave());
    if (!canShareScreen()) {
      ui.screenBtn.disabled = true;
      ui.screenBtn.title = "Screen sharing is not available in this browser";
    }
    document.addEventListener("keydown", (ev) => {
      if (!this.host.session.inCall) return;
      const action = shortcutFor(ev);
      if (!action) return;
      ev.preventDefault();
      if (action === "mute") this.toggleDevice("audio");
      else if (action === "camera") this.toggleDevice("video");
      else this.host.leave();
    });
  }

  /**
   * Asks for the camera and microphone (Join pressed).
   * @returns {Promise<string>} a notice for what did not work ("" when all did)
   */
  async acquire() {
    if (this.host.joinToken?.receiveOnly) {
      // The server would refuse our media anyway (docs/protocol.md, Join tokens).
      this.localStream = new MediaStream();
      this.state = nothing();
      return "Your link lets you watch and listen only.";
    }
    const pre = this.host.prejoin;
    const preview = pre?.take();
    const media = preview
      ? { stream: preview, notice: "" }
      : await getLocalMedia(pre ? deviceConstraints(pre.prefs, false) : undefined);
    this.localStream = media.stream;
    const audio = media.stream.getAudioTracks()[0];
    const video = media.stream.getVideoTracks()[0];
    // "Join muted" / "Join with camera off": the tracks are there, off.
    if (audio && pre?.prefs.muted) audio.enabled = false;
    if (video && pre?.prefs.camOff) video.enabled = false;
    this.state = { audio: !!audio && audio.enabled, video: !!video && video.enabled, screen: false, hand: false };
    music.on = false; // a fresh microphone is a speech one
    return media.notice;
  }

  /** Releases every device (back to the lobby). */
  release() {
    this.stopScreen(false);
    for (const t of this.localStream?.getTracks() ?? []) t.stop();
    this.localStream = null;
    this.state = nothing();
    music.on = false;
  }

  /**
   * Music mode on or off (musicmode.js): our microphone unprocessed and in
   * stereo, Opus at a music bitrate, the smallest jitter buffer; announced
   * as state.music, kept across reconnects (join carries the state).
   */
  async toggleMusic() {
    const host = this.host;
    if (!this.localStream || !host.session.wantsIn) return;
    const on = !music.on;
    try {
      await setMusic(on, this.localStream);
    } catch (err) {
      const d = describeMediaError(err, "microphone");
      showNotice(host.ui, `Music mode could not ${on ? "start" : "stop"}: ${d.why}. ${d.fix.replace(/ and rejoin\.$/, ", then try again.")}`);
      return;
    }
    if (on) this.state.music = true;
    else delete this.state.music;
    host.tiles.localTile?.attach(this.localStream);
    host.sendUpdate();
  }

  /**
   * Mute/unmute or camera off/on. Without a track (permission denied at
   * join), asks for the device again.
   * @param {"audio"|"video"} kind
   */
  async toggleDevice(kind) {
    const stream = this.localStream;
    const host = this.host;
    if (!stream || !host.session.wantsIn) return;
    const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    if (kind === "audio" && !this.state.audio && this.audioHeld()) {
      showNotice(host.ui, "A moderator asked you to wait before unmuting. Raise your hand (H) to ask to speak.");
      return;
    }
    if (track) {
      // enabled=false sends silence/black frames without renegotiating.
      track.enabled = !track.enabled;
      this.state[kind] = track.enabled;
    } else {
      const device = kind === "audio" ? "microphone" : "camera";
      let t;
      try {
        t = await getDeviceTrack(kind);
      } catch (err) {
        const d = describeMediaError(err, device);
        showNotice(host.ui, `${d.why}. ${d.fix.replace(/ and rejoin\.$/, ", then try again.")}`);
        return;
      }
      if (this.localStream !== stream) { t.stop(); return; } // left meanwhile
      stream.addTrack(t);
      host.topology.addDeviceTrack(kind, t, stream);
      host.tiles.localTile?.attach(stream);
      this.state[kind] = true;
      showNotice(host.ui, "");
    }
    host.tiles.localTile?.updateFrames();
    host.sendUpdate();
  }

  /**
   * A moderator turned our microphone or camera off: stop sending it
   * (the caller tells the server with an update).
   * @param {"audio"|"video"} kind
   */
  forceOff(kind) {
    const stream = this.localStream;
    const track = kind === "audio" ? stream?.getAudioTracks()[0] : stream?.getVideoTracks()[0];
    if (track) track.enabled = false;
    this.state[kind] = false;
    this.host.tiles.localTile?.updateFrames();
  }

  /** Whether a moderator asked us to wait before unmuting. */
  audioHeld() {
    return !!this.host.moderation?.held;
  }

  async toggleScreen() {
    const host = this.host;
    if (!host.session.wantsIn) return;
    if (this.screenStream) {
      this.stopScreen(true);
      return;
    }
    let s;
    try {
      s = await getScreen();
    } catch (err) {
      const name = /** @type {{name?: string}|null} */ (err)?.name;
      showNotice(host.ui, name === "NotAllowedError"
        ? "Screen sharing was cancelled or blocked. To share, press Share screen again and pick a screen, window or tab."
        : `Screen sharing could not start (${name || "error"}). Try again, or share a single window instead.`);
      return;
    }
    const track = s.getVideoTracks()[0];
    if (!host.session.wantsIn || !track) { s.getTracks().forEach((t) => t.stop()); return; }
    this.screenStream = s;
    // The browser's own "Stop sharing" button ends the track.
    track.addEventListener("ended", () => { if (this.screenStream === s) this.stopScreen(true); });
    this.state.screen = true;
    host.sendUpdate();
    host.topology.setScreen(track, s);
    host.tiles.showLocalScreen(s, host.userName);
    host.render();
  }

  /** @param {boolean} announce send the state change */
  stopScreen(announce) {
    const s = this.screenStream;
    if (!s) return;
    this.screenStream = null;
    this.host.topology.setScreen(null, null);
    for (const t of s.getTracks()) t.stop();
    this.host.tiles.removeLocalScreen();
    this.state.screen = false;
    if (announce) this.host.sendUpdate();
    this.host.render();
  }

  /** Brings the buttons in step with the state. */
  render() {
    const ui = this.host.ui;
    const s = this.state;
    const hasMic = !!this.localStream?.getAudioTracks().length;
    const hasCam = !!this.localStream?.getVideoTracks().length;
    // The words say what pressing does ("Unmute" while muted), so a
    // screen reader and the eye read the state from the label itself.
    setAction(ui.muteBtn, !s.audio, icon("mic", !s.audio), s.audio ? "Mute" : "Unmute",
      s.audio ? "Mute your microphone (M)" : hasMic ? "Unmute your microphone (M)" : "Turn on your microphone — asks for permission (M)");
    setAction(ui.cameraBtn, !s.video, icon("cam", !s.video), s.video ? "Stop video" : "Start video",
      s.video ? "Turn your camera off (V)" : hasCam ? "Turn your camera on (V)" : "Turn on your camera — asks for permission (V)");
    if (!ui.screenBtn.disabled) {
      setAction(ui.screenBtn, s.screen, icon("screen"), s.screen ? "Stop sharing" : "Share screen",
        s.screen ? "Stop sharing your screen" : "Share your screen, a window or a tab");
    }
    setToggle(ui.musicBtn, !!s.music, icon("music"), s.music
      ? "Music mode is on: your sound goes out unprocessed, in stereo. Press for speech mode."
      : "Music mode: send your instrument unprocessed, in stereo at a music bitrate, with the smallest jitter buffer");
  }
}

/**
 * A button whose label names its action; data-active styles the "off"
 * (not sending) or "sharing" state.
 * @param {HTMLButtonElement} btn
 * @param {boolean} active
 * @param {SVGElement} ic
 * @param {string} label
 * @param {string} title
 */
function setAction(btn, active, ic, label, title) {
  btn.dataset.active = String(active);
  btn.title = title;
  if (btn.getAttribute("aria-label") !== label) btn.setAttribute("aria-label", label);
  const text = btn.querySelector(".ctl-label");
  if (text && text.textContent !== label) text.textContent = label;
  const old = btn.querySelector("svg");
  if (old && old.outerHTML !== ic.outerHTML) old.replaceWith(ic);
}

/**
 * @param {HTMLButtonElement} btn
 * @param {boolean} pressed
 * @param {SVGElement} ic
 * @param {string} title
 */
function setToggle(btn, pressed, ic, title) {
  btn.setAttribute("aria-pressed", String(pressed));
  btn.title = title;
  const old = btn.querySelector("svg");
  if (old && old.outerHTML !== ic.outerHTML) old.replaceWith(ic);
}
