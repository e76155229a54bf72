package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Handlers map them to HTTP statuses; wrap them with %w.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrGone         = errors.New("gone")
)

// Unavailable reports whether err means the database could not be reached or
// did not answer in time (connection refused or lost, server shutting down or
// starting up, too many connections, the request's deadline spent waiting):
// the client may retry; handlers answer 503.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "conn closed")
}

// StateError is a refused state transition or a conflict a client can act on.
// It wraps ErrConflict (409), ErrForbidden (403) or ErrGone (410).
type StateError struct {
	Kind    error
	Code    string
	Message string
	Details map[string]any
}

func (e *StateError) Error() string { return e.Message }
func (e *StateError) Unwrap() error { return e.Kind }

// Conflict returns a 409-class StateError.
func Conflict(code, message string, details map[string]any) error {
	return &StateError{Kind: ErrConflict, Code: code, Message: message, Details: details}
}

// Forbidden returns a 403-class StateError.
func Forbidden(code, message string) error {
	return &StateError{Kind: ErrForbidden, Code: code, Message: message}
}

// Gone returns a 410-class StateError.
func Gone(code, message string) error {
	return &StateError{Kind: ErrGone, Code: code, Message: message}
}

// ValidationError lists invalid input fields and what is wrong with each.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Validator collects field errors.
type Validator struct{ fields map[string]string }

// Check records msg for field unless ok (the first message per field wins).
func (v *Validator) Check(ok bool, field, msg string) {
	if ok {
		return
	}
	if v.fields == nil {
		v.fields = map[string]string{}
	}
	if _, seen := v.fields[field]; !seen {
		v.fields[field] = msg
	}
}

// Err returns a *ValidationError, or nil when every check passed.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

// Invalid returns a ValidationError for one field.
func Invalid(field, msg string) error {
	return &ValidationError{Fields: map[string]string{field: msg}}
}

// translate maps driver errors to sentinels: no rows → ErrNotFound, unique
// violation → ErrConflict, a check or foreign key violation → a ValidationError.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%s: %w", what, ErrConflict)
		case "23503":
			return fmt.Errorf("%s: %w", what, &ValidationError{Fields: map[string]string{"reference": "refers to something that does not exist"}})
		case "23514":
			return fmt.Errorf("%s: %w", what, &ValidationError{Fields: map[string]string{"value": "out of range (" + pgErr.ConstraintName + ")"}})
		}
		// Class 22, data exceptions: a NUL byte, a value too long or out of
		// range for its column. Input the validators let through, not a fault.
		if strings.HasPrefix(pgErr.Code, "22") {
			return fmt.Errorf("%s: %w", what, &ValidationError{Fields: map[string]string{"value": "is not acceptable text or is out of range"}})
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
