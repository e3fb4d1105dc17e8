package api_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/servertest"
)

type channelOut struct {
	ID, Name, OwnerID, Mode string
	CreatedAt               time.Time
}

type page[T any] struct {
	Items []T
	Next  string
}

// collect walks every page of a list with the given limit.
func collect[T any](c *caller, path string, limit int) (all []T, pages int) {
	c.t.Helper()
	cursor := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p page[T]
		c.json(200, "GET", path+"?"+q.Encode(), nil, &p)
		all = append(all, p.Items...)
		pages++
		if p.Next == "" {
			return all, pages
		}
		if len(p.Items) != limit {
			c.t.Fatalf("%s: a page of %d items (limit %d) with a next cursor", path, len(p.Items), limit)
		}
		cursor = p.Next
		if pages > 100 {
			c.t.Fatal("pagination does not end")
		}
	}
}

// eachDB runs f against a server on SQLite and one on PostgreSQL (the
// store code behind the API is new: UpdateChannel, API keys).
func eachDB(t *testing.T, f func(t *testing.T, opts ...servertest.Option)) {
	t.Run("sqlite", func(t *testing.T) { f(t) })
	t.Run("postgres", func(t *testing.T) { f(t, servertest.WithPostgres()) })
}

func TestChannelsAPI(t *testing.T) { eachDB(t, testChannelsAPI) }

func testChannelsAPI(t *testing.T, opts ...servertest.Option) {
	s := servertest.Start(t, opts...)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")

	// Create: success and validation.
	var ch channelOut
	resp := ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Design"}, &ch)
	if ch.Name != "Design" || ch.OwnerID == "" || ch.Mode != "auto" || resp.Header.Get("Location") != "/api/v1/channels/"+ch.ID {
		t.Fatalf("created %+v, Location %q", ch, resp.Header.Get("Location"))
	}
	p := ann.problem(422, "POST", "/api/v1/channels", map[string]any{"name": "  "})
	if len(p.Errors) != 1 || p.Errors[0].Field != "name" || p.Errors[0].Detail == "" || p.Type != api.TypeValidation {
		t.Fatalf("422 problem = %+v", p)
	}
	ann.problem(400, "POST", "/api/v1/channels", map[string]any{"name": "x", "colour": "red"})
	ann.problem(400, "POST", "/api/v1/channels", "{not json")
	ann.problem(400, "POST", "/api/v1/channels", "")
	ann.problem(415, "POST", "/api/v1/channels", "name=x", "Content-Type", "application/x-www-form-urlencoded")

	// Get: members only.
	etag := ann.json(200, "GET", "/api/v1/channels/"+ch.ID, nil, &ch).Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	bob.problem(403, "GET", "/api/v1/channels/"+ch.ID, nil)
	ann.problem(404, "GET", "/api/v1/channels/nope", nil)
	anon := &caller{t: t, s: s, doc: doc, cookieJar: s.Client()}
	anon.problem(401, "GET", "/api/v1/channels/"+ch.ID, nil)

	// Update: owner only, If-Match required and checked.
	ann.problem(428, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "Design team"})
	ann.problem(412, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "Design team"}, "If-Match", `"stale"`)
	p = ann.problem(422, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "", "mode": "mesh"}, "If-Match", etag)
	if len(p.Errors) != 2 || p.Errors[0].Field != "mode" || p.Errors[1].Field != "name" {
		t.Fatalf("422 = %+v", p)
	}
	resp = ann.json(200, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "Design team", "mode": "sfu"}, &ch, "If-Match", etag)
	if ch.Name != "Design team" || ch.Mode != "sfu" || resp.Header.Get("ETag") == etag || resp.Header.Get("ETag") == "" {
		t.Fatalf("updated %+v, ETag %q (was %q)", ch, resp.Header.Get("ETag"), etag)
	}
	// The old ETag no longer matches: a second writer who read before loses.
	ann.problem(412, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "Lost update"}, "If-Match", etag)
	etag = resp.Header.Get("ETag")
	s.AddMember(ann.cookieJar, ch.ID, "bob")
	bob.problem(403, "PATCH", "/api/v1/channels/"+ch.ID, map[string]any{"name": "Mine"}, "If-Match", etag)
	ann.problem(404, "PATCH", "/api/v1/channels/nope", map[string]any{"name": "x"}, "If-Match", etag)

	// List: pagination over more channels than a page, every one once,
	// newest first.
	want := []string{ch.ID}
	for i := range 6 {
		var c channelOut
		ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": fmt.Sprintf("C%d", i)}, &c)
		want = append([]string{c.ID}, want...)
	}
	got, pages := collect[channelOut](ann, "/api/v1/channels", 3)
	if pages != 3 || len(got) != len(want) {
		t.Fatalf("%d channels in %d pages, want %d in 3", len(got), pages, len(want))
	}
	seen := map[string]bool{}
	for i, c := range got {
		seen[c.ID] = true
		if i > 0 && c.CreatedAt.After(got[i-1].CreatedAt) {
			t.Fatalf("channel %d is newer than channel %d: not newest first", i, i-1)
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("channel %s missing from the pages", id)
		}
	}
	bobs, _ := collect[channelOut](bob, "/api/v1/channels", 50)
	if len(bobs) != 1 {
		t.Fatalf("bob sees %d channels", len(bobs))
	}
	ann.problem(422, "GET", "/api/v1/channels?limit=0", nil)
	ann.problem(422, "GET", "/api/v1/channels?limit=101", nil)
	ann.problem(400, "GET", "/api/v1/channels?cursor=garbage!", nil)

	// Delete: owner only.
	bob.problem(403, "DELETE", "/api/v1/channels/"+ch.ID, nil)
	ann.problem(412, "DELETE", "/api/v1/channels/"+ch.ID, nil, "If-Match", `"stale"`)
	ann.do(204, "DELETE", "/api/v1/channels/"+ch.ID, nil)
	ann.problem(404, "DELETE", "/api/v1/channels/"+ch.ID, nil)
	ann.problem(404, "GET", "/api/v1/channels/"+ch.ID, nil)
}

type memberOut struct{ ID, Username, DisplayName, Role string }

type inviteOut struct {
	ID, Code, Path, State string
	MaxUses, Uses         int
}

func TestMembersAndInvitesAPI(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	newUser(t, s, doc, "cat")
	newUser(t, s, doc, "dan")
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Design"}, &ch)
	base := "/api/v1/channels/" + ch.ID

	// Add: owner only, by username.
	var m memberOut
	ann.json(201, "POST", base+"/members", map[string]any{"username": "bob"}, &m)
	if m.Username != "bob" || m.Role != "member" {
		t.Fatalf("added %+v", m)
	}
	p := ann.problem(422, "POST", base+"/members", map[string]any{"username": "nobody"})
	if p.Errors[0].Field != "username" {
		t.Fatalf("422 %+v", p)
	}
	ann.problem(422, "POST", base+"/members", map[string]any{"username": "bob"}) // already in
	bob.problem(403, "POST", base+"/members", map[string]any{"username": "cat"})
	ann.problem(404, "POST", "/api/v1/channels/nope/members", map[string]any{"username": "cat"})
	ann.problem(400, "POST", base+"/members", map[string]any{"user": "cat"})
	ann.json(201, "POST", base+"/members", map[string]any{"username": "cat"}, nil)
	ann.json(201, "POST", base+"/members", map[string]any{"username": "dan"}, nil)

	// List: members may, by display name, paginated.
	got, pages := collect[memberOut](bob, base+"/members", 3)
	if pages != 2 || len(got) != 4 || got[0].Username != "ann" || got[0].Role != "owner" || got[3].Username != "dan" {
		t.Fatalf("members %+v in %d pages", got, pages)
	}
	outsider := newUser(t, s, doc, "eve")
	outsider.problem(403, "GET", base+"/members", nil)
	ann.problem(404, "GET", "/api/v1/channels/nope/members", nil)

	// Remove: owner only; not the owner; unknown is 404.
	bob.problem(403, "DELETE", base+"/members/"+got[2].ID, nil)
	ann.problem(422, "DELETE", base+"/members/"+got[0].ID, nil)
	ann.do(204, "DELETE", base+"/members/"+got[2].ID, nil)
	ann.problem(404, "DELETE", base+"/members/"+got[2].ID, nil)
	bob.json(200, "GET", base+"/members", nil, nil)

	// Invites: owner only (the links are secrets).
	var inv inviteOut
	ann.json(201, "POST", base+"/invites", map[string]any{"expires": "1d", "maxUses": 3}, &inv)
	if inv.MaxUses != 3 || inv.State != "active" || inv.Path != "/invite/"+inv.Code {
		t.Fatalf("invite %+v", inv)
	}
	p = ann.problem(422, "POST", base+"/invites", map[string]any{"expires": "1y"})
	if p.Errors[0].Field != "expires" {
		t.Fatalf("422 %+v", p)
	}
	p = ann.problem(422, "POST", base+"/invites", map[string]any{"maxUses": -1})
	if p.Errors[0].Field != "maxUses" {
		t.Fatalf("422 %+v", p)
	}
	bob.problem(403, "POST", base+"/invites", map[string]any{})
	bob.problem(403, "GET", base+"/invites", nil)
	for range 3 {
		ann.json(201, "POST", base+"/invites", map[string]any{}, nil)
	}
	invs, pages := collect[inviteOut](ann, base+"/invites", 2)
	if len(invs) != 5 || pages != 3 { // with the channel's first link
		t.Fatalf("%d invites in %d pages", len(invs), pages)
	}
	bob.problem(403, "DELETE", base+"/invites/"+inv.ID, nil)
	ann.do(204, "DELETE", base+"/invites/"+inv.ID, nil)
	ann.problem(404, "DELETE", base+"/invites/"+inv.ID, nil)
	if invs, _ := collect[inviteOut](ann, base+"/invites", 50); len(invs) != 4 {
		t.Fatalf("%d invites after revoking one", len(invs))
	}
}
