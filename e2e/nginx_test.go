package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// nginx runs Debian's nginx with a site of deploy/, its addresses and
// certificate swapped for the test's.
type nginx struct {
	url string // https://127.0.0.1:port
	tls *tls.Config
	cmd *exec.Cmd
	dir string
}

// startNginx serves deploy/<site> with each upstream server address of
// the file (upstreams' keys) replaced by the test's. It fails the test if
// the site no longer has the lines it rewrites: the file under test must
// be the one the docs give.
func startNginx(t *testing.T, site string, upstreams map[string]string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("nginx is not installed: `make test` installs it (apt-get install nginx)")
		}
	}
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))

	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", site))
	if err != nil {
		t.Fatal(err)
	}
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	conf := string(raw)
	for from, to := range upstreams {
		if !strings.Contains(conf, "server "+from) {
			t.Fatalf("deploy/%s has no upstream server %s", site, from)
		}
		conf = strings.ReplaceAll(conf, "server "+from, "server "+to)
	}
	for _, r := range [][2]string{
		{"listen 80;\n    listen [::]:80;", "listen " + httpAddr + ";"},
		{"listen 443 ssl http2;\n    listen [::]:443 ssl http2;", "listen " + httpsAddr + " ssl http2;"},
		{"/etc/letsencrypt/live/chat.example.com/fullchain.pem", filepath.Join(dir, "cert.pem")},
		{"/etc/letsencrypt/live/chat.example.com/privkey.pem", filepath.Join(dir, "key.pem")},
	} {
		if strings.Count(conf, r[0]) != 1 {
			t.Fatalf("deploy/%s should have %q once", site, r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	must(t, os.WriteFile(filepath.Join(dir, "site.conf"), []byte(conf), 0o600))
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers would be nobody, who cannot enter the temp dir
	}
	main := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 512; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/site.conf;
}
`, user, dir)
	must(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600))

	n := &nginx{url: "https://" + httpsAddr, tls: &tls.Config{RootCAs: pool}, dir: dir}
	n.cmd = exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	out := &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = out, out
	must(t, n.cmd.Start())
	exited := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(os.Interrupt) // fast shutdown
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-exited
		}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: n.tls}, Timeout: time.Second}
	deadline := time.Now().Add(waitTime)
	for {
		resp, err := client.Get(n.url + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer /api/health: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Plain HTTP is redirected to HTTPS.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Errorf("plain HTTP: %d to %q, want a 301 to https", resp.StatusCode, resp.Header.Get("Location"))
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pocketchat test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}

// sioClient is a socket.io client spoken by hand: engine.io v4 long
// polling, then the upgrade to a WebSocket, as socket.io-client does.
type sioClient struct {
	t      *testing.T
	base   string
	http   *http.Client
	tls    *tls.Config
	sid    string
	ws     *websocket.Conn
	frames chan string
}

func (c *sioClient) poll(method, body string) string {
	c.t.Helper()
	q := "/socket.io/?EIO=4&transport=polling"
	if c.sid != "" {
		q += "&sid=" + c.sid
	}
	req, _ := http.NewRequest(method, c.base+q, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s polling: %d %s", method, resp.StatusCode, b)
	}
	return string(b)
}

// connectSocketIO opens a session at base (http or https) by polling, connects to the namespace
// with the token, reads hello over polling, then upgrades.
func connectSocketIO(t *testing.T, base string, tlsCfg *tls.Config, token string) *sioClient {
	t.Helper()
	c := &sioClient{t: t, base: base, tls: tlsCfg, frames: make(chan string, 100),
		http: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: waitTime}}
	open := c.poll("GET", "")
	var hs struct {
		SID      string   `json:"sid"`
		Upgrades []string `json:"upgrades"`
	}
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.SID == "" {
		t.Fatalf("engine.io open: %q", open)
	}
	c.sid = hs.SID
	auth, _ := json.Marshal(map[string]string{"token": token})
	if got := c.poll("POST", "40"+string(auth)); got != "ok" {
		t.Fatalf("POST connect: %q", got)
	}
	var got []string
	for deadline := time.Now().Add(waitTime); !strings.Contains(strings.Join(got, "\x1e"), `42["hello"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no connect and hello over polling: %q", got)
		}
		got = append(got, strings.Split(c.poll("GET", ""), "\x1e")...)
	}
	if !strings.HasPrefix(got[0], "40") {
		t.Fatalf("first packet after connect: %q, want 40{sid}", got[0])
	}

	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: waitTime}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket&sid=" + c.sid
	ws, resp, err := d.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("upgrade: %v (%s)", err, respStatus(resp))
	}
	c.ws = ws
	t.Cleanup(func() { ws.Close() })
	must(t, ws.WriteMessage(websocket.TextMessage, []byte("2probe")))
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(c.frames)
				return
			}
			if string(b) == "2" { // engine.io ping
				_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			c.frames <- string(b)
		}
	}()
	if f := c.next(); f != "3probe" {
		t.Fatalf("probe answered %q, want 3probe", f)
	}
	must(t, ws.WriteMessage(websocket.TextMessage, []byte("5")))
	return c
}

func (c *sioClient) next() string {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("socket.io WebSocket closed")
		}
		return f
	case <-time.After(waitTime):
		c.t.Fatal("nothing from socket.io")
	}
	return ""
}

// await returns the next frame that starts with prefix.
func (c *sioClient) await(prefix string) string {
	c.t.Helper()
	for {
		if f := c.next(); strings.HasPrefix(f, prefix) {
			return f
		}
	}
}

// awaitMessage returns the next message event whose text is text,
// skipping the others.
func (c *sioClient) awaitMessage(text string) string {
	c.t.Helper()
	for {
		if f := c.await(`42["message"`); strings.Contains(f, fmt.Sprintf(`"text":%q`, text)) {
			return f
		}
	}
}

func (c *sioClient) emit(packet string) {
	c.t.Helper()
	must(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(packet)))
}

// dialFrom opens the chat socket through the proxy from a local address
// of the client's choosing (any 127.x.y.z is this machine), with extra
// headers; it returns the HTTP status of a refusal, or 101.
func dialFrom(t *testing.T, p *Server, from string, token string, extra http.Header) int {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: waitTime}
	d := websocket.Dialer{NetDialContext: nd.DialContext, TLSClientConfig: p.tls, HandshakeTimeout: waitTime}
	h := http.Header{"Authorization": {"Bearer " + token}}
	for k, v := range extra {
		h[k] = v
	}
	conn, resp, err := d.Dial(p.WSURL(""), h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		return resp.StatusCode
	}
	t.Cleanup(func() { conn.Close() })
	return http.StatusSwitchingProtocols
}

// A chat through Debian's nginx with the documented site: TLS, the native
// WebSocket, socket.io polling then upgrading, PocketBase's SSE and REST;
// and the per-address limit counts the clients' addresses, not nginx's.
func TestBehindNginx(t *testing.T) {
	// What docs/deploy.md tells operators to set in the dashboard.
	srv := StartServer(t, WithEnv("CHAT_CONNS_PER_IP=2"), WithSetting("$.trustedProxy.headers", []string{"X-Real-IP"}))
	ng := startNginx(t, "pocketchat.nginx.conf", map[string]string{"127.0.0.1:8090": srv.Addr})
	p := srv.Via(ng.url, ng.tls)

	general := p.General()
	alice, bob, carol := p.NewUser("Alice"), p.NewUser("Bob"), p.NewUser("Carol")

	// Native WebSocket over TLS.
	a := p.Dial(alice)
	a.Join(general)

	// SSE: PocketBase's realtime, streamed through the proxy.
	sse := p.Subscribe(carol.Token, "messages")

	// socket.io: polling, then the upgrade.
	sio := connectSocketIO(t, ng.url, ng.tls, bob.Token)
	sio.emit(fmt.Sprintf(`421["join",{"room":%q}]`, general))
	if f := sio.await("431"); !strings.Contains(f, `"joined"`) && !strings.Contains(f, `"room"`) {
		t.Fatalf("join ack: %q", f)
	}
	sio.emit(fmt.Sprintf(`422["send",{"room":%q,"text":"hello from socket.io"}]`, general))
	if f := sio.await("432"); !strings.Contains(f, "hello from socket.io") {
		t.Fatalf("send ack: %q", f)
	}
	a.ExpectMessage(general, "hello from socket.io")

	a.Send(general, "hello from the native socket")
	if f := sio.await(`42["message"`); !strings.Contains(f, "hello from the native socket") {
		t.Fatalf("socket.io got %q", f)
	}

	// REST through the proxy reaches everyone.
	code, _ := restCreateVia(p, carol.Token, map[string]any{"room": general, "author": carol.ID, "text": "hello from REST"})
	if code != http.StatusOK {
		t.Fatalf("REST create through nginx: %d", code)
	}
	a.ExpectMessage(general, "hello from REST")
	if f := sio.await(`42["message"`); !strings.Contains(f, "hello from REST") {
		t.Fatalf("socket.io got %q", f)
	}
	texts := map[string]bool{}
	for len(texts) < 3 {
		ev := sse.Next()
		rec, _ := ev.Data["record"].(map[string]any)
		if text, _ := rec["text"].(string); ev.Name == "messages" && text != "" {
			texts[text] = true
		}
	}

	// The client's address reaches the limits: two connections from
	// 127.0.0.2, the third refused even if it claims another address;
	// 127.0.0.3 is another client.
	for i := range 2 {
		if code := dialFrom(t, p, "127.0.0.2", alice.Token, nil); code != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from 127.0.0.2: %d", i+1, code)
		}
	}
	forged := http.Header{"X-Real-IP": {"127.0.0.9"}, "X-Forwarded-For": {"127.0.0.9"}}
	if code := dialFrom(t, p, "127.0.0.2", alice.Token, forged); code != http.StatusTooManyRequests {
		t.Errorf("third connection from 127.0.0.2 (claiming 127.0.0.9): %d, want 429", code)
	}
	if code := dialFrom(t, p, "127.0.0.3", alice.Token, nil); code != http.StatusSwitchingProtocols {
		t.Errorf("a connection from 127.0.0.3: %d, want 101", code)
	}

	// Through the proxy the page's own origin is accepted (Host keeps its
	// port), a foreign one refused.
	if code := dialFrom(t, p, "127.0.0.4", alice.Token, http.Header{"Origin": {ng.url}}); code != http.StatusSwitchingProtocols {
		t.Errorf("same-origin page through nginx: %d, want 101", code)
	}
	if code := dialFrom(t, p, "127.0.0.5", alice.Token, http.Header{"Origin": {"https://evil.example"}}); code != http.StatusForbidden {
		t.Errorf("foreign page through nginx: %d, want 403", code)
	}
}

// restCreateVia posts a message through p and returns the status.
func restCreateVia(p *Server, token string, fields map[string]any) (int, Record) {
	var rec Record
	code := p.Do("POST", "/api/collections/messages/records", token, fields, &rec)
	return code, rec
}
