package e2e

import "testing"

func TestTwoUsersChat(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.DialTicket(bob)
	if got := a.Hello.Obj("user").Str("id"); got != alice.ID {
		t.Fatalf("hello user = %q, want %q", got, alice.ID)
	}
	a.Join(general)
	b.Join(general)
	msg := a.Send(general, "hello bob")
	got := b.ExpectMessage(general, "hello bob")
	if got.Str("id") != msg.Str("id") || got.Obj("author").Str("name") != "Alice" {
		t.Fatalf("got %v, want id %s by Alice", got, msg.Str("id"))
	}
	a.ExpectMessage(general, "hello bob") // the sender's connection gets it too
}
