package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/parley/parley/internal/store"
)

func (a *API) routeMessages() {
	a.handle("GET", "/channels/{id}/messages", a.listMessages)
}

// Message is a chat message.
type Message struct {
	ID          string    `json:"id"`
	UserID      string    `json:"userId"`
	Username    string    `json:"username"`
	DisplayName string    `json:"displayName"`
	Text        string    `json:"text"`
	CreatedAt   time.Time `json:"createdAt"`
}

// listMessages pages through a channel's chat history, newest first: the
// next page holds older messages. The cursor names the last message of a
// page; once the history has moved past it (the channel keeps its newest
// messages only), the next page is empty.
func (a *API) listMessages(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	ms, err := a.d.Accounts.History(r.Context(), c.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	slices.Reverse(ms) // newest first, in the order they were stored
	start := 0
	if after != "" {
		start = len(ms)
		for i, m := range ms {
			if m.ID == after {
				start = i + 1
				break
			}
		}
	}
	end := min(start+limit, len(ms))
	page := ms[start:end]
	next := ""
	if end < len(ms) {
		next = encodeCursor(page[len(page)-1].ID)
	}
	out := make([]Message, len(page))
	for i, m := range page {
		out[i] = messageOut(m)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func messageOut(m store.Message) Message {
	return Message{ID: m.ID, UserID: m.UserID, Username: m.Username, DisplayName: m.DisplayName, Text: m.Text, CreatedAt: m.CreatedAt.UTC()}
}
