package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ttyProgress rewrites one status line on a terminal, at most ten times a second.
type ttyProgress struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
}

func (p *ttyProgress) Update(step, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s: %s", step, message)
}

func (p *ttyProgress) Done(step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}
