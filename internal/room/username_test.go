package room_test

import (
	"encoding/json"
	"testing"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// TestParticipantsCarryUsername is the wire test of issue 9 item 10: two
// accounts with the same display name can be told apart, because hello,
// joined, participant-joined, chat and history all carry the username.
func TestParticipantsCarryUsername(t *testing.T) {
	s := servertest.Start(t)
	a := s.SignUp("ann", "Ann")
	b := s.SignUp("ann_impostor", "Ann")
	ch := s.CreateChannel(a, "Twins")
	s.AddMember(a, ch, "ann_impostor")

	pa := dial(t, s, a, ch)
	if h := pa.expect(signaling.TypeHello); h.User == nil || h.User.Username != "ann" || h.User.Name != "Ann" {
		t.Fatalf("hello user = %+v, want username ann", h.User)
	}
	pa.send(signaling.Message{Type: signaling.TypeJoin})
	ja := pa.expect(signaling.TypeJoined)
	if ja.You == nil || ja.You.Username != "ann" {
		t.Fatalf("joined you = %+v, want username ann", ja.You)
	}

	pb := dial(t, s, b, ch)
	if h := pb.expect(signaling.TypeHello); len(h.Participants) != 1 || h.Participants[0].Username != "ann" {
		t.Fatalf("lobby roster = %+v, want ann's username", h.Participants)
	}
	pb.send(signaling.Message{Type: signaling.TypeJoin})
	jb := pb.expect(signaling.TypeJoined)
	if len(jb.Participants) != 1 || jb.Participants[0].Username != "ann" || jb.You.Username != "ann_impostor" {
		t.Fatalf("joined = you %+v, others %+v; want ann_impostor and ann", jb.You, jb.Participants)
	}
	if pj := pa.expect(signaling.TypeParticipantJoined); pj.Participant == nil || pj.Participant.Username != "ann_impostor" || pj.Participant.Name != "Ann" {
		t.Fatalf("participant-joined = %+v, want username ann_impostor", pj.Participant)
	}

	pb.send(signaling.Message{Type: signaling.TypeChat, Text: "it's me, Ann"})
	if m := pa.expect(signaling.TypeChat); m.Chat == nil || m.Chat.Username != "ann_impostor" {
		t.Fatalf("chat = %+v, want username ann_impostor", m.Chat)
	}
	_, body := s.Get(a, "/api/channels/"+ch+"/messages")
	var hist struct{ Messages []signaling.ChatMessage }
	if err := json.Unmarshal([]byte(body), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Messages) != 1 || hist.Messages[0].Username != "ann_impostor" {
		t.Fatalf("history = %+v, want the message with username ann_impostor", hist.Messages)
	}
}
