//go:build linux

package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// readers reads all clients with one epoll loop per core.
type readers struct {
	epfds []int
	wake  []int
	wg    sync.WaitGroup
}

func startReaders(conns []*client, handle func(*client, []byte)) (*readers, error) {
	r := &readers{}
	byFD := map[int]*client{}
	n := runtime.GOMAXPROCS(0)
	for i := 0; i < n; i++ {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)})
		r.epfds = append(r.epfds, ep)
		r.wake = append(r.wake, wfd)
	}
	for i, c := range conns {
		sc, ok := c.conn.(syscall.Conn)
		if !ok {
			return nil, errors.New("connection without a file descriptor")
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return nil, err
		}
		rc.Control(func(fd uintptr) { c.fd = int(fd) })
		byFD[c.fd] = c
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)}
		if err := unix.EpollCtl(r.epfds[i%n], unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	for i := range r.epfds {
		r.wg.Add(1)
		go func(ep, wfd int) {
			defer r.wg.Done()
			events := make([]unix.EpollEvent, 256)
			for {
				k, err := unix.EpollWait(ep, events, -1)
				if err != nil {
					if errors.Is(err, unix.EINTR) {
						continue
					}
					return
				}
				for _, ev := range events[:k] {
					fd := int(ev.Fd)
					if fd == wfd {
						return
					}
					c := byFD[fd]
					if err := c.readAvailable(handle); err != nil {
						unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
					}
				}
			}
		}(r.epfds[i], r.wake[i])
	}
	return r, nil
}

// readAvailable reads once (level-triggered epoll reports the rest) and
// hands every whole frame to handle.
func (c *client) readAvailable(handle func(*client, []byte)) error {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.buf) {
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
	}
	n, err := unix.Read(c.fd, c.buf[c.w:])
	if err == unix.EAGAIN {
		return nil
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("EOF")
	}
	c.w += n
	for {
		op, p, ok := c.parse()
		if !ok {
			return nil
		}
		if op == 0x1 {
			handle(c, p)
		}
	}
}

func (r *readers) stop() {
	for _, w := range r.wake {
		unix.Write(w, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
	r.wg.Wait()
	for i := range r.epfds {
		unix.Close(r.epfds[i])
		unix.Close(r.wake[i])
	}
}
