//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

type impl struct {
	epfd   int
	wakefd int
	mu     sync.Mutex
	descs  map[int]*Desc
	done   chan struct{}
}

// New starts a poller. Its goroutine runs until Close.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	p := &Poller{impl: impl{epfd: epfd, wakefd: wakefd, descs: map[int]*Desc{}, done: make(chan struct{})}}
	p.initWorkers()
	go p.loop()
	return p, nil
}

const watchEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func (p *Poller) raw(conn net.Conn) rawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func (p *Poller) add(d *Desc) error {
	var fd int
	if err := d.raw.(syscall.RawConn).Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	d.fd = fd
	p.impl.mu.Lock()
	p.descs[fd] = d
	p.impl.mu.Unlock()
	ev := unix.EpollEvent{Events: watchEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.impl.mu.Lock()
		delete(p.descs, fd)
		p.impl.mu.Unlock()
		return fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	return nil
}

func (p *Poller) rearm(d *Desc) error {
	ev := unix.EpollEvent{Events: watchEvents, Fd: int32(d.fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, d.fd, &ev); err != nil {
		return fmt.Errorf("netpoll: epoll_ctl mod: %w", err)
	}
	return nil
}

func (p *Poller) remove(d *Desc) {
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, d.fd, nil)
	p.impl.mu.Lock()
	if p.descs[d.fd] == d {
		delete(p.descs, d.fd)
	}
	p.impl.mu.Unlock()
}

func (p *Poller) stop() error {
	var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
	unix.Write(p.wakefd, one)
	<-p.done
	unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == p.wakefd {
				return
			}
			p.impl.mu.Lock()
			d := p.descs[fd]
			p.impl.mu.Unlock()
			if d != nil {
				p.run(d)
			}
		}
	}
}

func (d *Desc) readRaw(b []byte) (n int, err error) {
	rerr := d.raw.Read(func(fd uintptr) bool {
		for {
			n, err = unix.Read(int(fd), b)
			if err != unix.EINTR {
				return true
			}
		}
	})
	if rerr != nil {
		return 0, rerr
	}
	if err == unix.EAGAIN {
		return 0, ErrWouldBlock
	}
	if err != nil {
		return 0, err
	}
	if n == 0 && len(b) > 0 {
		return 0, errEOF
	}
	return n, nil
}

func (d *Desc) writeRaw(bufs [][]byte) (n int, err error) {
	if len(bufs) > 1024 {
		bufs = bufs[:1024] // IOV_MAX
	}
	werr := d.raw.Write(func(fd uintptr) bool {
		for {
			n, err = unix.Writev(int(fd), bufs)
			if err != unix.EINTR {
				return true
			}
		}
	})
	if werr != nil {
		return 0, werr
	}
	if err == unix.EAGAIN {
		return 0, ErrWouldBlock
	}
	if n < 0 {
		n = 0
	}
	return n, err
}
