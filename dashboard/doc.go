// Package dashboard is a live web page over a btest server: the tests
// running now with a graph each, the last finished ones, refusals by
// reason and the server's throughput over the last ten minutes.
//
// A State collects the server's events through a core.Observer (nothing
// on the data path: it only sees the once-a-second reports the server
// makes anyway) into fixed-size rings. Handler serves it as a page with
// its assets embedded, as JSON (api/state) and as Server-Sent Events
// (api/events), all under whatever path prefix it is mounted on.
//
// Nothing shown includes a password or a verifier: the state is built from
// core.SessionInfo and core.Summary, which carry the user name only.
package dashboard
