package studio

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// MaxLevels bounds the levels one chunk may carry (the page sends about
// eight per 250 ms chunk).
const MaxLevels = 64

// ErrLevels is returned (wrapped) for a levels list that cannot be read.
var ErrLevels = errors.New("levels must be at most 64 comma-separated numbers from 0 to 1, like 0.12,0.5")

// ParseLevels reads the levels a recording page sends with a chunk: the
// input's loudness over the chunk, comma-separated numbers from 0 to 1,
// which other pages draw as the growing take's waveform. "" is none.
// Values are rounded to two decimals. It never panics.
func ParseLevels(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxLevels*8 {
		return nil, ErrLevels
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxLevels {
		return nil, ErrLevels
	}
	out := make([]float64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			return nil, ErrLevels
		}
		out[i] = math.Round(v*100) / 100
	}
	return out, nil
}
