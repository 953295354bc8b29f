package httpserver

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "handled")
		}),
		ReadHeaderTimeout: 300 * time.Millisecond,
		MaxHeaderBytes:    4 << 10,
	}
	go func() { _ = server.Serve(JSONRefusals(ln)) }()
	t.Cleanup(func() { _ = server.Close() })
	return ln.Addr().String()
}

// exchange writes the chunks (pausing between them) and reads until close.
func exchange(t *testing.T, addr string, pause time.Duration, chunks ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, chunk := range chunks {
		if _, err := io.WriteString(c, chunk); err != nil {
			break // the server may close first
		}
		time.Sleep(pause)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(c)
	return string(out)
}

func jsonError(t *testing.T, reply string, status string) string {
	t.Helper()
	head, body, _ := strings.Cut(reply, "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 "+status) || !strings.Contains(head, "Content-Type: application/json") {
		t.Fatalf("reply %q, want a JSON %s", reply, status)
	}
	var parsed map[string]string
	if err := json.Unmarshal([]byte(body), &parsed); err != nil || parsed["detail"] == "" {
		t.Fatalf("body %q: %v", body, err)
	}
	return parsed["error"]
}

func TestRefusalsBecomeJSON(t *testing.T) {
	addr := serve(t)
	if code := jsonError(t, exchange(t, addr, 0, "NOT A REQUEST LINE\r\n\r\n"), "400"); code != "bad_request" {
		t.Errorf("garbage request line: %s", code)
	}
	if code := jsonError(t, exchange(t, addr, 0, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n"), "400"); code != "bad_request" {
		t.Errorf("Content-Length: abc: %s", code)
	}
	big := "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n"
	if code := jsonError(t, exchange(t, addr, 0, big), "431"); code != "request_header_fields_too_large" {
		t.Errorf("big header: %s", code)
	}
}

func TestAHeadThatStallsMidLineIs408(t *testing.T) {
	addr := serve(t)
	reply := exchange(t, addr, 100*time.Millisecond, "GET / HTTP/1.1\r\nHost: t\r\n", "X", "X", "X", "X", "X")
	if code := jsonError(t, reply, "408"); code != "request_timeout" {
		t.Fatalf("stalled head: %s", code)
	}
}

func TestAHeadThatNeverArrivesIsClosedSilently(t *testing.T) {
	if reply := exchange(t, serve(t), 0, "GET / HTTP/1.1\r\nHost: t\r\n"); reply != "" {
		t.Fatalf("got %q", reply)
	}
}

func TestHandlerAnswersPassUntouched(t *testing.T) {
	reply := exchange(t, serve(t), 0, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(reply, "HTTP/1.1 200") || !strings.HasSuffix(reply, "handled") {
		t.Fatalf("got %q", reply)
	}
}
