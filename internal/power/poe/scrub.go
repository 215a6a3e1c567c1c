package poe

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// gosnmp's decode errors quote the packet they failed on, in hex ("% x" and
// "%x"), and the packet of a v1/v2c reply holds the community. These
// patterns find such dumps; anything that looks like bytes goes.
var (
	spacedHex = regexp.MustCompile(`\b[0-9A-Fa-f]{2}(?: [0-9A-Fa-f]{2}){2,}\b`)
	runHex    = regexp.MustCompile(`\b[0-9A-Fa-f]{6,}\b`)
	byteList  = regexp.MustCompile(`\[\d{1,3}(?: \d{1,3}){2,}\]`)
)

// maxDetail bounds what is kept of a library's error text.
const maxDetail = 160

// scrub returns text, a library's error message, fit for an error the
// operator sees: hex dumps and byte lists removed, the community removed
// in clear and in every encoding gosnmp prints bytes with, and the rest
// cut to maxDetail bytes.
func scrub(text, community string) string {
	text = spacedHex.ReplaceAllString(text, "<bytes>")
	text = runHex.ReplaceAllString(text, "<bytes>")
	text = byteList.ReplaceAllString(text, "<bytes>")
	if community != "" {
		c := []byte(community)
		decimal := strings.Trim(fmt.Sprint(c), "[]")
		for _, form := range []string{
			community, hex.EncodeToString(c), strings.ToUpper(hex.EncodeToString(c)),
			fmt.Sprintf("% x", c), fmt.Sprintf("% X", c), decimal,
		} {
			text = strings.ReplaceAll(text, form, redacted)
		}
	}
	if len(text) > maxDetail {
		text = strings.ToValidUTF8(text[:maxDetail], "") + "..."
	}
	return text
}
