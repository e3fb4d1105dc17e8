package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley/parley/internal/servertest"
)

// whipJS publishes the page's fake camera and microphone with WHIP, from
// the page itself (same origin, the session cookie authenticates), the way
// a browser-based WHIP encoder does. It resolves to the session URL.
const whipJS = `(async () => {
	const pc = new RTCPeerConnection();
	const media = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 360}});
	for (const t of media.getTracks()) pc.addTransceiver(t, {direction: "sendonly", streams: [media]});
	await pc.setLocalDescription(await pc.createOffer());
	await new Promise(r => { if (pc.iceGatheringState === "complete") r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
	const resp = await fetch("/whip/%s", {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
	if (resp.status !== 201) throw new Error("WHIP POST: " + resp.status + " " + await resp.text());
	await pc.setRemoteDescription({type: "answer", sdp: await resp.text()});
	window.whipPC = pc;
	return resp.headers.get("Location");
})()`

// whepJS plays one participant with WHEP and keeps the connection in
// window.whepPC; framesJS reads how many video frames it decoded.
const whepJS = `(async () => {
	const pc = new RTCPeerConnection();
	pc.addTransceiver("video", {direction: "recvonly"});
	pc.addTransceiver("audio", {direction: "recvonly"});
	await pc.setLocalDescription(await pc.createOffer());
	await new Promise(r => { if (pc.iceGatheringState === "complete") r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
	const resp = await fetch("/whep/%s?participant=%s", {method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp});
	if (resp.status !== 201) throw new Error("WHEP POST: " + resp.status + " " + await resp.text());
	await pc.setRemoteDescription({type: "answer", sdp: await resp.text()});
	window.whepPC = pc;
	return resp.headers.get("Location");
})()`

const whepFramesJS = `window.whepPC.getStats().then(st => {
	let n = 0;
	st.forEach(s => { if (s.type === "inbound-rtp" && s.kind === "video") n += s.framesDecoded || 0; });
	return n;
})`

// TestWHIPAndWHEPInBrowsers: a WHIP publisher (a browser page using the
// standard protocol, nothing of Parley's page) shows up in a call as a
// participant whose video the others decode; a WHEP player (another page)
// decodes a call participant's video.
func TestWHIPAndWHEPInBrowsers(t *testing.T) {
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, bob, cyd := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob"), newUser(t, browser, s, "Cyd")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	cyd.signUp("cyd", "Cyd")
	channel := ada.createChannel("Broadcast")
	ada.addMember(channel, "bob")
	ada.addMember(channel, "cyd")
	ada.joinCall(channel)
	adaID := ada.myID()

	location := evalAsync[string](bob, fmt.Sprintf(whipJS, channel))
	if location == "" {
		t.Fatal("WHIP answered without a Location")
	}
	ada.waitFor("the WHIP publisher as a participant", `window.parley.peers().length === 1`, 20*time.Second)
	whipID := eval[[]string](ada, `window.parley.peers()`)[0]
	ada.waitRemoteVideos([]string{whipID}, 30*time.Second)
	ada.waitFor("the WHIP participant named as such", fmt.Sprintf(
		`(document.querySelector('#tiles .tile[data-participant-id=%q]')?.textContent || "").includes("(WHIP)")`, whipID), 5*time.Second)

	evalAsync[string](cyd, fmt.Sprintf(whepJS, channel, adaID))
	cyd.waitFor("WHEP video frames decoded", whepFramesJS+`.then(n => n > 30)`, 30*time.Second)

	// DELETE ends the WHIP session: the participant leaves the call.
	if status := evalAsync[int](bob, fmt.Sprintf(`fetch(%q, {method: "DELETE"}).then(r => r.status)`, location)); status != 200 {
		t.Fatalf("WHIP DELETE: status %d, want 200", status)
	}
	ada.waitFor("the WHIP participant gone", `window.parley.peers().length === 0`, 10*time.Second)
}
