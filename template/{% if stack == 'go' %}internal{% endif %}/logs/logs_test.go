package logs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

func TestOneJSONObjectPerLineWithTsLevelMsg(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo)
	log.Debug("hidden")
	log.Info("hello", "status", 201)
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("want 1 line (debug filtered), got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(lines[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec["level"] != "info" || rec["msg"] != "hello" || rec["status"] != float64(201) {
		t.Fatalf("unexpected record %v", rec)
	}
	if _, err := time.Parse(time.RFC3339Nano, rec["ts"].(string)); err != nil {
		t.Fatalf("ts is not RFC 3339: %v", rec["ts"])
	}
}
