package account

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalizeUsername is how usernames are compared: case and surrounding
// spaces do not matter.
func normalizeUsername(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// checkUsername validates a normalized username and returns a message for
// the user, or "" if it is fine.
func checkUsername(name string) string {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return fmt.Sprintf("Username is required. Choose %d to %d letters, digits, dots, dashes or underscores.", MinUsernameLen, MaxUsernameLen)
	case n < MinUsernameLen:
		return fmt.Sprintf("Username is too short. Use at least %d characters.", MinUsernameLen)
	case n > MaxUsernameLen:
		return fmt.Sprintf("Username is too long. Use at most %d characters.", MaxUsernameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return "Username can only contain letters a-z, digits, dots, dashes and underscores. Remove spaces and other characters."
		}
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
		return "Username must start with a letter or a digit. Remove the leading symbol."
	}
	return ""
}

// hasControl reports whether s holds invalid UTF-8 or control characters
// other than those listed in allowed.
func hasControl(s, allowed string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unicode.IsControl(r) && !strings.ContainsRune(allowed, r) {
			return true
		}
	}
	return false
}

// isDeceptive reports whether r changes how the text around it is laid
// out or is invisible, so that a name holding it can look like another
// one: bidirectional controls (U+202A–U+202E embeddings and overrides,
// U+2066–U+2069 isolates, U+200E/U+200F marks, U+061C), zero-width
// characters (U+200B–U+200D, U+2060 word joiner, U+FEFF), and with them
// every other format character (Unicode category Cf: soft hyphen, invisible
// operators, tags, U+180E …), line and paragraph separators, and the
// letters that render as blank space (Hangul fillers, the combining
// grapheme joiner).
func isDeceptive(r rune) bool {
	switch r {
	case '\u034F', '\u115F', '\u1160', '\u3164', '\uFFA0':
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// checkDisplayName validates a trimmed display name.
func checkDisplayName(name string) string {
	switch {
	case name == "":
		return "Display name is required. Enter the name other people should see, such as your first name."
	case hasControl(name, ""):
		return "Display name contains invisible or invalid characters. Remove them and try again."
	case strings.ContainsFunc(name, isDeceptive):
		return "Display name contains invisible or text-direction characters (such as zero-width spaces or right-to-left marks), which can make it look like someone else's name. Remove them and try again."
	case utf8.RuneCountInString(name) > MaxDisplayNameLen:
		return fmt.Sprintf("Display name is too long. Use at most %d characters.", MaxDisplayNameLen)
	}
	return ""
}

// checkEmail validates a trimmed email address.
func checkEmail(email string) string {
	if email == "" {
		return "Email is required. Enter an address like name@example.com."
	}
	if len(email) > MaxEmailLen {
		return fmt.Sprintf("Email is too long. Use an address of at most %d characters.", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	// A bare address only: "Name <a@b.c>" parses too, but is not what the
	// field asks for.
	if err != nil || addr.Name != "" || addr.Address != email {
		return "Email doesn't look like an address. Use the form name@example.com."
	}
	domain := addr.Address[strings.LastIndexByte(addr.Address, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "Email needs a full domain after the @, such as example.com. Check for a missing part."
	}
	return ""
}

// checkPassword validates a password (not trimmed: spaces count) for the
// given normalized username.
func checkPassword(password, username string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Sprintf("Password is too short. Use at least %d characters; a few unrelated words work well.", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("Password is too long. Use at most %d characters.", MaxPasswordLen)
	case username != "" && strings.EqualFold(password, username):
		return "Password can't be the same as your username. Choose something different."
	case distinctRunes(password) < 5:
		return "Password repeats too few characters. Use at least 5 different characters."
	case isCommonPassword(password):
		return "Password is too common and easy to guess. Choose something less predictable, such as a few unrelated words."
	}
	return ""
}

func distinctRunes(s string) int {
	seen := map[rune]struct{}{}
	for _, r := range s {
		seen[r] = struct{}{}
	}
	return len(seen)
}

// isCommonPassword reports whether p is one of the passwords that top
// breach lists and are long enough to pass the length rule. The list is
// short on purpose: it catches the guesses an attacker tries first.
func isCommonPassword(p string) bool {
	switch strings.ToLower(p) {
	case "1234567890", "0123456789", "9876543210", "12345678910", "123456789a",
		"1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop", "qwerty1234", "qwerty12345",
		"asdfghjkl1", "zxcvbnm123", "password12", "password123", "password1234",
		"password!1", "passw0rd12", "passw0rd123", "p@ssw0rd123", "iloveyou12",
		"iloveyou123", "letmein123", "welcome123", "welcome1234", "admin12345",
		"administrator", "changeme123", "abc1234567", "abcdefghij", "abcd123456",
		"football123", "baseball123", "sunshine123", "princess123", "superman123",
		"dragon1234", "monkey1234", "master1234", "trustno1234", "starwars123",
		"qazwsxedc123", "qwertyuiop123", "1qazxsw23edc", "a1b2c3d4e5", "parley1234",
		"parleypassword", "correcthorsebatterystaple":
		return true
	}
	return false
}

// checkChannelName validates a trimmed channel name.
func checkChannelName(name string) string {
	switch {
	case name == "":
		return `Channel name is required. Enter a name such as "Design team".`
	case hasControl(name, ""):
		return "Channel name contains invisible or invalid characters. Remove them and try again."
	case utf8.RuneCountInString(name) > MaxChannelNameLen:
		return fmt.Sprintf("Channel name is too long. Use at most %d characters.", MaxChannelNameLen)
	}
	return ""
}

// checkMessage validates trimmed message text. Line breaks and tabs are
// fine; other control characters are not (PostgreSQL also refuses NUL).
func checkMessage(text string) string {
	switch n := utf8.RuneCountInString(text); {
	case text == "":
		return "Message is empty. Type something before sending."
	case n > MaxMessageLen:
		return fmt.Sprintf("Message is too long (%d characters). Shorten it to %d characters or split it into several messages.", n, MaxMessageLen)
	case hasControl(text, "\n\r\t"):
		return "Message contains invisible or invalid characters. Remove them and send again."
	}
	return ""
}
