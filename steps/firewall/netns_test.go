package firewall_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/nft/nfttest"
)

// lab is two namespaces joined by a veth pair: the server (where the firewall goes) and a
// client with several source addresses, some allowed and some not.
type lab struct {
	t              *testing.T
	server, client *nfttest.NS
	srvIf          string
}

const (
	srv4, srv6     = "10.99.0.1", "fdaa:0:1::1"
	cli4, cli4b    = "10.99.0.2", "10.99.0.3"
	cliPriv        = "fdaa:0:1::2" // inside the /48 of FLY_PRIVATE_IP
	cliPriv2       = "fdaa:0:2::2" // in fdaa::/16 but another organisation's /48
	srvOther6      = "fd00:99::1"  // a non-6PN IPv6 network on the same link
	cliOther6      = "fd00:99::2"  // allowed by a CIDR rule
	cliOther6b     = "fd00:99::3"  // not allowed
	flyPrivateIP   = "fdaa:0:1:a7b::5"
	blockedTimeout = 400 * time.Millisecond
)

func newLab(t *testing.T) *lab {
	nfttest.RequireRoot(t)
	l := &lab{t: t, server: nfttest.NewNS(t, "hfws"), client: nfttest.NewNS(t, "hfwc")}
	srvIf, cliIf := nfttest.Veth(t, l.server, l.client)
	l.srvIf = srvIf
	l.server.AddAddr(srvIf, srv4+"/24")
	l.server.AddAddr(srvIf, srv6+"/16")
	l.server.AddAddr(srvIf, srvOther6+"/64")
	for _, a := range []string{cli4 + "/24", cli4b + "/24", cliPriv + "/16", cliPriv2 + "/16", cliOther6 + "/64", cliOther6b + "/64"} {
		l.client.AddAddr(cliIf, a)
	}
	return l
}

// listenTCP listens on port in ns (dual stack) and accepts until the test ends.
func listenTCP(t *testing.T, ns *nfttest.NS, port string) {
	var ln net.Listener
	var err error
	ns.Do(func() { ln, err = net.Listen("tcp", "[::]:"+port) })
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// echoUDP answers every datagram on port in ns.
func echoUDP(t *testing.T, ns *nfttest.NS, port string) {
	var pc net.PacketConn
	var err error
	ns.Do(func() { pc, err = net.ListenPacket("udp", "[::]:"+port) })
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// outcome of a probe: "open" (handshake or echo), "refused" (RST: reached the host, no
// listener) or "dropped" (nothing came back).
func (l *lab) tcp(from *nfttest.NS, src, dst, port string) string {
	var err error
	from.Do(func() {
		d := net.Dialer{Timeout: blockedTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var c net.Conn
		c, err = d.Dial("tcp", net.JoinHostPort(dst, port))
		if err == nil {
			c.Close()
		}
	})
	return outcome(err)
}

func (l *lab) udp(src, dst, port string) string {
	var err error
	l.client.Do(func() {
		var c *net.UDPConn
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)),
			net.UDPAddrFromAddrPort(netip.MustParseAddrPort(net.JoinHostPort(dst, port))))
		if err != nil {
			return
		}
		defer c.Close()
		if _, err = c.Write([]byte("ping")); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(blockedTimeout))
		buf := make([]byte, 16)
		_, err = c.Read(buf)
	})
	return outcome(err)
}

func outcome(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "open"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "dropped"
	}
	return "error: " + err.Error()
}

// ping sends one ICMP(v6) echo request from src to dst in the client namespace and reports
// "open" when the echo reply comes back.
func (l *lab) ping(src, dst string) string {
	v6 := strings.Contains(dst, ":")
	network, req, rep := "ip4:icmp", byte(8), byte(0)
	if v6 {
		network, req, rep = "ip6:ipv6-icmp", 128, 129 // the kernel checksums ICMPv6
	}
	var err error
	l.client.Do(func() {
		var c net.PacketConn
		if c, err = net.ListenPacket(network, src); err != nil {
			return
		}
		defer c.Close()
		msg := []byte{req, 0, 0, 0, 0x68, 0x66, 0, 1, 'h', 'i'}
		if !v6 {
			sum := icmpChecksum(msg)
			msg[2], msg[3] = byte(sum>>8), byte(sum)
		}
		if _, err = c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(blockedTimeout))
		buf := make([]byte, 1500)
		for {
			var n int
			var from net.Addr
			if n, from, err = c.ReadFrom(buf); err != nil {
				return
			}
			if n >= 8 && buf[0] == rep && from.String() == dst {
				return
			}
		}
	})
	return outcome(err)
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
