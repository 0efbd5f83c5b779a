package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed assets
var assetFS embed.FS

// assets holds the page's files: index.html, style.css, app.js and the
// vendored uPlot with its licence.
var assets, _ = fs.Sub(assetFS, "assets")

// defaultWriteTimeout bounds each write to an event stream: a reader that
// takes no data for so long is cut off.
const defaultWriteTimeout = 10 * time.Second

// Handler serves the dashboard of one State. Mount it anywhere: the page
// uses relative URLs, so it works under a path prefix (/btest/) as well
// as at the root. Paths (relative to the mount point):
//
//	./              the page
//	./assets/NAME   its stylesheet, script and uPlot
//	./api/state     the whole state as JSON (Snapshot)
//	./api/events    Server-Sent Events: "tick" every second (Tick), "start"
//	                (Active) and "end" (Recent) for every test, "facts"
//	                (Facts) when they change
type Handler struct {
	state        *State
	facts        func() Facts
	writeTimeout time.Duration
}

// NewHandler returns the dashboard of st; facts, called for every state
// request and once a second per event stream, describes the server.
func NewHandler(st *State, facts func() Facts) *Handler {
	if facts == nil {
		facts = func() Facts { return Facts{Version: Version(), Listeners: []string{}} }
	}
	return &Handler{state: st, facts: facts, writeTimeout: defaultWriteTimeout}
}

// ServeHTTP routes by the end of the path, so any prefix works.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/api/state"):
		h.serveState(w)
	case strings.HasSuffix(p, "/api/events"):
		h.serveEvents(w, r)
	case p == "" || strings.HasSuffix(p, "/"):
		hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'")
		h.serveAsset(w, r, "index.html")
	default:
		i := strings.LastIndex(p, "/assets/")
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		h.serveAsset(w, r, p[i+len("/assets/"):])
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if !fs.ValidPath(name) || name == "." {
		http.NotFound(w, r)
		return
	}
	if st, err := fs.Stat(assets, name); err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	http.ServeFileFS(w, r, assets, name)
}

func (h *Handler) serveState(w http.ResponseWriter) {
	snap := h.state.Snapshot()
	snap.Server = h.facts()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(snap)
}

// serveEvents streams the hub's messages, and the facts whenever they
// change. A reader that falls behind is dropped by the hub; one that
// stops reading is cut off by the write deadline.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	sub := h.state.hub.subscribe()
	if sub == nil {
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	defer h.state.hub.unsubscribe(sub)
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	write := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(h.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var lastFacts []byte
	sendFacts := func() bool {
		msg := event("facts", h.facts())
		if bytes.Equal(msg, lastFacts) {
			return true
		}
		lastFacts = msg
		return write(msg)
	}
	if !write([]byte("retry: 2000\n\n")) || !sendFacts() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-sub.ch:
			if !ok || !write(msg) {
				return
			}
			if bytes.HasPrefix(msg, []byte("event: tick\n")) && !sendFacts() {
				return
			}
		}
	}
}
