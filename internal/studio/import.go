package studio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ImportTake is an audio file (Ogg or WebM, as a take upload must be) to
// become a finished take.
type ImportTake struct {
	// Open opens the file; Size is its length in bytes.
	Open func() (io.ReadCloser, error)
	Size int64
	// OffsetMS places the take on the song's timeline; DurationMS is
	// its length.
	OffsetMS, DurationMS int64
}

// ImportTrack is a track to create with its takes.
type ImportTrack struct {
	Name  string
	Takes []ImportTake
}

// ErrNothingToImport: a song from files needs at least one file.
var ErrNothingToImport = errors.New("there is no audio to put in the studio")

// ImportSong makes a song of existing audio files (a call recording's
// participants): one track per ImportTrack, each file a take m records,
// finished. The files go through the same path as an upload (chunks of
// at most MaxChunk, sniffed, counted against the channel's quota), so
// the studio's limits hold and the channel's pages hear of every step.
// The whole size is checked against the quota first (*QuotaError), so a
// full studio gets no half-made song; a failure later removes the song.
func (s *Service) ImportSong(ctx context.Context, channelID string, m Member, name string, tracks []ImportTrack) (SongView, error) {
	var total int64
	for _, t := range tracks {
		for _, k := range t.Takes {
			total += k.Size
		}
	}
	if total == 0 {
		return SongView{}, ErrNothingToImport
	}
	used, err := s.Usage(ctx, channelID)
	if err != nil {
		return SongView{}, err
	}
	if used+total > s.cfg.Quota {
		return SongView{}, &QuotaError{Used: used, Quota: s.cfg.Quota}
	}
	song, err := s.CreateSong(ctx, channelID, m, clip(name))
	if err != nil {
		return SongView{}, err
	}
	for _, t := range tracks {
		tv, err := s.importTrack(ctx, channelID, song.ID, m, t)
		if err != nil {
			// Nothing half-made stays: the song goes with what it got.
			if derr := s.DeleteSong(context.WithoutCancel(ctx), channelID, song.ID, Member{UserID: m.UserID, Owner: true}); derr != nil {
				s.log.Error("studio import: remove the half-made song", "song", song.ID, "err", derr)
			}
			return SongView{}, err
		}
		song.Tracks = append(song.Tracks, tv)
	}
	return song, nil
}

func (s *Service) importTrack(ctx context.Context, channelID, songID string, m Member, t ImportTrack) (TrackView, error) {
	name := clip(t.Name)
	if name == "" {
		name = "Participant"
	}
	tv, err := s.CreateTrack(ctx, channelID, songID, m, name)
	if err != nil {
		return TrackView{}, err
	}
	for _, it := range t.Takes {
		k, err := s.CreateTake(ctx, channelID, tv.ID, m, min(max(it.OffsetMS, 0), maxOffsetMS), 0)
		if err != nil {
			return TrackView{}, err
		}
		if err := s.importFile(ctx, channelID, k.ID, m, it); err != nil {
			return TrackView{}, err
		}
		k, err = s.Finish(ctx, channelID, k.ID, m, it.DurationMS)
		if err != nil {
			return TrackView{}, err
		}
		tv.Takes = append(tv.Takes, TakeViewOf(k))
	}
	return tv, nil
}

// importFile copies a file into a take, chunk by chunk.
func (s *Service) importFile(ctx context.Context, channelID, takeID string, m Member, it ImportTake) error {
	f, err := it.Open()
	if err != nil {
		return fmt.Errorf("studio import: %w", err)
	}
	defer f.Close()
	buf := make([]byte, s.cfg.MaxChunk)
	for seq := int64(0); ; seq++ {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if _, cerr := s.Chunk(ctx, channelID, takeID, m, seq, buf[:n], it.DurationMS, nil); cerr != nil {
				return cerr
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return fmt.Errorf("studio import: read: %w", err)
		}
	}
}

// clip shortens a name to what the studio takes.
func clip(name string) string {
	if utf8.RuneCountInString(name) <= maxNameRunes {
		return name
	}
	return string([]rune(name)[:maxNameRunes])
}
