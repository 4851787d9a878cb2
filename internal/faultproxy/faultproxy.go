// Package faultproxy is a TCP proxy for tests that can make the network
// between a client and a server misbehave the way real ones do: go silent
// with every connection left open (packets dropped: Blackhole), slow down
// (Delay), or reset every connection (Reset).
//
// It is written here rather than taken from toxiproxy because the tests
// need only these three faults, in process, and toxiproxy's library brings
// an HTTP API, a metrics stack and a dozen dependencies with it.
package faultproxy

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections accepted on its listener to an upstream
// address. Its methods are safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	upstream string
	accepted atomic.Int64

	mu        sync.Mutex
	cond      *sync.Cond // signalled when blackhole turns off or the proxy closes
	blackhole bool
	delay     time.Duration
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Start listens on 127.0.0.1:0 and forwards every connection to upstream.
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	return p, nil
}

// StartURL starts a proxy to the host of the URL dsn (a postgres:// DSN, say)
// and returns it with dsn pointing at the proxy instead.
func StartURL(dsn string) (*Proxy, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, "", err
	}
	p, err := Start(u.Host)
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	return p, u.String(), nil
}

// Accepted is how many connections the proxy has accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole drops every byte in both directions while on, on existing and
// new connections, which stay open: to both ends the network has gone
// silent. Turning it off delivers what was held back, as TCP would after a
// partition heals.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = on
	p.cond.Broadcast()
}

// Delay holds every chunk of bytes for d before forwarding it, in both
// directions; 0 forwards at once.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Reset closes every open connection abruptly (RST, not FIN).
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		delete(p.conns, c)
	}
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.Reset()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(client) })
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) serve(client net.Conn) {
	if !p.track(client) {
		return
	}
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(server) {
		client.Close()
		return
	}
	var both sync.WaitGroup
	both.Go(func() { p.pipe(server, client) })
	both.Go(func() { p.pipe(client, server) })
	both.Wait()
}

// pipe copies from src to dst, chunk by chunk, applying the faults; when
// either side ends it closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a closed connection: done either way
			return
		}
	}
}

// hold waits while the proxy is blackholed and then for the delay; it
// reports false once the proxy is closed.
func (p *Proxy) hold() bool {
	p.mu.Lock()
	for p.blackhole && !p.closed {
		p.cond.Wait()
	}
	closed, delay := p.closed, p.delay
	p.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	return !closed
}
