package smolvm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// CheckKVM checks that /dev/kvm exists and opens read/write, as smolvm
// needs on Linux. It returns nil on other systems. The errors match
// ErrKVMUnavailable and ErrKVMPermission and carry the remedy.
func CheckKVM() error { return checkKVM("/dev/kvm") }

func checkKVM(dev string) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err == nil {
		return f.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist (%s)", ErrKVMUnavailable, dev, remedyKVMMissing)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: cannot open %s read/write (%s)", ErrKVMPermission, dev, remedyKVMPermission)
	}
	return fmt.Errorf("%w: opening %s: %v", ErrKVMUnavailable, dev, err)
}
