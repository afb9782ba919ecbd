package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. The
// kernel fixes it at 100 on every architecture Go supports on Linux
// (sysconf(_SC_CLK_TCK)); reading it would need cgo.
const clockTick = 10 * time.Millisecond

// procStat is the part of /proc/<pid>/stat we use, in clock ticks.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// parseStat reads a stat line. The command name (field 2) sits in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed stat line %q", line)
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("short stat line %q", line)
	}
	var s procStat
	var err error
	n := func(field int) int64 {
		v, e := strconv.ParseInt(f[field-3], 10, 64)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	s.ppid = int(n(4))
	s.utime, s.stime, s.cutime, s.cstime = n(14), n(15), n(16), n(17)
	return s, err
}

// processCPU is the CPU time a Go server process has used, all threads.
func processCPU(pid int) (time.Duration, error) {
	s, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(s.utime+s.stime) * clockTick, nil
}

// clusterCPU is the CPU time a PostgreSQL cluster has used: the
// postmaster's own time and that of its children it has reaped
// (cutime+cstime, so backends of connections that closed still count),
// plus the time of the children still alive (backends, checkpointer, WAL
// writer, autovacuum).
func clusterCPU(postmaster int) (time.Duration, error) {
	pm, err := readStat(postmaster)
	if err != nil {
		return 0, err
	}
	ticks := pm.utime + pm.stime + pm.cutime + pm.cstime
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == postmaster {
			continue
		}
		s, err := readStat(pid)
		if err != nil || s.ppid != postmaster {
			continue // gone meanwhile, or not ours
		}
		ticks += s.utime + s.stime
	}
	return time.Duration(ticks) * clockTick, nil
}

// postmasterPID reads the first line of the data directory's postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}
