package store_test

import (
	"context"
	"testing"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestStudioRows walks a song, its tracks and a take through their life on
// both databases: chunk acknowledgements, the channel's byte count, the
// chosen take, and deletes that stay inside their channel.
func TestStudioRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		c := mkChannel(t, db, ann, "band", t0)
		other := mkChannel(t, db, ann, "other", t0)
		song := store.Song{ID: newID("s"), ChannelID: c.ID, Name: "Tune", CreatedBy: ann.ID, CreatedAt: t0}
		if err := db.CreateSong(ctx, song); err != nil {
			t.Fatal(err)
		}
		drums, err := db.CreateTrack(ctx, c.ID, store.Track{ID: newID("t"), SongID: song.ID, Name: "Drums", CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		vox, err := db.CreateTrack(ctx, c.ID, store.Track{ID: newID("t"), SongID: song.ID, Name: "Vocals", CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if drums.Position != 0 || vox.Position != 1 {
			t.Errorf("positions = %d, %d; want 0, 1", drums.Position, vox.Position)
		}
		// A track cannot be added to a song through another channel.
		_, err = db.CreateTrack(ctx, other.ID, store.Track{ID: newID("t"), SongID: song.ID, Name: "X", CreatedAt: t0})
		wantErr(t, "track via other channel", err, store.ErrNotFound)

		tk := store.Take{ID: newID("k"), TrackID: vox.ID, ChannelID: c.ID, UserID: ann.ID, CreatedAt: t0, OffsetMS: 3000, LatencyMS: 20, State: store.TakeRecording}
		if err := db.CreateTake(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateTake(ctx, store.Take{ID: newID("k"), TrackID: vox.ID, ChannelID: other.ID, UserID: ann.ID, CreatedAt: t0, State: store.TakeRecording}); err == nil {
			t.Error("take on another channel's track was stored")
		}
		if err := db.AckChunk(ctx, tk.ID, 1, 100, 250, "audio/webm"); err != nil {
			t.Fatal(err)
		}
		if err := db.AckChunk(ctx, tk.ID, 2, 250, 500, ""); err != nil {
			t.Fatal(err)
		}
		if err := db.EndTake(ctx, tk.ID, store.TakeInterrupted, 0); err != nil {
			t.Fatal(err)
		}
		got, err := db.TakeOf(ctx, c.ID, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Chunks != 2 || got.Bytes != 250 || got.DurationMS != 500 || got.MIME != "audio/webm" || got.State != store.TakeInterrupted || got.SongID != song.ID || got.UserName != "Ann" || got.OffsetMS != 3000 || got.LatencyMS != 20 {
			t.Errorf("take = %+v", got)
		}
		if _, err := db.TakeOf(ctx, other.ID, tk.ID); err == nil {
			t.Error("take visible through another channel")
		}
		if n, err := db.StudioBytes(ctx, c.ID); err != nil || n != 250 {
			t.Errorf("StudioBytes = %d, %v; want 250", n, err)
		}
		if err := db.ChooseTake(ctx, c.ID, vox.ID, tk.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "choose a take of another track", db.ChooseTake(ctx, c.ID, drums.ID, tk.ID), store.ErrNotFound)
		if rec, err := db.TakesInState(ctx, store.TakeInterrupted); err != nil || len(rec) != 1 {
			t.Errorf("TakesInState = %v, %v", rec, err)
		}
		wantErr(t, "delete via other channel", db.DeleteTake(ctx, other.ID, tk.ID), store.ErrNotFound)
		if err := db.DeleteTake(ctx, c.ID, tk.ID); err != nil {
			t.Fatal(err)
		}
		tracks, err := db.Tracks(ctx, c.ID)
		if err != nil || len(tracks) != 2 || tracks[1].ChosenTake != "" {
			t.Errorf("tracks after delete = %+v, %v", tracks, err)
		}
		if err := db.DeleteSong(ctx, c.ID, song.ID); err != nil {
			t.Fatal(err)
		}
		if songs, _ := db.Songs(ctx, c.ID); len(songs) != 0 {
			t.Errorf("songs after delete = %v", songs)
		}
	})
}

// TestStudioOutlivesItsMaker: when a member deletes their account, the
// songs they made and the takes they recorded in a channel that goes on
// (handed to another member) stay, credited to a deleted account; the
// band's other takes in those songs are untouched.
func TestStudioOutlivesItsMaker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann := mkUser(t, db, "ann", "Ann")
		bob := mkUser(t, db, "bob", "Bob")
		c := mkChannel(t, db, ann, "band", t0)
		if err := db.AddMember(ctx, c.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		song := store.Song{ID: newID("s"), ChannelID: c.ID, Name: "Tune", CreatedBy: ann.ID, CreatedAt: t0}
		if err := db.CreateSong(ctx, song); err != nil {
			t.Fatal(err)
		}
		tr, err := db.CreateTrack(ctx, c.ID, store.Track{ID: newID("t"), SongID: song.ID, Name: "Drums", CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []store.User{ann, bob} {
			if err := db.CreateTake(ctx, store.Take{ID: newID("k"), TrackID: tr.ID, ChannelID: c.ID, UserID: u.ID, CreatedAt: t0, State: store.TakeRecording}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.DeleteAccount(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		songs, err := db.Songs(ctx, c.ID)
		if err != nil || len(songs) != 1 || songs[0].CreatedBy != "" || songs[0].CreatorName != store.DeletedAccountName {
			t.Fatalf("songs after the maker left: %+v, %v", songs, err)
		}
		takes, err := db.Takes(ctx, c.ID)
		if err != nil || len(takes) != 2 {
			t.Fatalf("takes after the recorder left: %+v, %v", takes, err)
		}
		names := map[string]bool{}
		for _, k := range takes {
			names[k.UserName] = true
		}
		if !names["Bob"] || !names[store.DeletedAccountName] {
			t.Errorf("takes credited to %v, want Bob and %q", names, store.DeletedAccountName)
		}
	})
}
