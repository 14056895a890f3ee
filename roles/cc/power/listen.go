package power

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
)

// WakePort is where Wake-on-LAN magic packets go (UDP, the discard port).
const WakePort = 9

// IsMagicPacket reports whether b holds mac's magic packet (anywhere in
// it, as a network card looks for it in any frame).
func IsMagicPacket(b []byte, mac net.HardwareAddr) bool {
	want, err := MagicPacket(mac)
	return err == nil && bytes.Contains(b, want)
}

// ServeWake is the receiving end of Wake-on-LAN for a host that sleeps in
// software (the sim driver's): it reads datagrams from pc until ctx ends
// and calls wake for each magic packet addressed to one of macs, as a
// sleeping host's network card would power it on. It returns nil once ctx
// ends.
func ServeWake(ctx context.Context, pc net.PacketConn, macs []net.HardwareAddr, wake func() error, log *slog.Logger) error {
	go func() { <-ctx.Done(); pc.Close() }()
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		for _, mac := range macs {
			if IsMagicPacket(buf[:n], mac) {
				if err := wake(); err != nil {
					log.Warn("power: wake on LAN failed", "mac", mac.String(), "from", from.String(), "err", err)
				} else {
					log.Info("power: woken on LAN", "mac", mac.String(), "from", from.String())
				}
				break
			}
		}
	}
}

// HostMACs are the addresses of this host's Ethernet interfaces: the ones
// a magic packet may name.
func HostMACs() ([]net.HardwareAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.HardwareAddr
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 && i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.HardwareAddr)
		}
	}
	return out, nil
}
