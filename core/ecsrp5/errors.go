package ecsrp5

import "errors"

// Sentinel errors. Every error this package returns wraps at most a few of
// these (plus the underlying I/O error, if any), so callers test with errors.Is.
var (
	// ErrAuthFailed means the password was wrong, the user unknown, or the
	// peer's proof did not verify. A client also reports it when the server
	// closes the connection instead of answering, which is how servers reject.
	ErrAuthFailed = errors.New("ecsrp5: authentication failed")
	// ErrMalformed means a message, username or verifier text does not have
	// the shape the protocol prescribes (length, terminator, trailing bytes).
	ErrMalformed = errors.New("ecsrp5: malformed message")
	// ErrInvalidPoint means a public key or verifier is not a usable curve
	// point: not canonical, not on the curve, or of small order.
	ErrInvalidPoint = errors.New("ecsrp5: invalid curve point")
)
