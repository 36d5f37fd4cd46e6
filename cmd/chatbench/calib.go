package main

import (
	"io"
	"net"
	"syscall"
	"time"
)

// loopbackCost measures what the kernel charges for a chat frame over
// loopback TCP on this machine: the CPU time (user + system, this
// process) of writing 400 bytes and reading them back, for frames sent
// one per write and 20 per write, in µs per frame. It explains the
// tool's CPU per delivery and what batching saves the server: on a
// virtual machine it can be several times a bare-metal figure.
func loopbackCost() (single, batched float64, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	const frame, rounds = 400, 5000
	round := func(perWrite int) (float64, error) {
		msg := make([]byte, frame*perWrite)
		buf := make([]byte, len(msg))
		t := processCPU()
		for range rounds {
			if _, err := s.Write(msg); err != nil {
				return 0, err
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return 0, err
			}
		}
		return float64((processCPU() - t).Nanoseconds()) / float64(rounds*perWrite) / 1000, nil
	}
	if single, err = round(1); err != nil {
		return 0, 0, err
	}
	batched, err = round(20)
	return single, batched, err
}

// processCPU is this process's user + system time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
