package telegrafinput

import _ "embed"

//go:embed sample.conf
var sampleConfig string

// SampleConfig returns the documented configuration file with every
// option and its default; btest-telegraf -sample-config prints it.
func SampleConfig() string { return sampleConfig }
