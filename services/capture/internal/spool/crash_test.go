package spool

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// TestSIGKILL: a process appending as fast as it can is SIGKILLed; every
// record Append had returned for is there after reopening, in order, and
// a write the kill cut short is cut off.
func TestSIGKILL(t *testing.T) {
	if dir := os.Getenv("SPOOL_CRASH_DIR"); dir != "" {
		s, _, err := Open(dir, 1<<20)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		for i := 0; ; i++ {
			if _, err := s.Append(payload(i)); err != nil {
				fmt.Println("append:", err)
				os.Exit(2)
			}
			fmt.Println(i)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILL$")
	cmd.Env = append(os.Environ(), "SPOOL_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		acked = n
		if acked == 300 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	_ = cmd.Wait()
	s, rec := mustOpen(t, dir, 1<<20)
	if rec.Records < acked+1 {
		t.Fatalf("%d records after the kill, %d acknowledged", rec.Records, acked+1)
	}
	expect(t, s, 0, rec.Records)
	t.Logf("killed after %d acknowledged appends: %d records recovered, %d torn bytes cut", acked+1, rec.Records, rec.TornBytes)
}
