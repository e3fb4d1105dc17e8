package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/testtool"
)

type webhookOut struct {
	ID, URL, Secret string
	Events          []string
}

type deliveryOut struct {
	ID, WebhookID, EventID, EventType, State string
	Attempts, LastStatus                     int
}

// TestWebhooksAPI: create (the secret once), list, get, update, the
// deliveries of a member added through the API, a re-send, delete;
// someone else's webhook is 404; bad input is 422 with the field named.
func TestWebhooksAPI(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebhookAllowPrivate = true
		c.WebhookRetryMin, c.WebhookRetryMax = 10*time.Millisecond, 50*time.Millisecond
	}))
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	eve := newUser(t, s, doc, "eve")
	newUser(t, s, doc, "bob")
	var hits atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hs.Close()

	var wh webhookOut
	resp := ann.json(201, "POST", "/api/v1/webhooks", map[string]any{"url": hs.URL + "/hook", "events": []string{"member.added", "call.started"}}, &wh)
	if !strings.HasPrefix(wh.Secret, "whsec_") || resp.Header.Get("Location") != "/api/v1/webhooks/"+wh.ID {
		t.Fatalf("created %+v, Location %q", wh, resp.Header.Get("Location"))
	}
	var l page[webhookOut]
	ann.json(200, "GET", "/api/v1/webhooks", nil, &l)
	if len(l.Items) != 1 || l.Items[0].Secret != "" || l.Items[0].URL != hs.URL+"/hook" {
		t.Fatalf("list %+v", l)
	}
	var got webhookOut
	ann.json(200, "GET", "/api/v1/webhooks/"+wh.ID, nil, &got)
	if got.Secret != "" || strings.Join(got.Events, ",") != "call.started,member.added" {
		t.Fatalf("get %+v", got)
	}
	ann.json(200, "PATCH", "/api/v1/webhooks/"+wh.ID, map[string]any{"events": []string{"member.added", "member.removed"}}, &got)
	if got.URL != hs.URL+"/hook" || strings.Join(got.Events, ",") != "member.added,member.removed" {
		t.Fatalf("patched %+v", got)
	}
	for _, bad := range []struct {
		body  any
		field string
	}{
		{map[string]any{"url": "ftp://example.org/", "events": []string{"call.started"}}, "url"},
		{map[string]any{"url": "https://example.org/", "events": []string{"call.exploded"}}, "events"},
		{map[string]any{"url": "https://example.org/", "events": []string{}}, "events"},
		{map[string]any{"events": []string{"call.started"}}, "url"},
		{map[string]any{"url": "https://example.org/"}, "events"},
	} {
		p := ann.problem(422, "POST", "/api/v1/webhooks", bad.body)
		if len(p.Errors) != 1 || p.Errors[0].Field != bad.field {
			t.Errorf("%v: %+v, want an error on %s", bad.body, p, bad.field)
		}
	}
	ann.problem(400, "POST", "/api/v1/webhooks", `{"url": "https://example.org/", "events": ["call.started"], "extra": 1}`)
	eve.problem(404, "GET", "/api/v1/webhooks/"+wh.ID, nil)
	eve.problem(404, "PATCH", "/api/v1/webhooks/"+wh.ID, map[string]any{"url": "https://example.org/"})
	eve.problem(404, "DELETE", "/api/v1/webhooks/"+wh.ID, nil)
	eve.problem(404, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", nil)
	anon := &caller{t: t, s: s, doc: doc, http: s.Client(), cookieJar: s.Client()}
	anon.problem(401, "GET", "/api/v1/webhooks", nil)

	// An event through the API: bob added to ann's channel.
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Hooks"}, &ch)
	ann.do(201, "POST", "/api/v1/channels/"+ch.ID+"/members", map[string]any{"username": "bob"})
	// Polled through the service: the API's rate limit is for people.
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := s.Webhooks().Deliveries(context.Background(), ann.user().ID, wh.ID, 10)
		return len(ds) == 1 && ds[0].State == "delivered"
	}, "member.added delivered")
	var ds page[deliveryOut]
	ann.json(200, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", nil, &ds)
	d := ds.Items[0]
	if d.EventType != "member.added" || d.LastStatus != 200 || d.Attempts != 1 || !strings.HasPrefix(d.EventID, "evt_") {
		t.Errorf("delivery %+v", d)
	}
	ann.do(202, "POST", "/api/v1/webhooks/"+wh.ID+"/deliveries/"+d.ID+"/resend", nil)
	testtool.Eventually(t, 10*time.Second, func() bool { return hits.Load() == 2 }, "re-sent")
	eve.problem(404, "POST", "/api/v1/webhooks/"+wh.ID+"/deliveries/"+d.ID+"/resend", nil)
	ann.problem(404, "POST", "/api/v1/webhooks/"+wh.ID+"/deliveries/dlv_nope/resend", nil)
	ann.problem(400, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries?cursor=djE6eA", nil)

	ann.do(204, "DELETE", "/api/v1/webhooks/"+wh.ID, nil)
	ann.problem(404, "GET", "/api/v1/webhooks/"+wh.ID, nil)
	for range 10 {
		ann.do(201, "POST", "/api/v1/webhooks", map[string]any{"url": "https://example.org/", "events": []string{"call.ended"}})
	}
	ann.problem(409, "POST", "/api/v1/webhooks", map[string]any{"url": "https://example.org/", "events": []string{"call.ended"}})
}
