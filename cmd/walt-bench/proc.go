package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process (walt-server, walt-lab, walt-node) whose output
// goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startProc starts bin from dir with args, output to dir/<name>.log. The
// process is killed if walt-bench dies first.
func startProc(dir, bin, name string, args ...string) (*proc, error) {
	return startProcEnv(dir, bin, name, nil, args...)
}

// startProcEnv is startProc with env added to this process's environment
// (a token goes there: never in the arguments, which ps shows).
func startProcEnv(dir, bin, name string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// exited returns an error naming the process and its last output lines if
// it has exited, nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.tail(15))
	default:
		return nil
	}
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "  " + strings.Join(lines[max(0, len(lines)-n):], "\n  ")
}

// stop asks the process to stop (SIGTERM), kills it after a grace
// period, and waits for it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// usage is what /proc says of a process: memory, threads, descriptors.
type usage struct {
	RSS, Peak   int64 // VmRSS, VmHWM in bytes
	Threads     int
	Files       int    // open descriptors
	FileLimit   uint64 // soft RLIMIT_NOFILE
	FileLimitOK bool
}

func (p *proc) usage() (usage, error) {
	pid := p.cmd.Process.Pid
	var u usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read the usage of %s: %w", p.name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.RSS = n << 10
		case "VmHWM":
			u.Peak = n << 10
		case "Threads":
			u.Threads = int(n)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return u, fmt.Errorf("count the files of %s: %w", p.name, err)
	}
	u.Files = len(fds)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid)); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					u.FileLimit, err = strconv.ParseUint(f[0], 10, 64)
					u.FileLimitOK = err == nil
				}
			}
		}
	}
	return u, nil
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// 100 on every Linux architecture walt runs on.
const clockTick = 10 * time.Millisecond

// cpu returns the CPU time (user and system, every thread) the process
// has used so far, from /proc/PID/stat.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of %s: %w", p.name, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat line %.80q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat line %.80q", b)
	}
	// f[0] is field 3 (state): utime is f[11], stime f[12].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || ut > 1<<38 || st > 1<<38 { // 87 years each, well within a Duration
		return 0, fmt.Errorf("unexpected /proc stat line %.80q", b)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// mb converts bytes to MB, to the tenth.
func mb(n int64) float64 { return float64(n) / (1 << 20) }

// freePort returns a TCP port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
