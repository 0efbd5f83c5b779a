package ecsrp5

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Client runs the client side of the exchange on rw, which has already
// received the server's 03 00 00 00. It writes MSG1, reads MSG2, writes MSG3,
// reads MSG4 and verifies the server proof. It reads exactly MSG2 and MSG4,
// so the result word that follows MSG4 is left on rw for the caller.
//
// The caller sets deadlines on the connection. rand supplies the 32-byte
// private key (crypto/rand when nil).
//
// Servers reject by closing the connection, so a connection closed (EOF,
// reset) where MSG2 or MSG4 was due, or a MSG4 of the wrong length, returns
// an error wrapping ErrAuthFailed as well as the I/O error. A wrong server
// proof returns ErrAuthFailed: the server does not know the password.
func Client(rw io.ReadWriter, user, password string, rand io.Reader) error {
	var sa [32]byte
	if _, err := io.ReadFull(randOrDefault(rand), sa[:]); err != nil {
		return fmt.Errorf("ecsrp5: reading client private key: %w", err)
	}
	c, err := newClientSession(user, password, &sa)
	if err != nil {
		return err
	}
	var buf [256]byte
	if err := writeFrame(rw, c.hello, &buf, "MSG1"); err != nil {
		return err
	}

	frame, err := readFrame(rw, &buf, ServerHelloSize, "MSG2")
	if err != nil {
		if closedByPeer(err) {
			return fmt.Errorf("%w: the server closed the connection instead of sending MSG2 (unknown user?) (%w)", ErrAuthFailed, err)
		}
		return err
	}
	var hello ServerHello
	if err := hello.UnmarshalBinary(frame); err != nil {
		return err
	}
	cc, err := c.answer(&hello)
	if err != nil {
		return err
	}
	if err := writeFrame(rw, cc, &buf, "MSG3"); err != nil {
		return err
	}

	frame, err = readFrame(rw, &buf, ProofSize, "MSG4")
	if err != nil {
		if closedByPeer(err) {
			return fmt.Errorf("%w: the server closed the connection instead of sending MSG4 (wrong password?) (%w)", ErrAuthFailed, err)
		}
		if errors.Is(err, ErrMalformed) {
			return fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		return err
	}
	var cs Proof
	if err := cs.UnmarshalBinary(frame); err != nil {
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	if !c.verify(&cs) {
		return fmt.Errorf("%w: the server's proof does not match (the server does not know the password)", ErrAuthFailed)
	}
	return nil
}

// closedByPeer reports whether err means the peer ended the connection, as
// opposed to a timeout or a local failure.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED)
}
