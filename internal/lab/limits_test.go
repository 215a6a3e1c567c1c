package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Loopback blocks of the scaling tests and benchmarks.
const (
	octetLimit = 78
	octetBench = 79
)

// TestFileLimitTooLow starts a lab of 1000 nodes in a child process whose
// open file limit is 300. Either the child may raise its hard limit (root
// with CAP_SYS_RESOURCE) and the lab starts with room for every node
// being rebooted at once, or Start refuses before starting anything and
// names the numbers.
func TestFileLimitTooLow(t *testing.T) {
	if os.Getenv("WALT_LAB_LIMIT_CHILD") == "1" {
		fileLimitChild()
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileLimitTooLow$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WALT_LAB_LIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, busy := fileBudget(1000, 21)
	switch s := string(out); {
	case strings.Contains(s, "refused: "):
		for _, want := range []string{"1000 simulated nodes and 21 switches need 1085 open files", "may open 300 (hard limit 300)", "ulimit -Hn"} {
			if !strings.Contains(s, want) {
				t.Errorf("error does not say %q:\n%s", want, s)
			}
		}
	case strings.Contains(s, "started: "):
		if !strings.Contains(s, fmt.Sprintf("limit %d", busy)) {
			t.Errorf("started with a limit other than the busy budget %d:\n%s", busy, s)
		}
	default:
		t.Fatalf("child said neither refused nor started:\n%s", s)
	}
}

func fileLimitChild() {
	low := syscall.Rlimit{Cur: 300, Max: 300}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		fmt.Println("cannot lower the limit:", err)
		os.Exit(1)
	}
	l, err := Start(Config{Nodes: 1000, Octet: octetLimit})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	defer l.Close()
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	fmt.Printf("started: limit %d\n", lim.Cur)
}
