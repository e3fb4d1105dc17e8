//go:build !unix

package recording

func lowerPriority(int) {}
