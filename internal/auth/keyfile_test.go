package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKeyFile(t *testing.T) {
	t.Parallel()
	tok := NewToken().Reveal()
	m, err := ParseKeyFile([]byte("# comment\n\nhttp://a:1 " + tok + "\n  https://b:2   sha256/ab  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"http://a:1": tok, "https://b:2": "sha256/ab"}, m); diff != "" {
		t.Errorf("ParseKeyFile (-want +got):\n%s", diff)
	}
	for name, data := range map[string]string{
		"three fields": "a b c\n",
		"one field":    "a\n",
		"duplicate":    "a " + tok + "\na c\n",
		"control":      "a b\x01\n",
		"long value":   "a " + strings.Repeat("x", 300) + "\n",
		"huge":         strings.Repeat("#\n", MaxKeyFile),
	} {
		_, err := ParseKeyFile([]byte(data))
		if !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("ParseKeyFile(%s) = %v, want ErrBadKeyFile", name, err)
		} else if strings.Contains(err.Error(), tok) {
			t.Errorf("ParseKeyFile(%s) error shows the token: %v", name, err)
		}
	}
}
