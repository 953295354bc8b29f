// Package httpserver adapts what net/http's server itself answers, before
// any handler runs, to the service contract.
package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// net/http refuses a request it cannot parse with a canned plain-text reply
// written straight to the connection, for example
// "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request".
// Handler responses always carry a Date header, so this exact shape is
// never one of the service's own answers.
var (
	cannedPrefix = []byte("HTTP/1.1 ")
	cannedHeader = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
)

// JSONRefusals wraps a listener so that the server's canned refusals become
// the contract's JSON errors. A head that stalls mid-line is one of them:
// when ReadHeaderTimeout fires, the partial line reaches the header parser
// as if complete and the server answers 400; it is a 408.
func JSONRefusals(inner net.Listener) net.Listener { return &listener{inner} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

type conn struct {
	net.Conn
	timedOut atomic.Bool // the last read ended at a deadline
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var netErr net.Error
	c.timedOut.Store(errors.As(err, &netErr) && netErr.Timeout())
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if reply, ok := c.rewrite(p); ok {
		if _, err := c.Conn.Write(reply); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's graceful close (half-close, then drain) working.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) rewrite(p []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(p, cannedPrefix)
	if !ok {
		return nil, false
	}
	statusLine, body, ok := bytes.Cut(rest, cannedHeader)
	if !ok || !bytes.Equal(statusLine, body) || bytes.ContainsAny(statusLine, "\r\n") {
		return nil, false
	}
	code, reason, _ := bytes.Cut(statusLine, []byte(" "))
	status, err := strconv.Atoi(string(code))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	errorCode, detail := "bad_request", "the HTTP server refused the request: "+string(reason)
	switch {
	case c.timedOut.Load():
		status, errorCode = 408, "request_timeout"
		detail = "the request head did not arrive in time"
	case status == 431:
		errorCode = "request_header_fields_too_large"
	case status == 501:
		errorCode = "not_implemented"
	}
	payload, _ := json.Marshal(map[string]string{"error": errorCode, "detail": detail})
	payload = append(payload, '\n')
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(payload))
	return append([]byte(head), payload...), true
}
