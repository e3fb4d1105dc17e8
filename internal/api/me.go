package api

import (
	"net/http"
	"time"

	"github.com/parley/parley/internal/store"
)

func (a *API) routeMe() {
	a.handle("GET", "/me", a.me)
}

// User is another user as the API shows them.
type User struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
}

func userOut(u store.User) User {
	return User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}

type meOut struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	DisplayName   string    `json:"displayName"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"emailVerified"`
	CreatedAt     time.Time `json:"createdAt"`
	Via           string    `json:"via"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request, c Caller) error {
	u := c.User
	writeJSON(w, http.StatusOK, meOut{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email,
		EmailVerified: !u.EmailVerifiedAt.IsZero(), CreatedAt: u.CreatedAt.UTC(), Via: c.Via})
	return nil
}
