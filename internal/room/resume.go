package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// resumeToken is the secret joined gives a participant so that it, and
// nobody else, can reclaim its id after its socket dropped (join with
// resume and resumeToken). It is an HMAC of the channel, the id and the
// user under the server's key: the room keeps no state for it, so it still
// works after the server restarted (with the same key), and it is bound to
// the user, so another member who learned it cannot use it.
func (r *call) resumeToken(id, userID string) string {
	mac := hmac.New(sha256.New, r.cfg.ResumeKey)
	mac.Write([]byte("parley resume v1\x00" + r.channelID + "\x00" + id + "\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// resumeTokenOK reports whether token proves that c's user was given the
// participant id (in constant time).
func (r *call) resumeTokenOK(c *socket, id, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(r.resumeToken(id, c.user.UserID)))
}
