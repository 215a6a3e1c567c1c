package vocab

// Device names (docs/cli.md, "Names"): 1 to MaxName letters, digits, '.',
// '_' and '-', so that node-set syntax (',', '[', ']', spaces) never
// appears in one. The store accepts any of them but a leading '-'; names
// given through the API (a node's report, walt device add) must also
// start with a letter or a digit, and not be a node-set keyword; a
// virtual node's is at most MaxVNodeName long, to fit a host name.
const (
	MaxName      = 64
	MaxVNodeName = 63
)

// NameByte reports whether c may appear in a device name.
func NameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// NameStart reports whether a name given through the API may start with c.
func NameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// BadNameByte returns the index of the first byte of name that may not
// appear in a device name, or -1.
func BadNameByte(name string) int {
	for i := 0; i < len(name); i++ {
		if !NameByte(name[i]) {
			return i
		}
	}
	return -1
}
