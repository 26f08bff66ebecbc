package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// createDB makes a scratch database relay_bench_<random> on the server at
// -pg and returns its URL; cleanup drops it.
func (h *harness) createDB(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, h.o.pgURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL at -pg unavailable: %w", err)
	}
	defer conn.Close(context.Background())
	name := "relay_bench_" + randomHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	h.pgAdmin, h.pgDB = h.o.pgURL, name
	u, err := url.Parse(h.o.pgURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	h.logf("created database %s", name)
	return u.String(), nil
}

func dropDB(adminURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}
