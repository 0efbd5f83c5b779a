package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"sync"
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
//
// An event stream lasts until the reader leaves, the hub drops it, the
// http.Server that serves it begins to shut down, or Close: a stream
// never holds up a server's Shutdown, which waits for active requests.
type Handler struct {
	state        *State
	facts        func() Facts
	writeTimeout time.Duration

	// done is closed by Close and ends every stream.
	done      chan struct{}
	closeOnce sync.Once
	// hooked holds the servers whose shutdown closes the handler; a
	// handler lives in the few servers of one config.
	mu     sync.Mutex
	hooked map[*http.Server]bool
}

// NewHandler returns the dashboard of st; facts, called for every state
// request and once a second per event stream, describes the server.
func NewHandler(st *State, facts func() Facts) *Handler {
	if facts == nil {
		facts = func() Facts { return Facts{Version: Version(), Listeners: []string{}} }
	}
	return &Handler{state: st, facts: facts, writeTimeout: defaultWriteTimeout,
		done: make(chan struct{}), hooked: make(map[*http.Server]bool)}
}

// Close ends the handler's event streams, and those opened later as soon
// as they have their first facts. Call it when the handler is retired (a
// config reload replaces it): a browser's EventSource reconnects after
// the stream's retry delay and finds the handler that serves now.
func (h *Handler) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

// closeOnShutdown makes the shutdown of the server that serves r close
// the handler: http.Server.Shutdown waits for active requests, and an
// event stream is one that never ends by itself.
func (h *Handler) closeOnShutdown(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.hooked[srv] {
		h.hooked[srv] = true
		srv.RegisterOnShutdown(h.Close)
	}
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
// stops reading is cut off by the write deadline; Close and the server's
// shutdown end every stream.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	h.closeOnShutdown(r)
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
		case <-h.done:
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
