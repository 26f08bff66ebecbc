package main

import (
	"io"
	"log/slog"

	"github.com/relaystation/relay/config"
)

// newLogger builds the logger, and the writer the proxy writes its
// per-request JSON lines to itself (nil for the text format, whose lines
// go through the logger). w must take each Write whole, as logSink does.
func newLogger(cfg config.LogConfig, w io.Writer) (*slog.Logger, io.Writer) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), w
}

func loadConfig(e env) (config.Config, string, error) {
	return config.Load(config.Source{Environ: e.environ})
}
