// Package config reads the service's settings from the environment, and only
// from there (docs: the service contract, "Process").
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything the process needs to start.
type Config struct {
	DatabaseURL   string
	Host          string
	Port          int
	LogLevel      slog.Level
	ShutdownGrace time.Duration
	// DBTimeout bounds one request's database work: statement_timeout,
	// lock_timeout and the wait for a pooled connection.
	DBTimeout time.Duration
}

// Addr is the listen address, host:port (IPv6 hosts bracketed).
func (c Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

const (
	dbTimeoutMinMS = 100
	dbTimeoutMaxMS = 60000
)

// FromEnv reads the settings; lookup is os.LookupEnv outside tests.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	get := func(name, fallback string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return fallback
	}
	cfg := Config{Host: get("HOST", "0.0.0.0")}

	dsn, err := DatabaseURL(get("DATABASE_URL", ""))
	errs = append(errs, err)
	cfg.DatabaseURL = dsn

	cfg.Port, err = intIn("PORT", get("PORT", "8080"), 1, 65535)
	errs = append(errs, err)

	grace, err := intIn("SHUTDOWN_GRACE_SECONDS", get("SHUTDOWN_GRACE_SECONDS", "10"), 0, 3600)
	errs = append(errs, err)
	cfg.ShutdownGrace = time.Duration(grace) * time.Second

	timeoutMS, err := intIn("DB_TIMEOUT_MS", get("DB_TIMEOUT_MS", "5000"), dbTimeoutMinMS, dbTimeoutMaxMS)
	errs = append(errs, err)
	cfg.DBTimeout = time.Duration(timeoutMS) * time.Millisecond

	cfg.LogLevel, err = logLevel(get("LOG_LEVEL", "info"))
	errs = append(errs, err)

	return cfg, errors.Join(errs...)
}

// Getenv adapts os.LookupEnv for FromEnv.
func Getenv() func(string) (string, bool) { return os.LookupEnv }

func intIn(name, raw string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d, got %q", name, lo, hi, raw)
	}
	return n, nil
}

func logLevel(raw string) (slog.Level, error) {
	switch strings.ToLower(raw) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "critical":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOG_LEVEL must be one of debug, info, warning, error, got %q", raw)
}

// DatabaseURL checks a postgresql:// URL. Its errors never quote any part of
// the value: when a password holds an unencoded '@' or '/', the parts after
// it land where the host, port or database belong, so quoting "the host"
// would print a piece of the password into the logs.
func DatabaseURL(raw string) (string, error) {
	const hint = " (postgresql://user:password@host:port/database, special characters in the password percent-encoded, '@' as %40)"
	if raw == "" {
		return "", errors.New("DATABASE_URL is not set" + hint)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("DATABASE_URL is not a valid URL" + hint)
	}
	if u.Scheme != "postgresql" && u.Scheme != "postgres" {
		return "", errors.New("DATABASE_URL must start with postgresql://" + hint)
	}
	if u.Hostname() == "" {
		return "", errors.New("DATABASE_URL has no host" + hint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", errors.New("DATABASE_URL has a port that is not a number from 1 to 65535" + hint)
		}
	}
	if strings.Contains(strings.TrimPrefix(u.Path, "/"), "/") {
		return "", errors.New("DATABASE_URL has more than one path segment after the host" + hint)
	}
	return raw, nil
}
