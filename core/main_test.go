package core

import (
	"testing"

	"github.com/btest-go/btest/internal/testutil"
)

// TestMain fails the package's run when goroutines outlive its tests. Most
// tests run in parallel, where a per-test check would see the others'
// goroutines; the tests that watch the whole process (the attacks, leak
// checks of one test) run in processes of their own (testutil.Isolate),
// and the accuracy checks and allocation counts alone, before the rest.
func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }
