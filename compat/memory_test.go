package compat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The memory of a mail system for the benchmarks: the master and every
// process below it, read from /proc.

// procMem is one process's resident memory, in KiB.
type procMem struct{ rss, pss int }

// serverMemory returns the memory of root and its descendants, by pid.
func serverMemory(root int) map[int]procMem {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	mem := map[int]procMem{}
	for todo := []int{root}; len(todo) > 0; {
		pid := todo[0]
		todo = append(todo[1:], children[pid]...)
		mem[pid] = readProcMem(pid)
	}
	return mem
}

// readProcMem reads Rss and Pss from /proc/pid/smaps_rollup.
func readProcMem(pid int) procMem {
	var m procMem
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		}
	}
	return m
}

// treeMemory sums Rss and Pss (KiB) over root and its descendants, and
// counts them.
func treeMemory(root int) (rss, pss, procs int) {
	for _, m := range serverMemory(root) {
		rss += m.rss
		pss += m.pss
		procs++
	}
	return rss, pss, procs
}
