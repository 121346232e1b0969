//go:build !linux

package netpoll

import "net"

type impl struct{}

// New returns a poller; without epoll every connection gets a goroutine.
func New() (*Poller, error) { return &Poller{}, nil }

func (p *Poller) raw(net.Conn) rawConn { return nil }
func (p *Poller) add(*Desc) error      { return nil }
func (p *Poller) rearm(*Desc) error    { return nil }
func (p *Poller) remove(*Desc)         {}
func (p *Poller) stop() error          { return nil }

func (d *Desc) readRaw([]byte) (int, error)    { return 0, ErrWouldBlock }
func (d *Desc) writeRaw([][]byte) (int, error) { return 0, ErrWouldBlock }
