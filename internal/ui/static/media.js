// @ts-check
// Getting the camera, microphone and screen, and explaining failures in
// words a participant can act on.

/** Camera constraints: modest, because a mesh call sends one copy per peer. */
export const CAMERA_CONSTRAINTS = {
  width: { ideal: 640 },
  height: { ideal: 360 },
  frameRate: { ideal: 24 },
};

/**
 * Why a device request failed, in a few words, and what to do about it.
 * @param {unknown} err a DOMException from getUserMedia (or anything)
 * @param {string} device "camera", "microphone", "camera and microphone"
 * @returns {{why: string, fix: string}}
 */
export function describeMediaError(err, device) {
  const name = err && typeof err === "object" && "name" in err ? String(err.name) : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
      return {
        why: `${cap(device)} permission was denied`,
        fix: `Allow ${device} access in the browser's site settings and rejoin.`,
      };
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return {
        why: `No ${device} ${device.includes(" and ") ? "were" : "was"} found`,
        fix: `Connect a ${device} (or check that it is enabled) and rejoin.`,
      };
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return {
        why: `Your ${device} could not be started — another app may be using it`,
        fix: `Close other apps that use the ${device} and rejoin.`,
      };
    case "SecurityError":
    case "Unsupported":
      return {
        why: `The browser only allows ${device} access on secure (https) pages`,
        fix: "Ask your admin to serve Parley over https.",
      };
    default:
      return {
        why: `Your ${device} could not be used${name ? ` (${name})` : ""}`,
        fix: `Check the browser's site settings for this page and rejoin.`,
      };
  }
}

/** @param {string} s */
function cap(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * @typedef {object} LocalMedia
 * @property {MediaStream} stream   camera+mic stream (possibly with no tracks)
 * @property {"full"|"audio"|"none"} mode
 * @property {string} notice        "" when everything worked
 */

/**
 * Camera and microphone, falling back to microphone only, then to joining
 * receive-only. Never throws.
 * @param {MediaStreamConstraints} [want] the devices to ask for (prejoin.js)
 * @returns {Promise<LocalMedia>}
 */
export async function getLocalMedia(want = { audio: true, video: CAMERA_CONSTRAINTS }) {
  const md = globalThis.navigator?.mediaDevices;
  if (!md || typeof md.getUserMedia !== "function") {
    const d = describeMediaError({ name: globalThis.isSecureContext === false ? "SecurityError" : "Unsupported" }, "camera and microphone");
    return { stream: new MediaStream(), mode: "none", notice: `${d.why} — you joined to watch and listen only. ${d.fix}` };
  }
  let firstErr;
  try {
    const stream = await md.getUserMedia(want);
    return { stream, mode: "full", notice: "" };
  } catch (err) {
    firstErr = err;
  }
  try {
    const stream = await md.getUserMedia({ audio: want.audio || true });
    const d = describeMediaError(firstErr, "camera");
    return { stream, mode: "audio", notice: `${d.why} — you joined with microphone only. ${d.fix}` };
  } catch (err) {
    const d = describeMediaError(err, "camera and microphone");
    return {
      stream: new MediaStream(),
      mode: "none",
      notice: `${d.why} — you joined to watch and listen only; others cannot see or hear you. ${d.fix}`,
    };
  }
}

/**
 * Asks for one device after joining (the participant pressed unmute or
 * camera-on without a track). Throws the DOMException on failure.
 * @param {"audio"|"video"} kind
 * @returns {Promise<MediaStreamTrack>}
 */
export async function getDeviceTrack(kind) {
  const md = globalThis.navigator?.mediaDevices;
  if (!md?.getUserMedia) throw Object.assign(new Error("no mediaDevices"), { name: "Unsupported" });
  const stream = await md.getUserMedia(kind === "audio" ? { audio: true } : { video: CAMERA_CONSTRAINTS });
  return stream.getTracks()[0];
}

/** Whether this browser can share a screen at all (phones usually cannot). */
export function canShareScreen() {
  return typeof globalThis.navigator?.mediaDevices?.getDisplayMedia === "function";
}

/**
 * Asks the participant to pick a screen, window or tab.
 * @returns {Promise<MediaStream>} one video track
 */
export async function getScreen() {
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  const track = stream.getVideoTracks()[0];
  // Text and slides matter more than motion on a shared screen.
  if (track && "contentHint" in track) track.contentHint = "detail";
  return stream;
}
