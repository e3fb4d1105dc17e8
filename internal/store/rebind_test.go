package store

import "testing"

func TestRebind(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{`"we?ird" = ?`, `"we?ird" = $1`},
		{"x = 'it''s ?' AND y = ?", "x = 'it''s ?' AND y = $1"},
		{"-- why?\nx = ?", "-- why?\nx = $1"},
		{"x = 'unterminated ?", "x = 'unterminated ?"},
		{"x = ? -- trailing?", "x = $1 -- trailing?"},
		{"a - ? ", "a - $1 "},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %+v, want version 1 first", ms)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].version != ms[i-1].version+1 {
			t.Errorf("migration %s follows %s: versions must be consecutive", ms[i].name, ms[i-1].name)
		}
	}
}
