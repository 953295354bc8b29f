package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgresql://app:app@db:5432/app"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr() != "0.0.0.0:8080" || cfg.LogLevel != slog.LevelInfo ||
		cfg.ShutdownGrace != 10*time.Second || cfg.DBTimeout != 5*time.Second {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestDBTimeoutBounds(t *testing.T) {
	for value, ok := range map[string]bool{"100": true, "60000": true, "99": false, "60001": false, "1.5": false, "abc": false} {
		_, err := FromEnv(env(map[string]string{"DATABASE_URL": "postgresql://h/db", "DB_TIMEOUT_MS": value}))
		if (err == nil) != ok {
			t.Errorf("DB_TIMEOUT_MS=%s: err=%v, want ok=%v", value, err, ok)
		}
	}
}

func TestBadDatabaseURLNeverQuotesTheValue(t *testing.T) {
	// A password with an unencoded '@' and '/': its tail becomes the "host"
	// and the "port" of a naive split.
	secret := "s3cr@t/pa55:w0rd"
	for _, raw := range []string{
		"postgresql://app:" + secret + "@db:5432/app",
		"mysql://app:" + secret + "@db/app",
		"postgresql://app:s3cr@t:99999/x",
		"not a url at all s3cr",
		"postgresql:///nohost-s3cr",
	} {
		_, err := DatabaseURL(raw)
		if err == nil {
			t.Errorf("accepted %q", raw)
			continue
		}
		for _, part := range []string{"s3cr", "pa55", "w0rd", "99999", "mysql"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("error quotes %q from the URL: %v", part, err)
			}
		}
	}
}

func TestEncodedPasswordIsAccepted(t *testing.T) {
	if _, err := DatabaseURL("postgresql://app:p%40ss%2Fw@db:5432/app"); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidValuesAreAllReported(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"PORT": "0", "LOG_LEVEL": "loud"}))
	for _, name := range []string{"DATABASE_URL", "PORT", "LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
