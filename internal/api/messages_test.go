package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/servertest"
)

type messageOut struct{ ID, UserID, Username, DisplayName, Text string }

func TestMessagesAPI(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	eve := newUser(t, s, doc, "eve")
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Design"}, &ch)
	path := "/api/v1/channels/" + ch.ID + "/messages"

	var p page[messageOut]
	ann.json(200, "GET", path, nil, &p)
	if len(p.Items) != 0 || p.Next != "" {
		t.Fatalf("empty history = %+v", p)
	}
	for i := range 7 {
		if _, err := s.Accounts().PostMessage(context.Background(), ann.user(), ch.ID, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, pages := collect[messageOut](ann, path, 3)
	if pages != 3 || len(got) != 7 {
		t.Fatalf("%d messages in %d pages", len(got), pages)
	}
	for i, m := range got {
		if want := fmt.Sprintf("m%d", 6-i); m.Text != want || m.Username != "ann" || m.DisplayName != "Ann" {
			t.Fatalf("message %d = %+v, want %s (newest first)", i, m, want)
		}
	}
	// A new message between pages does not shift the next page.
	ann.json(200, "GET", path+"?limit=3", nil, &p)
	s.Accounts().PostMessage(context.Background(), ann.user(), ch.ID, "late")
	var p2 page[messageOut]
	ann.json(200, "GET", path+"?limit=3&cursor="+p.Next, nil, &p2)
	if p2.Items[0].Text != "m3" {
		t.Fatalf("page 2 starts with %q, want m3", p2.Items[0].Text)
	}

	eve.problem(403, "GET", path, nil)
	ann.problem(404, "GET", "/api/v1/channels/nope/messages", nil)
	ann.problem(422, "GET", path+"?limit=abc", nil)
	ann.problem(400, "GET", path+"?cursor=%%%", nil)
	anon := &caller{t: t, s: s, doc: doc, cookieJar: s.Client()}
	anon.problem(401, "GET", path, nil)

	// The web app's route stays as it was.
	resp, body := s.Get(ann.cookieJar, "/api/channels/"+ch.ID+"/messages")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || len(body) < 10 {
		t.Fatalf("/api/channels/{id}/messages: %d %s", resp.StatusCode, body)
	}
}
