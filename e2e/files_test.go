package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"
)

// postImage creates a message with an image through REST, as u, and
// returns the status and the record.
func postImage(t *testing.T, srv *Server, u *User, room, name, contentType string, data []byte) (int, Record) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("room", room)
	_ = w.WriteField("author", u.ID)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="image"; filename="`+name+`"`)
	h.Set("Content-Type", contentType)
	part, _ := w.CreatePart(h)
	_, _ = part.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/collections/messages/records", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", u.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec Record
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &rec)
	return resp.StatusCode, rec
}

// fileStatus fetches a message's image, with a file token when given.
func fileStatus(t *testing.T, srv *Server, rec Record, token string) int {
	t.Helper()
	url := srv.URL + "/api/files/messages/" + rec.ID() + "/" + rec["image"].(string)
	if token != "" {
		url += "?token=" + token
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func fileToken(t *testing.T, srv *Server, u *User) string {
	t.Helper()
	var out struct{ Token string }
	srv.MustDo("POST", "/api/files/token", u.Token, nil, &out)
	return out.Token
}

// Images are checked by content, and images in private rooms are served
// only with a file token of someone who may read the room; images of
// public rooms to anyone.
func TestImagesProtectedAndCheckedByContent(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob, mallory := srv.NewUser("Alice"), srv.NewUser("Bob"), srv.NewUser("Mallory")
	secret := srv.CreateRoom("secret", "private", alice.ID, bob.ID).ID()

	code, private := postImage(t, srv, alice, secret, "plan.png", "image/png", tinyPNG)
	if code != http.StatusOK {
		t.Fatalf("image in a private room: %d", code)
	}
	if got := fileStatus(t, srv, private, ""); got != http.StatusNotFound {
		t.Errorf("private image without a token: %d, want 404", got)
	}
	if got := fileStatus(t, srv, private, fileToken(t, srv, mallory)); got != http.StatusNotFound {
		t.Errorf("private image with an outsider's token: %d, want 404", got)
	}
	if got := fileStatus(t, srv, private, fileToken(t, srv, bob)); got != http.StatusOK {
		t.Errorf("private image with a member's token: %d, want 200", got)
	}
	if got := fileStatus(t, srv, private, "not-a-token"); got != http.StatusNotFound {
		t.Errorf("private image with a forged token: %d, want 404", got)
	}

	code, public := postImage(t, srv, alice, general, "cat.png", "image/png", tinyPNG)
	if code != http.StatusOK {
		t.Fatalf("image in a public room: %d", code)
	}
	if got := fileStatus(t, srv, public, ""); got != http.StatusOK {
		t.Errorf("public image for anyone: %d, want 200", got)
	}

	// The type is the content's: a script named .png and sent as
	// image/png is refused, as is an SVG.
	for name, data := range map[string][]byte{
		"evil.png":  []byte("<script>alert(1)</script>"),
		"image.svg": []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`),
	} {
		if code, _ := postImage(t, srv, alice, general, name, "image/png", data); code != http.StatusBadRequest {
			t.Errorf("%s as image/png: %d, want 400", name, code)
		}
	}
}
