package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusClientClosed is nginx's code for "the client closed the connection
// before the answer": counted and logged as such, never as a 5xx.
const StatusClientClosed = 499

// metrics are the contract's request counter and latency histogram. Label
// values are bounded: route templates, a fixed set of methods, statuses.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = withLength(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// withLength buffers an answer to send it with Content-Length instead of
// chunked, so a HEAD gets the same headers as the GET (a scrape is small).
func withLength(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(buf, r)
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(buf.body.Len()))
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
	})
}

type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) WriteHeader(status int)      { b.status = status }

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
}

// methodLabel: any token is a valid method, so unknown ones share one label.
func methodLabel(method string) string {
	if knownMethods[method] {
		return method
	}
	return "other"
}

// recorder notes the status a handler sent.
type recorder struct {
	http.ResponseWriter
	status int
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// boundLeftoverBody limits what the server does with a body the handler did
// not read to the end: before reusing the connection it reads the rest, and
// without a deadline a client could stall it forever. After a 408 the body
// has already stalled, so the connection closes at once.
func (a *API) boundLeftoverBody(w http.ResponseWriter, r *http.Request, status int) {
	if r.ContentLength == 0 {
		return
	}
	deadline := time.Now().Add(a.bodyIdle)
	if status == http.StatusRequestTimeout {
		deadline = time.Now()
	}
	_ = http.NewResponseController(w).SetReadDeadline(deadline) // unsupported by test recorders
}

// quietPaths are polled by probes and scrapers: logged at debug only.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func (a *API) observe(w http.ResponseWriter, r *http.Request, route string, serve func(http.ResponseWriter)) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	serve(rec)
	a.boundLeftoverBody(w, r, rec.status)
	status := rec.status
	if status == 0 {
		if r.Context().Err() != nil {
			status = StatusClientClosed
		} else {
			status = http.StatusOK // a handler that wrote nothing answered 200
		}
	}
	elapsed := time.Since(start)
	method := methodLabel(r.Method)
	a.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	a.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())

	level := logLevelFor(status)
	if quietPaths[r.URL.Path] && status < 500 {
		level = slog.LevelDebug
	}
	msg := "request"
	if status == StatusClientClosed {
		msg = "client closed the connection before the response"
	}
	a.log.Log(r.Context(), level, msg,
		"method", r.Method,
		"path", r.URL.Path,
		"route", route,
		"status", status,
		"duration_ms", float64(elapsed.Microseconds())/1000,
	)
}
