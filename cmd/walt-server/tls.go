package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/walt-testbed/walt/internal/auth"
)

// tlsOptions are the flags choosing how the API is served.
type tlsOptions struct {
	mode, cert, key string
}

// serverTLS returns the API's TLS configuration, nil for plain HTTP.
// --tls auto (the default) serves TLS unless the listen address is
// loopback; on, always; off, never (logged as a warning elsewhere than on
// loopback: tokens would cross the network in clear). The certificate is
// --tls-cert and --tls-key, else one generated at first start in the data
// directory. name gives a flag's name as the user set it.
func serverTLS(log *slog.Logger, o tlsOptions, name func(string) string, dataDir, listen string) (*tls.Config, error) {
	if o.mode != "auto" && o.mode != "on" && o.mode != "off" {
		return nil, fmt.Errorf("%s %q: want auto, on or off", name("tls"), o.mode)
	}
	if (o.cert == "") != (o.key == "") {
		return nil, fmt.Errorf("%s and %s go together: give both or neither", name("tls-cert"), name("tls-key"))
	}
	loopback := isLoopbackListen(listen)
	switch {
	case o.mode == "off" && o.cert != "":
		return nil, fmt.Errorf("%s off with %s: choose one", name("tls"), name("tls-cert"))
	case o.mode == "off":
		if !loopback {
			log.Warn("serving plain HTTP beyond loopback, as --tls=off asks: tokens cross the network in clear", "listen", listen)
		}
		return nil, nil
	case o.mode == "auto" && loopback && o.cert == "":
		return nil, nil
	}
	var cert tls.Certificate
	var err error
	if o.cert != "" {
		cert, err = auth.LoadCert(o.cert, o.key)
	} else {
		host, _, _ := net.SplitHostPort(listen)
		cert, err = auth.LoadOrCreateCert(dataDir, []string{host}, time.Now())
	}
	if err != nil {
		return nil, err
	}
	file := o.cert
	if file == "" {
		file = filepath.Join(dataDir, auth.CertFile)
	}
	log.Info("TLS certificate", "file", file, "fingerprint", auth.Fingerprint(cert.Certificate[0]))
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// isLoopbackListen reports whether a listen address takes loopback
// connections only (":12345" and "0.0.0.0:12345" take all).
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
