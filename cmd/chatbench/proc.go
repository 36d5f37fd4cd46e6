package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Reading a process's CPU time and memory from /proc (Linux).

// readCPUTicks returns utime+stime of pid (0: this process) in clock ticks.
func readCPUTicks(pid int) (int64, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatTicks(data)
}

// parseStatTicks reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses
// and may hold spaces, so fields are counted after its closing one.
func parseStatTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// cpuStat is the machine's CPU time from /proc/stat, in clock ticks.
type cpuStat struct {
	Busy    int64 // user, nice, system, irq, softirq and steal
	SoftIRQ int64 // softirq: on loopback, most of the network stack's work, charged to no process
	Steal   int64 // taken by the hypervisor for other guests
}

// readCPUStat reads the first line of /proc/stat.
func readCPUStat() (cpuStat, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseCPUStat(line)
}

// parseCPUStat reads a "cpu  user nice system idle iowait irq softirq
// steal …" line (guest time is already in user and nice).
func parseCPUStat(line string) (cpuStat, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuStat{}, errors.New("bad /proc/stat")
	}
	var v [9]int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return cpuStat{}, err
		}
		v[i] = n
	}
	return cpuStat{Busy: v[1] + v[2] + v[3] + v[6] + v[7] + v[8], SoftIRQ: v[7], Steal: v[8]}, nil
}

var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100 // Linux's USER_HZ
})

// readRSSKB returns VmRSS of pid in kB, 0 if unknown.
func readRSSKB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// findPidByPort finds the process listening on the TCP port: the socket's
// inode from /proc/net/tcp{,6}, then the process with a descriptor on it.
func findPidByPort(port int) (int, error) {
	inodes := map[string]bool{}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, inode := range listeningInodes(data, port) {
			inodes["socket:["+inode+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d (give -pid)", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process found for port %d (give -pid)", port)
}

// listeningInodes returns the inodes of the listening sockets on port in
// a /proc/net/tcp table ("sl local_address rem_address st … inode").
func listeningInodes(table []byte, port int) []string {
	var out []string
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		out = append(out, f[9])
	}
	return out
}

// raiseFileLimit raises the soft limit on open files to the hard limit.
// Servers the tool starts inherit it.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// fileLimit is the soft limit on open files (0 if unknown).
func fileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(min(lim.Cur, 1<<30))
}

// fileMargin is what a process needs besides its connections: the
// server's database files, listener and REST connections; the tool's
// REST clients and the senders' own connections in pocketbase-realtime
// mode are counted apart.
const fileMargin = 100

// maxConnsForLimit is how many connections one process can hold under an
// open-files limit, the margin left over.
func maxConnsForLimit(limit int) int { return max(0, limit-fileMargin) }

// checkFileLimit refuses a run that needs more open files than the
// limit allows, in the tool or in a server it starts (the same limit).
func checkFileLimit(cfg Config) error {
	limit := fileLimit()
	if limit == 0 {
		return nil
	}
	need := cfg.Conns
	if cfg.Mode == ModeRealtime {
		need += cfg.Senders * cfg.Rooms // one HTTP connection per sender
	}
	if need > maxConnsForLimit(limit) {
		return fmt.Errorf("%d connections need more than the open-files limit %d allows (at most %d with a margin of %d; ulimit -Hn)",
			need, limit, maxConnsForLimit(limit), fileMargin)
	}
	return nil
}

// startCPUProfile writes the tool's CPU profile to path until the
// returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// Machine describes where a run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"model"`
	MemoryMB  int64  `json:"memoryMB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
	// CPU µs per 400-byte frame written and read over loopback TCP, one
	// frame per write and 20 per write (loopbackCost).
	LoopbackFrameUS   float64 `json:"loopbackFrameUs,omitempty"`
	LoopbackBatchedUS float64 `json:"loopbackBatchedUs,omitempty"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.CPUs = n
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemoryMB = kb / 1024
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if single, batched, err := loopbackCost(); err == nil {
		m.LoopbackFrameUS, m.LoopbackBatchedUS = single, batched
	}
	return m
}
