// Package media is Parley's selective forwarding unit (SFU), built on
// pion/webrtc.
//
// Every participant of an SFU room has two peer connections with the
// server: a publish connection the client offers on (microphone, camera
// with three simulcast layers, screen share) and a subscribe connection
// the server offers on (every other participant's tracks). All of them
// share one webrtc.API, one UDP port and one ICE-TCP port.
//
// Forwarding runs one goroutine per received RTP stream (one per simulcast
// layer). Each packet is rewritten per subscriber (SSRC, payload type,
// sequence number and timestamp offsets, so layer switches and unmutes are
// seamless) and written through the subscriber's interceptors and SRTP,
// with no goroutine hop and no allocation per packet. Video packets are
// kept in one cache per layer (internal/packetcache), from which
// subscribers' NACKs are answered.
//
// # Driving it from the room
//
// media never imports room or web; the room calls in and hears back
// through callbacks that must not block (they queue):
//
//   - Join(roomID, participantID, RoomEvents, PeerEvents) when the
//     participant enters SFU mode. RoomEvents is taken from the first Join
//     of a room. Joining again with the same participant id replaces the
//     previous Peer (closed in the background), so a resume or a quick
//     return to SFU mode needs no wait for the old Close.
//   - Client offer {to: "sfu", pc: "pub", sdp, sources}: Publish(sdp,
//     sources) returns the answer to send as {from: "sfu", pc: "pub"}.
//     Renegotiations (adding or removing a screen share) go the same way.
//   - PeerEvents.Offer(sdp): send {type: offer, from: "sfu", pc: "sub"};
//     the client's answer goes to AnswerSubscriber. No new Offer comes
//     before that answer. A refused answer makes the SFU offer again.
//   - Candidates from the client: AddCandidate(pc, c); a null candidate
//     can be dropped. The SFU's SDPs already carry its candidates (host
//     candidates are known at once), so PeerEvents.Candidate rarely fires.
//   - Participant state: SetSending(state.audio, state.video,
//     state.screen) at join and on every update. Until the first call all
//     sources are forwarded.
//   - layout {tiles}: SetLayout. Until the first call every video is
//     forwarded as if shown at 640×360 (the h layer).
//   - RoomEvents.Speaker(id): broadcast {type: speaker, id}.
//   - leave / socket gone / PeerEvents.State "failed": Close. Close waits
//     for the peer's goroutines (tens of milliseconds): call it from a
//     goroutine that may block, never from inside a PeerEvents callback.
//     A connection that fails or is closed by the client closes its Peer
//     by itself too.
//
// # WHIP publishers and WHEP viewers
//
//   - JoinPublisher is Join for a participant that only sends (a WHIP
//     encoder): no subscribe connection, nothing forwarded to it, no
//     Offer. Publish the encoder's offer as above; Done tells the room
//     when its connection ended by itself.
//   - View(roomID, participantID, offer) answers a receive-only client's
//     offer (WHEP) with one participant's camera video and microphone on
//     the offer's recvonly m-lines (participantID "" = the active
//     speaker, else the first participant sending camera video). The
//     answer is complete (no trickle from the SFU); the choice is fixed;
//     the Viewer closes by itself when those tracks end. Viewers are not
//     participants (Stats.Viewers, parley_sfu_viewers count them) but
//     forward through the same downTracks as subscribers.
//
// # What browsers send and get
//
// Camera: addTransceiver(track, {direction: "sendonly", streams:
// [stream], sendEncodings: [{rid: "q", scaleResolutionDownBy: 4}, {rid:
// "h", scaleResolutionDownBy: 2}, {rid: "f"}]}); the microphone in the
// same stream; a screen share in a stream of its own with one encoding.
// sources maps each track.id to "microphone", "camera" or "screen" (a
// track missing from it is guessed: audio is the microphone, the first
// video the camera, another video a screen). VP8 is preferred, H.264
// (constrained baseline, packetization-mode 1) accepted; Opus for audio.
//
// Subscribers get streams "PUBLISHER:camera" (tracks PUBLISHER:camera and
// PUBLISHER:microphone) and "PUBLISHER:screen" (PUBLISHER:screen, and
// PUBLISHER:screen-audio if any), one encoding each, the simulcast layer
// chosen per tile size (the smallest layer at least 3/4 of the tile in
// both dimensions) and lowered while the subscriber reports sustained
// loss. When a publisher leaves, its m-lines in the subscriber's next
// offer become inactive and the remote tracks end.
package media
