// Package telegrafinput is a Telegraf input for MikroTik bandwidth tests.
// Telegraf's inputs.execd runs it as the btest-telegraf program: each
// round runs every configured target once through core.RunClient and
// writes one line-protocol point per test to stdout (measurement btest,
// see Encoder), so InfluxDB and Grafana see throughput, loss and CPU load
// over time. Failed tests are points too, with the result tag and the
// result_code field (see Result) set, so dashboards and alerts see them.
//
// The configuration file (Config, sample.conf) is checked at start:
// unknown keys and bad values stop the program with a message naming the
// key. Rounds never overlap; triggers that come while a round runs
// collapse into one pending round (Trigger).
package telegrafinput
