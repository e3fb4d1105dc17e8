package account

// Credential names one way a user proved who they are: a login session,
// a personal access token or an API key. It holds no secret (Key is derived from the
// session token's hash or is the access token's id), so connections can
// be remembered by it and ended when it ends.
type Credential struct {
	// UserID is the user the credential belongs to.
	UserID string
	// Key identifies the credential among all users' ("session:…",
	// "token:…" or "apikey:…"); "" in a Revocation = every credential of UserID.
	Key string
}

// Revocation is credentials that just stopped working. Connections they
// authenticated must end now, not when they next authenticate:
// Config.Revoked is told of each one.
type Revocation struct {
	// Credential is the one ended; with an empty Key, every credential of
	// its user (say, after a password change).
	Credential
	// Why says what happened, in words for the people whose connections
	// end ("you logged out").
	Why string
}

func sessionCredential(userID, hash string) Credential {
	return Credential{UserID: userID, Key: "session:" + hash}
}

func tokenCredential(userID, tokenID string) Credential {
	return Credential{UserID: userID, Key: "token:" + tokenID}
}

// revoked tells Config.Revoked, if set, that rv's credentials ended. It
// is called after the store no longer accepts them, so a connection
// authenticated later cannot be missed.
func (s *Service) revoked(rv Revocation) {
	if s.cfg.Revoked != nil {
		s.cfg.Revoked(rv)
	}
}

// MembershipVersion changes whenever someone loses a channel membership
// (removed, or the channel deleted) on this server, so a cache of who is
// a member (the TURN relay's) can tell it may be stale.
func (s *Service) MembershipVersion() uint64 { return s.lost.Load() }

// membershipLost is called after a membership was deleted.
func (s *Service) membershipLost() { s.lost.Add(1) }
