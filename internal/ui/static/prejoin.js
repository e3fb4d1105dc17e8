// @ts-check
// The pre-join check, in the lobby: a camera preview, the choice of
// microphone, camera and speaker, a live microphone level, "join muted"
// and "join with camera off". The choices are remembered in this browser
// (localStorage); a failure says what went wrong and how to fix it
// (media.js describeMediaError). Nothing is asked of the browser until
// the participant presses "Check camera and microphone" or Join.

import { h } from "./ui.js";
import { CAMERA_CONSTRAINTS, describeMediaError } from "./media.js";

const STORE_KEY = "parley.devices";

/**
 * @typedef {object} DevicePrefs
 * @property {string} mic      deviceId, "" = the browser's default
 * @property {string} cam
 * @property {string} speaker
 * @property {boolean} muted   join with the microphone off
 * @property {boolean} camOff  join with the camera off
 */

/** @returns {DevicePrefs} */
export function loadPrefs() {
  /** @type {DevicePrefs} */
  const d = { mic: "", cam: "", speaker: "", muted: false, camOff: false };
  try {
    const raw = JSON.parse(globalThis.localStorage?.getItem(STORE_KEY) || "{}");
    if (raw && typeof raw === "object") {
      for (const k of /** @type {const} */ (["mic", "cam", "speaker"])) if (typeof raw[k] === "string") d[k] = raw[k];
      d.muted = raw.muted === true;
      d.camOff = raw.camOff === true;
    }
  } catch {
    // Storage off or garbled: the defaults.
  }
  return d;
}

/** @param {DevicePrefs} p */
function savePrefs(p) {
  try {
    globalThis.localStorage?.setItem(STORE_KEY, JSON.stringify(p));
  } catch {
    // Private mode: the choices last for this page only.
  }
}

/**
 * getUserMedia constraints for the chosen devices: exactly those (the
 * preview, which says so when one is gone), or preferably those (joining
 * without a preview, which must not fail over a device unplugged since).
 * @param {DevicePrefs} p
 * @param {boolean} [exact]
 * @returns {MediaStreamConstraints}
 */
export function deviceConstraints(p, exact = true) {
  /** @param {string} id */
  const dev = (id) => (exact ? { deviceId: { exact: id } } : { deviceId: { ideal: id } });
  return {
    audio: p.mic ? dev(p.mic) : true,
    video: p.cam ? { ...CAMERA_CONSTRAINTS, ...dev(p.cam) } : CAMERA_CONSTRAINTS,
  };
}

/** The pre-join panel of the lobby. */
export class PreJoin {
  /** @param {import("./ui.js").Layout} ui */
  constructor(ui) {
    this.ui = ui;
    this.prefs = loadPrefs();
    /** @type {MediaStream|null} the preview's stream, handed to the call on join */
    this.stream = null;
    /** @type {AudioContext|null} */
    this.audioCtx = null;
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.meterTimer = undefined;

    /** @param {string} id @param {string} label */
    const select = (id, label) => {
      const s = /** @type {HTMLSelectElement} */ (h("select", { id, disabled: true }));
      return { s, field: h("div", { class: "field" }, h("label", { for: id }, label), s) };
    };
    this.preview = /** @type {HTMLVideoElement} */ (h("video", { id: "prejoin-preview", class: "prejoin-preview", autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera preview" }));
    this.preview.muted = true;
    this.checkBtn = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "prejoin-check", class: "btn" }, "Check camera and microphone"));
    this.mic = select("mic-select", "Microphone");
    this.cam = select("cam-select", "Camera");
    this.speaker = select("speaker-select", "Speaker");
    this.level = /** @type {HTMLMeterElement} */ (h("meter", { id: "mic-level", min: "0", max: "1", value: "0", "aria-label": "Microphone level" }));
    this.muted = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "join-muted" }));
    this.camOff = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "join-camoff" }));
    this.muted.checked = this.prefs.muted;
    this.camOff.checked = this.prefs.camOff;
    this.error = h("p", { id: "prejoin-error", class: "field-error", role: "alert", hidden: true });
    this.panel = h("div", { id: "prejoin", class: "prejoin" },
      this.preview,
      h("div", { class: "prejoin-controls" },
        this.checkBtn, this.mic.field, h("div", { class: "field" }, h("span", { class: "small" }, "Microphone level"), this.level),
        this.cam.field, this.speaker.field,
        h("label", {}, this.muted, " Join muted"),
        h("label", {}, this.camOff, " Join with camera off"),
        this.error));
    ui.joinBtn.before(this.panel);

    this.checkBtn.addEventListener("click", () => this.start());
    for (const [sel, key] of /** @type {const} */ ([[this.mic.s, "mic"], [this.cam.s, "cam"], [this.speaker.s, "speaker"]])) {
      sel.addEventListener("change", () => {
        this.prefs[key] = sel.value;
        savePrefs(this.prefs);
        if (key !== "speaker" && this.stream) this.start();
      });
    }
    this.muted.addEventListener("change", () => { this.prefs.muted = this.muted.checked; savePrefs(this.prefs); });
    this.camOff.addEventListener("change", () => { this.prefs.camOff = this.camOff.checked; savePrefs(this.prefs); });
    this.listDevices();
  }

  /** Shows the preview with the chosen devices, and the level meter. */
  async start() {
    this.stopPreview();
    this.showError("");
    const md = globalThis.navigator?.mediaDevices;
    if (!md?.getUserMedia) {
      const d = describeMediaError({ name: globalThis.isSecureContext === false ? "SecurityError" : "Unsupported" }, "camera and microphone");
      this.showError(`${d.why}. ${d.fix}`);
      return;
    }
    let stream;
    /** @type {unknown} */
    let failure;
    try {
      stream = await md.getUserMedia(deviceConstraints(this.prefs));
    } catch (err) {
      failure = err;
      const name = /** @type {{name?: string}} */ (err)?.name;
      if ((name === "OverconstrainedError" || name === "NotFoundError") && (this.prefs.mic || this.prefs.cam)) {
        // A remembered device is gone: the defaults instead.
        this.prefs.mic = this.prefs.cam = "";
        try { stream = await md.getUserMedia(deviceConstraints(this.prefs)); } catch (err2) { failure = err2; }
      }
      if (!stream) {
        const d = describeMediaError(failure, "camera and microphone");
        this.showError(`${d.why}. ${d.fix.replace(/ and rejoin\.$/, ", then press Check camera and microphone again.")}`);
        return;
      }
    }
    this.stream = stream;
    this.preview.srcObject = stream;
    this.startMeter(stream);
    await this.listDevices();
  }

  /** @param {string} text "" hides it */
  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  /** Fills the device lists (labels appear once permission is given). */
  async listDevices() {
    const md = globalThis.navigator?.mediaDevices;
    if (!md?.enumerateDevices) return;
    let devs;
    try { devs = await md.enumerateDevices(); } catch { return; }
    const cur = this.stream;
    const inUse = {
      mic: cur?.getAudioTracks()[0]?.getSettings().deviceId || this.prefs.mic,
      cam: cur?.getVideoTracks()[0]?.getSettings().deviceId || this.prefs.cam,
      speaker: this.prefs.speaker,
    };
    for (const [sel, kind, key, noun] of /** @type {const} */ ([
      [this.mic.s, "audioinput", "mic", "Microphone"], [this.cam.s, "videoinput", "cam", "Camera"], [this.speaker.s, "audiooutput", "speaker", "Speaker"],
    ])) {
      const list = devs.filter((d) => d.kind === kind && d.deviceId);
      sel.replaceChildren(...list.map((d, i) => h("option", { value: d.deviceId }, d.label || `${noun} ${i + 1}`)));
      if (list.length === 0) sel.append(h("option", { value: "" }, kind === "audiooutput" ? "System default" : `No ${noun.toLowerCase()} found`));
      if (list.some((d) => d.deviceId === inUse[key])) sel.value = inUse[key];
      sel.disabled = list.length === 0 || (kind !== "audiooutput" && !cur);
    }
    if (!("setSinkId" in HTMLMediaElement.prototype)) this.speaker.s.disabled = true;
  }

  /** @param {MediaStream} stream */
  startMeter(stream) {
    const track = stream.getAudioTracks()[0];
    if (!track || typeof AudioContext === "undefined") return;
    const ctx = new AudioContext();
    this.audioCtx = ctx;
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(an);
    const buf = new Float32Array(an.fftSize);
    this.meterTimer = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let peak = 0;
      for (const x of buf) peak = Math.max(peak, Math.abs(x));
      this.level.value = Math.min(1, peak * 2);
    }, 60);
  }

  stopMeter() {
    clearInterval(this.meterTimer);
    this.audioCtx?.close().catch(() => {});
    this.audioCtx = null;
    this.level.value = 0;
  }

  /** Stops the preview and its devices. */
  stopPreview() {
    this.stopMeter();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.preview.srcObject = null;
  }

  /**
   * Hands the preview's stream to the call (Join pressed), or null when
   * there is no preview: the call then asks with deviceConstraints.
   * @returns {MediaStream|null}
   */
  take() {
    const s = this.stream;
    this.stopMeter();
    this.stream = null;
    this.preview.srcObject = null;
    return s;
  }

  /**
   * Plays the call's sound on the chosen speaker.
   * @param {ParentNode} root
   */
  applySpeaker(root) {
    const id = this.prefs.speaker;
    if (!id) return;
    for (const el of root.querySelectorAll("video, audio")) {
      const m = /** @type {HTMLMediaElement & {sinkId?: string, setSinkId?: (id: string) => Promise<void>}} */ (el);
      if (m.setSinkId && m.sinkId !== id) m.setSinkId(id).catch(() => {});
    }
  }
}
