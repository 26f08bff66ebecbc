package sqlite_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/migrations"
)

// BenchmarkDashboard runs the dashboard's store calls over 10,000 keys and
// 1,000,000 usage records:
//
//	go test ./adapters/sqlite -run '^$' -bench Dashboard -benchtime 20x
//
// Seeding takes a minute or two, so the seeded file is kept in the system's
// temporary directory, named for the seed's version and the migrations, and
// reused while both stay the same.
func BenchmarkDashboard(b *testing.B) {
	d := storetest.NewDashboard()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("relay-dashboard-v%d-%s.db", storetest.DashboardSeedVersion, migrationsDigest(b)))
	if _, err := os.Stat(path); err != nil {
		seeding := path + ".seeding"
		for _, f := range []string{seeding, seeding + "-wal", seeding + "-shm"} {
			_ = os.Remove(f)
		}
		s := MustOpenAt(b, seeding)
		d.Seed(b, s)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(seeding, path); err != nil {
			b.Fatal(err)
		}
	}
	storetest.BenchDashboard(b, MustOpenAt(b, path), d)
}

// migrationsDigest names the schema the SQLite migrations build.
func migrationsDigest(tb testing.TB) string {
	tb.Helper()
	h := sha256.New()
	err := fs.WalkDir(migrations.SQLite, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.SQLite, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
