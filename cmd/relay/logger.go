package main

import (
	"io"
	"log/slog"

	"github.com/relaystation/relay/config"
)

func newLogger(cfg config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func loadConfig(e env) (config.Config, string, error) {
	return config.Load(config.Source{Environ: e.environ})
}
