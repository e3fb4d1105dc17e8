package pairing

import "time"

// window counts events in a fixed window of time.
type window struct {
	start time.Time
	n     int
}

// add counts one event at now, starting a new window if span has passed.
func (w *window) add(now time.Time, span time.Duration) {
	if now.Sub(w.start) >= span {
		w.start, w.n = now, 0
	}
	w.n++
}

// full reports whether the window holds max events at now, and when it
// ends.
func (w *window) full(now time.Time, span time.Duration, max int) (time.Duration, bool) {
	if now.Sub(w.start) >= span || w.n < max {
		return 0, false
	}
	return w.start.Add(span).Sub(now), true
}

// guesses limits wrong codes per client address and in all: a sender
// that tried PerIPFailures wrong (or taken) codes within the window is
// refused with 429 until it ends, and everyone is once GlobalFailures
// wrong codes were tried, however many addresses they came from.
type guesses struct {
	perIP        map[string]*window
	global       window
	span         time.Duration
	max, maxGlob int
}

const maxTrackedIPs = 100000

// blocked reports whether ip must wait, and how long.
func (g *guesses) blocked(ip string, now time.Time) (time.Duration, bool) {
	if d, full := g.global.full(now, g.span, g.maxGlob); full {
		return d, true
	}
	if w := g.perIP[ip]; w != nil {
		return w.full(now, g.span, g.max)
	}
	return 0, false
}

// fail counts one wrong code from ip.
func (g *guesses) fail(ip string, now time.Time) {
	g.global.add(now, g.span)
	w := g.perIP[ip]
	if w == nil {
		if len(g.perIP) >= maxTrackedIPs {
			for k, x := range g.perIP {
				if now.Sub(x.start) >= g.span {
					delete(g.perIP, k)
				}
			}
		}
		if len(g.perIP) >= maxTrackedIPs { // all current: the global limit holds them
			return
		}
		w = &window{start: now}
		g.perIP[ip] = w
	}
	w.add(now, g.span)
}
