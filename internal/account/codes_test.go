package account

import (
	"strings"
	"testing"
)

func TestParseMeetingCode(t *testing.T) {
	for in, want := range map[string]string{
		"abc-defg-hjk":            "abc-defg-hjk",
		"ABCDEFGHJK":              "abc-defg-hjk",
		" abc defg hjk ":          "abc-defg-hjk",
		"abc--defg-hjk":           "abc-defg-hjk",
		"abc-defg-hj":             "",
		"abc-defg-hjkm":           "",
		"abc-defg-hji":            "", // i is not in the alphabet
		"abc-défg-hjk":            "",
		"":                        "",
		"123456":                  "",
		strings.Repeat("a", 1000): "",
	} {
		got, ok := ParseMeetingCode(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseMeetingCode(%q) = %q, %t; want %q", in, got, ok, want)
		}
	}
	for range 100 {
		c := newMeetingCode()
		if got, ok := ParseMeetingCode(c); !ok || got != c || len(c) != 12 {
			t.Fatalf("new code %q parses as %q, %t", c, got, ok)
		}
	}
}

func FuzzParseMeetingCode(f *testing.F) {
	f.Add("abc-defg-hjk")
	f.Add("ABC DEFG HJK")
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseMeetingCode(s)
		if !ok {
			return
		}
		// A code parses to itself: canonical forms are stable.
		if again, ok2 := ParseMeetingCode(got); !ok2 || again != got || len(got) != 12 {
			t.Fatalf("%q → %q → %q, %t", s, got, again, ok2)
		}
	})
}
