package studio

import (
	"context"
	"time"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// View is a channel's whole studio as the page draws it.
type View struct {
	Songs []SongView `json:"songs"`
	// UsedBytes and QuotaBytes are the channel's storage and its limit.
	UsedBytes  int64 `json:"usedBytes"`
	QuotaBytes int64 `json:"quotaBytes"`
	// MaxChunkBytes is the largest chunk an upload may send.
	MaxChunkBytes int64 `json:"maxChunkBytes"`
}

// SongView is a song with its tracks.
type SongView struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	CreatedBy   string      `json:"createdBy"`
	CreatorName string      `json:"creatorName"`
	CreatedAt   time.Time   `json:"createdAt"`
	Tracks      []TrackView `json:"tracks"`
}

// TrackView is a track with its takes, oldest first.
type TrackView struct {
	ID         string     `json:"id"`
	SongID     string     `json:"songId"`
	Name       string     `json:"name"`
	Position   int        `json:"position"`
	ChosenTake string     `json:"chosenTake"`
	Takes      []TakeView `json:"takes"`
}

// TakeView is one take's metadata; its audio is at
// /api/channels/{channel}/studio/takes/{id}/audio.
type TakeView struct {
	ID         string    `json:"id"`
	TrackID    string    `json:"trackId"`
	SongID     string    `json:"songId"`
	UserID     string    `json:"userId"`
	UserName   string    `json:"userName"`
	CreatedAt  time.Time `json:"createdAt"`
	OffsetMS   int64     `json:"offsetMs"`
	LatencyMS  int64     `json:"latencyMs"`
	DurationMS int64     `json:"durationMs"`
	MIME       string    `json:"mime"`
	State      string    `json:"state"`
	Chunks     int64     `json:"chunks"`
	Bytes      int64     `json:"bytes"`
}

// TakeViewOf is k's wire form.
func TakeViewOf(k store.Take) TakeView {
	return TakeView{ID: k.ID, TrackID: k.TrackID, SongID: k.SongID, UserID: k.UserID, UserName: k.UserName, CreatedAt: k.CreatedAt,
		OffsetMS: k.OffsetMS, LatencyMS: k.LatencyMS, DurationMS: k.DurationMS, MIME: k.MIME, State: k.State, Chunks: k.Chunks, Bytes: k.Bytes}
}

// TrackViewOf is t's wire form, without takes.
func TrackViewOf(t store.Track) TrackView {
	return TrackView{ID: t.ID, SongID: t.SongID, Name: t.Name, Position: t.Position, ChosenTake: t.ChosenTake, Takes: []TakeView{}}
}

// View returns the channel's studio.
func (s *Service) View(ctx context.Context, channelID string) (View, error) {
	songs, err := s.db.Songs(ctx, channelID)
	if err != nil {
		return View{}, err
	}
	tracks, err := s.db.Tracks(ctx, channelID)
	if err != nil {
		return View{}, err
	}
	takes, err := s.db.Takes(ctx, channelID)
	if err != nil {
		return View{}, err
	}
	used, err := s.Usage(ctx, channelID)
	if err != nil {
		return View{}, err
	}
	byTrack := map[string][]TakeView{}
	for _, k := range takes {
		byTrack[k.TrackID] = append(byTrack[k.TrackID], TakeViewOf(k))
	}
	bySong := map[string][]TrackView{}
	for _, t := range tracks {
		tv := TrackViewOf(t)
		if ks := byTrack[t.ID]; ks != nil {
			tv.Takes = ks
		}
		bySong[t.SongID] = append(bySong[t.SongID], tv)
	}
	v := View{Songs: []SongView{}, UsedBytes: used, QuotaBytes: s.cfg.Quota, MaxChunkBytes: s.cfg.MaxChunk}
	for _, sg := range songs {
		sv := SongView{ID: sg.ID, Name: sg.Name, CreatedBy: sg.CreatedBy, CreatorName: sg.CreatorName, CreatedAt: sg.CreatedAt, Tracks: []TrackView{}}
		if ts := bySong[sg.ID]; ts != nil {
			sv.Tracks = ts
		}
		v.Songs = append(v.Songs, sv)
	}
	return v, nil
}

// CreateSong adds a song to the channel.
func (s *Service) CreateSong(ctx context.Context, channelID string, m Member, name string) (SongView, error) {
	name, err := cleanName("song", name)
	if err != nil {
		return SongView{}, err
	}
	sg := store.Song{ID: newID("s_"), ChannelID: channelID, Name: name, CreatedBy: m.UserID, CreatedAt: time.Now().Truncate(time.Millisecond)}
	if err := s.db.CreateSong(ctx, sg); err != nil {
		return SongView{}, notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioSongAdded, Song: sg.ID, By: m.UserID})
	return SongView{ID: sg.ID, Name: sg.Name, CreatedBy: sg.CreatedBy, CreatedAt: sg.CreatedAt, Tracks: []TrackView{}}, nil
}

// RenameSong renames a song of the channel.
func (s *Service) RenameSong(ctx context.Context, channelID, songID string, m Member, name string) error {
	name, err := cleanName("song", name)
	if err != nil {
		return err
	}
	if err := s.db.RenameSong(ctx, channelID, songID, name); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioSongChanged, Song: songID, By: m.UserID})
	return nil
}

// mayDelete: deleting a song or track deletes its takes, so it takes the
// right to delete each of them (the owner's, or every take one's own).
func mayDelete(takes []store.Take, m Member) bool {
	if m.Owner {
		return true
	}
	for _, k := range takes {
		if k.UserID != m.UserID {
			return false
		}
	}
	return true
}

// DeleteSong deletes a song with its tracks and takes (files too).
func (s *Service) DeleteSong(ctx context.Context, channelID, songID string, m Member) error {
	takes, err := s.db.TakesOfSong(ctx, channelID, songID)
	if err != nil {
		return err
	}
	if !mayDelete(takes, m) {
		return ErrNotAllowed
	}
	if err := s.removeTakes(ctx, channelID, takes, func() error { return s.db.DeleteSong(ctx, channelID, songID) }); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioSongDeleted, Song: songID, By: m.UserID})
	return nil
}

// CreateTrack adds a track at the end of a song.
func (s *Service) CreateTrack(ctx context.Context, channelID, songID string, m Member, name string) (TrackView, error) {
	name, err := cleanName("track", name)
	if err != nil {
		return TrackView{}, err
	}
	t, err := s.db.CreateTrack(ctx, channelID, store.Track{ID: newID("t_"), SongID: songID, Name: name, CreatedAt: time.Now().Truncate(time.Millisecond)})
	if err != nil {
		return TrackView{}, notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTrackAdded, Song: songID, Track: t.ID, By: m.UserID})
	return TrackViewOf(t), nil
}

// UpdateTrack renames (name != nil) and/or moves (position != nil) a track.
func (s *Service) UpdateTrack(ctx context.Context, channelID, trackID string, m Member, name *string, position *int) error {
	if name != nil {
		n, err := cleanName("track", *name)
		if err != nil {
			return err
		}
		name = &n
	}
	if position != nil && (*position < 0 || *position > 10_000) {
		return &InvalidError{Message: "position must be 0–10000"}
	}
	t, err := s.db.TrackOf(ctx, channelID, trackID)
	if err != nil {
		return notFound(err)
	}
	if err := s.db.UpdateTrack(ctx, channelID, trackID, name, position); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTrackChanged, Song: t.SongID, Track: trackID, By: m.UserID})
	return nil
}

// DeleteTrack deletes a track with its takes (files too).
func (s *Service) DeleteTrack(ctx context.Context, channelID, trackID string, m Member) error {
	t, err := s.db.TrackOf(ctx, channelID, trackID)
	if err != nil {
		return notFound(err)
	}
	takes, err := s.db.TakesOfTrack(ctx, channelID, trackID)
	if err != nil {
		return err
	}
	if !mayDelete(takes, m) {
		return ErrNotAllowed
	}
	if err := s.removeTakes(ctx, channelID, takes, func() error { return s.db.DeleteTrack(ctx, channelID, trackID) }); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTrackDeleted, Song: t.SongID, Track: trackID, By: m.UserID})
	return nil
}
