package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	conffile "github.com/walt-testbed/walt/internal/config"
)

// userConfig is the user's configuration file, <config dir>/walt/config
// (TOML): the server's URL and the user name, below --server and
// WALT_SERVER, WALT_USER. Credentials join them with authentication.
type userConfig struct {
	path         string
	server, user string
}

// userConfigPath is $XDG_CONFIG_HOME/walt/config, else
// $HOME/.config/walt/config (as os.UserConfigDir on Linux, but read
// through getenv); "" without either.
func userConfigPath(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(dir) {
		dir = ""
		if home := getenv("HOME"); filepath.IsAbs(home) {
			dir = filepath.Join(home, ".config")
		}
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "walt", "config")
}

// loadUserConfig reads the user's configuration file if there is one,
// warning on stderr when others may read it: it is to hold credentials.
func loadUserConfig(getenv func(string) string, stderr io.Writer) (userConfig, error) {
	c := userConfig{path: userConfigPath(getenv)}
	if c.path == "" {
		return c, nil
	}
	known := func(k string) bool { return k == "server" || k == "user" }
	settings, err := conffile.Read(c.path, false, known)
	if err != nil || settings == nil {
		return c, err
	}
	if fi, err := os.Stat(c.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "Warning: %s can be read by other users (mode %04o); it is meant for credentials: chmod 600 %s\n",
			c.path, fi.Mode().Perm(), c.path)
	}
	c.server, c.user = settings["server"].Value, settings["user"].Value
	return c, nil
}
