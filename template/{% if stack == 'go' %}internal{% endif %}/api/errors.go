package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// FieldError names one invalid input and why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

type errorBody struct {
	Error  string       `json:"error"`
	Detail string       `json:"detail"`
	Fields []FieldError `json:"fields,omitempty"`
}

// writeJSON sends a JSON body with an explicit Content-Length, so HEAD
// answers carry the same headers as GET.
func writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal_error","detail":"response could not be encoded"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, errorBody{Error: code, Detail: detail})
}

func writeValidation(w http.ResponseWriter, detail string, fields ...FieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, errorBody{
		Error: "validation_error", Detail: detail, Fields: fields,
	})
}

// clientClosed records a request whose client went away before the answer:
// not a server error, so nothing is written and it is counted as 499.
func clientClosed(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.status = StatusClientClosed
	}
}

// dbFailure answers a request whose database work failed. The request was
// valid, so the client gets 503 and may retry, unless the failure is a bug in
// the service's own SQL (500) or the client has already gone (499).
func (a *API) dbFailure(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		clientClosed(w)
		return
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && isBug(pgErr.Code) {
		a.log.Error("database rejected the service's query", "path", r.URL.Path, "code", pgErr.Code, "error", pgErr.Message)
		writeError(w, http.StatusInternalServerError, "internal_error", "internal server error")
		return
	}
	reason := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "database work exceeded DB_TIMEOUT_MS"
	}
	if len(reason) > 300 {
		reason = reason[:300]
	}
	a.log.Warn("database unavailable", "path", r.URL.Path, "reason", reason)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the database is unavailable or too slow; retry later")
}

// isBug: SQLSTATE classes that mean the query itself is wrong (syntax,
// undefined column, data or integrity errors); every other failure
// (connections, timeouts, lock waits, shutdowns, resources) is transient.
func isBug(code string) bool {
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "22", "23", "42", "XX":
		return true
	}
	return false
}

// logLevelFor: 5xx are errors, everything else is routine.
func logLevelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
