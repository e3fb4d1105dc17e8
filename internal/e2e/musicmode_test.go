package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
)

// Music mode for the call (issue 11, "Monitor like musicians need") and
// the mouth-to-ear delay between two pages, from WebRTC stats, in speech
// and in music mode (docs/performance.md).

// audioLink is window.parley.audioLink(peer) (static/testhook.js).
type audioLink struct {
	Topology        string  `json:"topology"`
	RTT             float64 `json:"rtt"`
	RecvRTT         float64 `json:"recvRtt"`
	JBDelay         float64 `json:"jbDelay"`
	JBEmitted       float64 `json:"jbEmitted"`
	JBTarget        float64 `json:"jbTarget"`
	PacketsReceived float64 `json:"packetsReceived"`
	SendFmtp        string  `json:"sendFmtp"`
	RecvFmtp        string  `json:"recvFmtp"`
	RemoteSDP       string  `json:"remoteSdp"`
	MaxBitrate      float64 `json:"maxBitrate"`
	TargetBitrate   float64 `json:"targetBitrate"`
	Mic             struct {
		EchoCancellation bool    `json:"echoCancellation"`
		NoiseSuppression bool    `json:"noiseSuppression"`
		AutoGainControl  bool    `json:"autoGainControl"`
		ChannelCount     float64 `json:"channelCount"`
	} `json:"mic"`
	BaseLatency         float64    `json:"baseLatency"`
	OutputLatency       float64    `json:"outputLatency"`
	JitterBufferTargets []*float64 `json:"jitterBufferTargets"`
}

func (u *user) audioLink(peer string) audioLink {
	u.t.Helper()
	return evalAsync[audioLink](u, fmt.Sprintf(`window.parley.audioLink(%q)`, peer))
}

// waitLink polls u's audio link to peer until ok holds.
func (u *user) waitLink(what, peer string, ok func(audioLink) bool, timeout time.Duration) audioLink {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := u.audioLink(peer)
		if ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: waited %s for %s; last: %+v", u.name, timeout, what, l)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not a synchronisation
	}
}

// mouthToEar is one measurement, in seconds.
type mouthToEar struct {
	halfRTT, jitterBuffer, audio float64
	// The audio latencies: speaker's baseLatency, listener's base and output.
	speakerBase, listenerBase, listenerOutput float64
}

func (m mouthToEar) total() float64 { return m.halfRTT + m.jitterBuffer + m.audio }

func (m mouthToEar) String() string {
	return fmt.Sprintf("%.1f ms (RTT/2 %.1f ms + jitter buffer %.1f ms + audio I/O %.1f ms: speaker base %.1f, listener base %.1f + output %.1f)",
		m.total()*1000, m.halfRTT*1000, m.jitterBuffer*1000, m.audio*1000, m.speakerBase*1000, m.listenerBase*1000, m.listenerOutput*1000)
}

// measureMouthToEar measures the audio from speaker to listener over the
// next `seconds` of played-out audio: the jitter buffer's mean delay over
// that window (the delta of jitterBufferDelay over the delta of
// jitterBufferEmittedCount, so what came before does not count), half
// the current round trip, and the audio latencies of the two pages
// (AudioContext baseLatency on the speaker's page standing in for the
// input side, which browsers do not report; base + output latency on the
// listener's).
func measureMouthToEar(listener, speaker *user, listenerID, speakerID string, seconds float64) mouthToEar {
	listener.t.Helper()
	// The first two seconds after a start or a switch are the jitter
	// buffer settling; they do not count.
	start := listener.audioLink(speakerID)
	before := listener.waitLink("2 s of audio to settle", speakerID,
		func(l audioLink) bool { return l.JBEmitted >= start.JBEmitted+2*48000 }, 30*time.Second)
	after := listener.waitLink(fmt.Sprintf("%.0f s more of %s's audio played out", seconds, speaker.name), speakerID,
		func(l audioLink) bool { return l.JBEmitted >= before.JBEmitted+seconds*48000 }, time.Duration(seconds*4+20)*time.Second)
	sp := speaker.audioLink(listenerID)
	// One way: half the round trip to the peer (mesh), or to the SFU and
	// from it (speaker's publish connection, listener's subscribe one).
	oneWay := after.RTT / 2
	if after.Topology == "sfu" {
		oneWay = sp.RTT/2 + after.RecvRTT/2
	}
	m := mouthToEar{
		halfRTT:        oneWay,
		jitterBuffer:   (after.JBDelay - before.JBDelay) / (after.JBEmitted - before.JBEmitted),
		audio:          sp.BaseLatency + after.BaseLatency + after.OutputLatency,
		speakerBase:    sp.BaseLatency,
		listenerBase:   after.BaseLatency,
		listenerOutput: after.OutputLatency,
	}
	if !(m.jitterBuffer > 0 && m.jitterBuffer < 1) {
		listener.t.Errorf("jitter buffer delay %.3f s from %+v → %+v: not a measurement", m.jitterBuffer, before, after)
	}
	return m
}

// TestMusicModeMouthToEar: Ann (440 Hz) and Bob (660 Hz) in a call; the
// mouth-to-ear delay of Ann's audio on Bob's page in speech mode, then
// both press "Music mode": Ann's page announces it (Bob's people list
// shows it), her microphone runs without echo cancellation, noise
// suppression and auto gain, her encoder negotiated Opus stereo at the
// music bitrate without DTX (the SDP she applied and the codec of her
// outbound-rtp say so) with the bitrate cap on her sender; then the
// delay again. Both delays are logged for docs/performance.md. Once peer
// to peer (mesh) and once through the SFU (P2PMax 1), whose Opus
// parameters (minptime, useinbandfec) music mode must keep.
func TestMusicModeMouthToEar(t *testing.T) {
	for _, topology := range []string{"mesh", "sfu"} {
		t.Run(topology, func(t *testing.T) {
			var opts []servertest.Option
			if topology == "sfu" {
				opts = append(opts, servertest.WithConfig(func(c *config.Config) { c.P2PMax = 1 }))
			}
			mouthToEarIn(t, topology, opts...)
		})
	}
}

func mouthToEarIn(t *testing.T, topology string, opts ...servertest.Option) {
	_, ann, bob, ch := bandOf(t, opts...)
	ann.joinCall(ch)
	bob.joinCall(ch)
	annID, bobID := ann.myID(), bob.myID()
	bob.waitFor("the call's topology", fmt.Sprintf(`window.parley.state.topology === %q`, topology), 30*time.Second)
	bob.waitLink("Ann's audio", annID, func(l audioLink) bool { return l.PacketsReceived > 100 && l.JBEmitted > 0 && l.RTT > 0 }, 30*time.Second)

	speechLink := ann.audioLink(bobID)
	if !speechLink.Mic.EchoCancellation {
		t.Errorf("speech mode: Ann's microphone has echo cancellation off (%+v); the default is on", speechLink.Mic)
	}
	if strings.Contains(speechLink.SendFmtp, "stereo=1") {
		t.Errorf("speech mode: Ann's encoder already stereo: %q", speechLink.SendFmtp)
	}
	if l := bob.audioLink(annID); len(l.JitterBufferTargets) == 0 || l.JitterBufferTargets[0] != nil {
		t.Errorf("speech mode: Bob's audio receivers' jitterBufferTarget %v, want the browser's (null)", l.JitterBufferTargets)
	}
	speech := measureMouthToEar(bob, ann, bobID, annID, 5)
	t.Logf("speech mode: mouth-to-ear %s; Ann sends %q, target bitrate %.0f bit/s", speech, speechLink.SendFmtp, speechLink.TargetBitrate)

	for _, u := range []*user{ann, bob} {
		u.do(chromedp.Click(chromedp.CSS("#music-btn")))
		u.waitFor("music mode on", `document.querySelector('#music-btn')?.getAttribute('aria-pressed') === "true" && window.parley.state.me.music === true`, 15*time.Second)
	}
	bob.waitFor("Ann's music mode announced to Bob", fmt.Sprintf(`!!document.querySelector('li[data-participant-id=%q] .flag[title="Music mode"]')`, annID), 15*time.Second)

	music := ann.waitLink("Ann's encoder in music mode", bobID, func(l audioLink) bool {
		return strings.Contains(l.SendFmtp, "stereo=1") && l.MaxBitrate == 160000
	}, 30*time.Second)
	for _, want := range []string{"stereo=1", "sprop-stereo=1", "maxaveragebitrate=160000", "usedtx=0"} {
		if !strings.Contains(music.RemoteSDP, want) {
			t.Errorf("music mode: the SDP Ann's page applied lacks %q", want)
		}
	}
	if topology == "sfu" && (!strings.Contains(music.SendFmtp, "minptime=10") || !strings.Contains(music.SendFmtp, "useinbandfec=1")) {
		t.Errorf("music mode: the SFU's Opus parameters (minptime=10, useinbandfec=1) were lost: %q", music.SendFmtp)
	}
	if !strings.Contains(music.SendFmtp, "usedtx=0") || !strings.Contains(music.SendFmtp, "maxaveragebitrate=160000") {
		t.Errorf("music mode: Ann's outbound-rtp codec is %q, want stereo at 160 kbit/s without DTX", music.SendFmtp)
	}
	if m := music.Mic; m.EchoCancellation || m.NoiseSuppression || m.AutoGainControl {
		t.Errorf("music mode: Ann's microphone still processes speech: %+v", m)
	}
	if l := bob.audioLink(annID); len(l.JitterBufferTargets) == 0 || l.JitterBufferTargets[0] == nil || *l.JitterBufferTargets[0] != 0 {
		t.Errorf("music mode: Bob's audio receivers' jitterBufferTarget %v, want 0", l.JitterBufferTargets)
	}
	// Audio keeps flowing on the new microphone track.
	bob.waitLink("Ann's audio after the switch", annID, func(l audioLink) bool { return l.JBEmitted > 0 }, 10*time.Second)
	mus := measureMouthToEar(bob, ann, bobID, annID, 5)
	t.Logf("music mode: mouth-to-ear %s; Ann sends %q, target bitrate %.0f bit/s, mic %+v", mus, music.SendFmtp, music.TargetBitrate, music.Mic)
	t.Logf("floor of this run: round trip %.2f ms (speech) / %.2f ms (music; through the SFU: publish + subscribe); audio I/O %.1f ms",
		speech.halfRTT*2000, mus.halfRTT*2000, mus.audio*1000)
}

// TestMusicModeKeptWhenReconnecting: Ann is in music mode when the server
// restarts; her page rejoins in music mode (join carries state.music), so
// Bob, loading the call afresh from the restarted server, sees it, and
// Ann's microphone and encoder stay in music mode.
func TestMusicModeKeptWhenReconnecting(t *testing.T) {
	s, ann, bob, ch := bandOf(t)
	ann.joinCall(ch)
	bob.joinCall(ch)
	annID := ann.myID()
	ann.do(chromedp.Click(chromedp.CSS("#music-btn")))
	ann.waitFor("music mode on", `window.parley.state.me.music === true`, 15*time.Second)

	s.Stop()
	ann.waitFor("signaling shown as reconnecting", `document.querySelector('#signal-status')?.dataset.state === "reconnecting"`, 10*time.Second)
	s.Restart()
	ann.waitFor("signaling reconnected", `document.querySelector('#signal-status')?.dataset.state === "connected" && window.parley.myId`, 20*time.Second)
	if got := ann.myID(); got != annID {
		t.Errorf("Ann rejoined as %s, want %s", got, annID)
	}
	// A fresh page knows only what the restarted server tells it.
	bob.joinCall(ch)
	bob.waitFor("Ann's music mode, from the restarted server", fmt.Sprintf(`!!document.querySelector('li[data-participant-id=%q] .flag[title="Music mode"]')`, annID), 15*time.Second)
	if eval[string](ann, `document.querySelector('#music-btn').getAttribute('aria-pressed')`) != "true" {
		t.Errorf("Ann's Music mode button is not pressed after the reconnect")
	}
	bobID := bob.myID()
	l := ann.waitLink("Ann's encoder in music mode towards Bob's new page", bobID, func(l audioLink) bool {
		return strings.Contains(l.SendFmtp, "stereo=1") && l.MaxBitrate == 160000
	}, 30*time.Second)
	if l.Mic.EchoCancellation {
		t.Errorf("after the reconnect Ann's microphone has echo cancellation on")
	}
}
