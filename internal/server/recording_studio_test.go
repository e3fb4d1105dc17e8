package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/studio"
	"github.com/parley/parley/internal/testtool"
)

// TestRecordingToStudio: a finished call recording opens as a song in
// the studio: one track per participant named after them, each of their
// audio files a finished take placed at the file's start on the
// recording's timeline, its audio served byte for byte; the channel's
// pages are told; non-members get 403; a recording still running is
// refused; and a studio that cannot hold the files answers 507 and gets
// no half-made song.
func TestRecordingToStudio(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	s.SignUp("bob", "Bob")
	s.SignUp("eve", "Eve")
	ch := s.CreateChannel(owner, "Band")
	s.AddMember(owner, ch, "bob")
	ann, bob := s.Token("ann"), s.Token("bob")
	leaveAnn := caller(t, s, ch, "ann")
	leaveBob := caller(t, s, ch, "bob")

	code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"})
	if code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	var started struct{ Recording struct{ ID string } }
	json.Unmarshal(b, &started)
	id := started.Recording.ID
	toStudio := "/api/channels/" + ch + "/recordings/" + id + "/to-studio"
	if code, b := api(t, s, bob, "POST", toStudio, nil); code != http.StatusConflict {
		t.Errorf("to-studio while recording: %d %s, want 409", code, b)
	}
	time.Sleep(3 * time.Second) // the recording's length (what is recorded, not a wait for an event)
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "stop"}); code != 200 {
		t.Fatalf("stop: %d %s", code, b)
	}
	var m recording.Manifest
	testtool.Eventually(t, 10*time.Second, func() bool {
		m = manifest(t, s, ann, ch, id)
		return m.State == recording.StateFinished
	}, "the recording finished")
	leaveAnn()
	leaveBob()

	if code, b := api(t, s, s.Token("eve"), "POST", toStudio, nil); code != http.StatusForbidden {
		t.Errorf("non-member to-studio: %d %s, want 403", code, b)
	}
	// The channel's pages hear of it.
	sock := openSocket(t, s, ann, ch)
	sock.await(signaling.TypeHello)

	code, b = api(t, s, bob, "POST", toStudio, nil)
	if code != http.StatusCreated {
		t.Fatalf("to-studio: %d %s, want 201", code, b)
	}
	var created struct{ Song studio.SongView }
	if err := json.Unmarshal(b, &created); err != nil || created.Song.ID == "" {
		t.Fatalf("to-studio answered %s (%v)", b, err)
	}
	if ev := sock.await(signaling.TypeStudio); ev.Studio == nil || ev.Studio.Event != signaling.StudioSongAdded || ev.Studio.Song != created.Song.ID {
		t.Errorf("first studio message: %+v, want song-added %s", ev.Studio, created.Song.ID)
	}

	// The studio as its page reads it.
	code, b = api(t, s, ann, "GET", "/api/channels/"+ch+"/studio", nil)
	if code != 200 {
		t.Fatalf("GET studio: %d %s", code, b)
	}
	var view studio.View
	json.Unmarshal(b, &view)
	if len(view.Songs) != 1 || view.Songs[0].ID != created.Song.ID {
		t.Fatalf("studio songs: %+v", view.Songs)
	}
	song := view.Songs[0]
	audio := map[string][]recording.File{} // by user name
	for _, f := range m.Files {
		if f.Kind == "audio" {
			audio[f.UserName] = append(audio[f.UserName], f)
		}
	}
	if len(song.Tracks) != 2 || len(audio) != 2 {
		t.Fatalf("song %q has tracks %+v; the recording's audio: %+v", song.Name, song.Tracks, audio)
	}
	dir := filepath.Join(s.Config.DataDir, "recordings", ch, id)
	for _, tr := range song.Tracks {
		files := audio[tr.Name]
		if len(tr.Takes) != len(files) || len(files) == 0 {
			t.Errorf("track %q: %d takes, want one per audio file (%d)", tr.Name, len(tr.Takes), len(files))
			continue
		}
		for i, k := range tr.Takes {
			f := files[i]
			if k.OffsetMS != f.StartMS || k.State != "done" || k.Bytes != f.Bytes || k.DurationMS != f.DurationMS {
				t.Errorf("track %q take %d: offset %d, state %s, %d bytes, %d ms; want offset %d (start_ms), done, %d bytes, %d ms",
					tr.Name, i, k.OffsetMS, k.State, k.Bytes, k.DurationMS, f.StartMS, f.Bytes, f.DurationMS)
			}
			want, err := os.ReadFile(filepath.Join(dir, f.Name))
			if err != nil {
				t.Fatal(err)
			}
			code, got := api(t, s, bob, "GET", "/api/channels/"+ch+"/studio/takes/"+k.ID+"/audio", nil)
			if code != 200 || !bytes.Equal(got, want) {
				t.Errorf("take %s audio: %d, %d bytes; want 200 and the recording's %s (%d bytes)", k.ID, code, len(got), f.Name, len(want))
			}
		}
	}

	// A studio that cannot hold another copy: 507, and no new song.
	s.Config.StudioQuota = view.UsedBytes + view.UsedBytes/2
	s.Restart()
	code, b = api(t, s, s.Token("bob"), "POST", toStudio, nil)
	if code != http.StatusInsufficientStorage {
		t.Errorf("to-studio over the studio quota: %d %s, want 507", code, b)
	}
	_, b = api(t, s, s.Token("ann"), "GET", "/api/channels/"+ch+"/studio", nil)
	json.Unmarshal(b, &view)
	if len(view.Songs) != 1 {
		t.Errorf("after the refused copy the studio has %d songs, want 1", len(view.Songs))
	}
}
