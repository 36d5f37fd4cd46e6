package chat

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for clients. Codes are part of the protocol.
type Code string

// The error codes clients can receive.
const (
	CodeBadRequest   Code = "bad_request"   // malformed frame, unknown type, missing or wrong field
	CodeAuthRequired Code = "auth_required" // guests may read, not write
	CodeForbidden    Code = "forbidden"     // the user may not do this (e.g. read a private room)
	CodeNotFound     Code = "not_found"     // no such room, message or user
	CodeTooLarge     Code = "too_large"     // text, frame or file over its limit
	CodeRateLimited  Code = "rate_limited"  // slow down; RetryAfter says for how long
	CodeInternal     Code = "internal"      // the server failed; nothing was stored
)

// Error is an error with a code and a message that is safe to show users.
type Error struct {
	Code       Code
	Message    string
	RetryAfter time.Duration // for CodeRateLimited
	Until      time.Time     // for CodeForbidden by a mute: when it ends
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted, user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, CodeInternal for errors that carry none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-safe message of err. Errors without a code
// get a generic message so internal details never reach clients.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal server error"
}
