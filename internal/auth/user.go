package auth

import (
	"errors"
	"fmt"
)

// MaxUserName bounds a user name, as Linux bounds login names.
const MaxUserName = 32

// ReservedUser is the name walt itself acts under (the boot watchdog's
// reboots are recorded as requested by "walt"): no account may take it.
const ReservedUser = "walt"

// ErrBadUserName: a text is not a valid user name.
var ErrBadUserName = errors.New("invalid user name")

// CheckUserName is the one rule for account names: 1 to 32 lower-case
// letters, digits, '.', '_' and '-', starting with a letter (login names'
// portable set), and not "walt".
func CheckUserName(name string) error {
	if name == "" || len(name) > MaxUserName {
		return fmt.Errorf("%w: %d characters, want 1 to %d", ErrBadUserName, len(name), MaxUserName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z'
		if i == 0 && !letter {
			return fmt.Errorf("%w '%s': must start with a lower-case letter", ErrBadUserName, name)
		}
		if !letter && !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w '%.32q': character %d not allowed (a-z, 0-9, '.', '_', '-')", ErrBadUserName, name, i+1)
		}
	}
	if name == ReservedUser {
		return fmt.Errorf("%w '%s': reserved for walt's own actions", ErrBadUserName, name)
	}
	return nil
}
