//go:build !linux

package ws

import (
	"errors"
	"syscall"
)

// Poller is Linux-only (epoll); elsewhere NewPoller fails and every
// connection gets a reader goroutine.
type Poller struct{}

// NewPoller fails: there is no poller on this system.
func NewPoller() (*Poller, error) { return nil, errors.New("ws: no poller on this system") }

// Close does nothing.
func (p *Poller) Close() error { return nil }

type polled struct{}

func (p *Poller) prepare(*Conn) (*polled, error) {
	return nil, errors.New("ws: no poller on this system")
}
func (r *polled) ctl(int) error { return syscall.EINVAL }

const (
	epollAdd = 1
	epollMod = 3
)

func (r *polled) remove()                  {}
func (r *polled) read([]byte) (int, error) { return 0, syscall.EINVAL }

var errAgain = errors.New("ws: would block")
