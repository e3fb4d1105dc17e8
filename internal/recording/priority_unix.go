//go:build unix

package recording

import "syscall"

// lowerPriority makes a child process as nice as it gets.
func lowerPriority(pid int) { _ = syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19) }
