package pgtest

import (
	"context"
	"errors"
	"flag"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// scratch lists the databases Scratch made; Run drops them at the end.
var scratch struct {
	mu    sync.Mutex
	names []string
}

// Scratch creates a fresh, empty database for code that gets no
// testing.TB (Example functions) and returns its URL. Run drops it when
// the package's run ends. Without a server it fails; Run skips a
// package's examples then, as its tests skip.
func Scratch() (string, error) {
	if adminURL == "" {
		return "", errors.New("pgtest: no PostgreSQL: " + skipWhy)
	}
	name := randomName("example_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", err
	}
	scratch.mu.Lock()
	scratch.names = append(scratch.names, name)
	scratch.mu.Unlock()
	return WithDatabase(adminURL, name), nil
}

// dropScratch drops every database Scratch made. Errors are ignored: the
// server may be gone already, and a throwaway one takes them with it.
func dropScratch() {
	scratch.mu.Lock()
	defer scratch.mu.Unlock()
	if adminURL == "" || len(scratch.names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, n := range scratch.names {
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`)
	}
	scratch.names = nil
}

// skipExamples keeps the run's Example functions from running: they need
// the database, and print nothing they promise without one.
func skipExamples() {
	skip := "^Example"
	if f := flag.Lookup("test.skip"); f != nil {
		if v := f.Value.String(); v != "" {
			skip = v + "|" + skip
		}
		_ = f.Value.Set(skip)
	}
}
