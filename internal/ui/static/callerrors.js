// @ts-check
// What the call page does with the server's `error` messages
// (docs/protocol.md, Errors): most are expected races and recover by
// themselves; the rest are shown.

import { showToast } from "./ui.js";

/**
 * @param {import("./call.js").Call} call
 * @param {import("./protocol.js").ErrorMessage} m
 */
export function handleServerError(call, m) {
  const text = typeof m.message === "string" && m.message
    ? m.message
    : `The server refused a message (${m.code || "unknown error"}).`;
  const ref = m.ref ?? "";
  if (ref === "chat") return call.chat.serverError(text);
  if (ref === "layout") {
    // Sent while the server was still setting up our SFU connections
    // (or just after leaving the SFU); onServerReady sends it again.
    console.info("parley:", text);
    return;
  }
  if (m.code === "unknown-peer") {
    // A peer left while our offer/candidate was in flight: expected, harmless.
    console.info("parley:", text);
    return;
  }
  const sfu = call.topology.sfu;
  if (sfu && ["offer", "answer", "candidate"].includes(ref)) {
    // Most likely about the SFU connections (mesh messages fail with
    // unknown-peer), and the two sides recover by themselves: a refused
    // answer makes the server offer again; a refused offer is retried.
    console.info("parley:", text);
    if (ref === "offer" && call.topology.current === "sfu") sfu.offerRefused();
    return;
  }
  if (ref === "join") {
    if (m.code === "already-joined" && !call.session.restartedForJoin) {
      // The server keeps one join per socket; rejoining after a leave on
      // the same socket needs a fresh one (maybeSendJoin runs on its hello).
      call.session.restartedForJoin = true;
      call.sig.restart();
      return;
    }
    if (call.session.phase === "resume-sent" && m.code === "invalid") {
      // Our resume id was refused: join as a newcomer instead.
      call.topology.removeAll();
      call.topology.closeSfu();
      call.session.fire("resume-refused");
      call.maybeSendJoin();
      return;
    }
    showToast(call.ui, `Could not join the call: ${text}`);
    call.teardown();
    return;
  }
  if (m.code === "not-joined" && ["offer", "answer", "candidate", "update", "layout"].includes(ref)) {
    // Raced with a leave or a reconnect; the next join resends our state.
    console.info("parley:", text);
    return;
  }
  showToast(call.ui, text);
}
