package telegrafinput

import (
	"testing"

	"github.com/btest-go/btest/internal/testutil"
)

// TestMain fails the run when a test leaves goroutines behind: the tests
// run in parallel, so the check is made once, at the end.
func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }
