package api

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Cursors are opaque to clients: a versioned prefix and the last id of a
// page, base64url-encoded (URL-safe, well under 200 characters).
const cursorPrefix = "v1:"

var errCursor = errors.New("not a cursor this service issued; pass the `next` value of an earlier page")

func encodeCursor(lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(lastID, 10)))
}

func decodeCursor(raw string) (int64, error) {
	if raw == "" || len(raw) > 200 {
		return 0, errCursor
	}
	decoded, err := base64.RawURLEncoding.Strict().DecodeString(raw)
	if err != nil {
		return 0, errCursor
	}
	digits, ok := strings.CutPrefix(string(decoded), cursorPrefix)
	if !ok {
		return 0, errCursor
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	// only the canonical spelling: "+7" or "007" were never issued
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != digits {
		return 0, errCursor
	}
	return id, nil
}
