package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxSecretSize bounds a password or verifier file: both are short lines,
// and a larger file is a wrong path (a log, a device), not a secret.
const maxSecretSize = 4096

// Credential names btest looks for in $CREDENTIALS_DIRECTORY, the directory
// systemd fills from LoadCredential=ID:PATH (see packaging/btest.service).
const (
	credPassword = "password"
	credVerifier = "verifier"
)

// readSecret reads a password or verifier file: its first line, without
// the line end ("\n" or "\r\n"). Editors add a newline, and some a blank
// line after it; neither may become part of the password.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretSize {
		return "", fmt.Errorf("%s: longer than %d bytes", path, maxSecretSize)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// loadSecrets fills o.password and o.verifier from, in this order: the
// flags, the --password-file/--verifier-file files, $BTEST_PASSWORD, and
// the systemd credentials "password" and "verifier". Credentials are read
// only with -a, where they are used.
func (o *options) loadSecrets(getenv func(string) string) error {
	if o.passwordFile != "" {
		if o.password != "" {
			return errors.New("--password and --password-file exclude each other")
		}
		p, err := readSecret(o.passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		o.password = p
	}
	if o.verifierFile != "" {
		if o.verifier != "" {
			return errors.New("--verifier and --verifier-file exclude each other")
		}
		v, err := readSecret(o.verifierFile)
		if err != nil {
			return fmt.Errorf("--verifier-file: %w", err)
		}
		o.verifier = v
	}
	if o.password == "" {
		o.password = getenv("BTEST_PASSWORD")
		o.passwordFromEnv = o.password != ""
	}
	dir := getenv("CREDENTIALS_DIRECTORY")
	if dir == "" || o.user == "" {
		return nil
	}
	for _, c := range []struct {
		name string
		dst  *string
	}{{credPassword, &o.password}, {credVerifier, &o.verifier}} {
		if *c.dst != "" {
			continue
		}
		v, err := readSecret(filepath.Join(dir, c.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("systemd credential %q: %w", c.name, err)
		}
		*c.dst = v
	}
	return nil
}
