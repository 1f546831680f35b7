package seal

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func b64(b byte, n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n)) }

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return p
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	goodFile := writeFile(t, dir, "key", b64(1, 32)+"\n", 0o600)
	openFile := writeFile(t, dir, "open.key", b64(1, 32), 0o644)
	oldFile := writeFile(t, dir, "old.key", b64(3, 32), 0o600)
	shortFile := writeFile(t, dir, "short.key", b64(1, 16), 0o600)
	id := func(b byte) string { return testKey(t, b).ID() }

	tests := []struct {
		name       string
		cfg        KeyConfig
		wantErr    string // substring; "" means success
		wantIDs    []string
		wantSource string
		wantWarn   string // substring of some warning; "" means no warnings
	}{
		{
			name:       "key from the environment",
			cfg:        KeyConfig{Key: b64(1, 32), Database: DatabasePostgres},
			wantIDs:    []string{id(1)},
			wantSource: SettingKey,
		},
		{
			name:    "unpadded and URL-safe base64 are accepted",
			cfg:     KeyConfig{Key: strings.TrimRight(base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "="), Database: DatabasePostgres},
			wantIDs: []string{id(0xfb)},
		},
		{
			name:    "old keys for reading, blanks and spaces ignored, duplicates kept once",
			cfg:     KeyConfig{Key: b64(1, 32), OldKeys: []string{" " + b64(2, 32), "", b64(2, 32), b64(1, 32)}, OldKeyFiles: []string{oldFile}, Database: DatabasePostgres},
			wantIDs: []string{id(1), id(2), id(3)},
		},
		{
			name:       "key file",
			cfg:        KeyConfig{KeyFile: goodFile, Database: DatabasePostgres},
			wantIDs:    []string{id(1)},
			wantSource: "file " + goodFile,
		},
		{
			name:     "key file readable by others is used, with a warning",
			cfg:      KeyConfig{KeyFile: openFile, Database: DatabasePostgres},
			wantIDs:  []string{id(1)},
			wantWarn: "chmod 600",
		},
		{
			name:    "bad base64 names the setting",
			cfg:     KeyConfig{Key: "not base64!!", Database: DatabasePostgres},
			wantErr: "SAMPLIT_STATE_KEY: the key is not valid base64",
		},
		{
			name:    "short key names the setting and the size",
			cfg:     KeyConfig{Key: b64(1, 16), Database: DatabasePostgres},
			wantErr: "SAMPLIT_STATE_KEY: the key decodes to 16 bytes, it must be 32",
		},
		{
			name:    "long key",
			cfg:     KeyConfig{Key: b64(1, 33), Database: DatabaseSQLite, SQLitePath: filepath.Join(dir, "x.db")},
			wantErr: "decodes to 33 bytes",
		},
		{
			name:    "short key in a file names the setting and the file",
			cfg:     KeyConfig{KeyFile: shortFile, Database: DatabasePostgres},
			wantErr: SettingKeyFile + ": " + shortFile + ": the key decodes to 16 bytes",
		},
		{
			name:    "missing key file",
			cfg:     KeyConfig{KeyFile: filepath.Join(dir, "nope"), Database: DatabasePostgres},
			wantErr: SettingKeyFile + ": open",
		},
		{
			name:    "bad old key names the setting and the entry",
			cfg:     KeyConfig{Key: b64(1, 32), OldKeys: []string{b64(2, 32), "zz"}, Database: DatabasePostgres},
			wantErr: "SAMPLIT_STATE_OLD_KEYS, entry 2",
		},
		{
			name:    "both key and key file",
			cfg:     KeyConfig{Key: b64(1, 32), KeyFile: goodFile, Database: DatabasePostgres},
			wantErr: "not both",
		},
		{
			name:    "PostgreSQL without a key",
			cfg:     KeyConfig{Database: DatabasePostgres},
			wantErr: "a state key is required with PostgreSQL: set SAMPLIT_STATE_KEY or --state-key-file",
		},
		{
			name:    "old keys without a primary",
			cfg:     KeyConfig{OldKeys: []string{b64(2, 32)}, Database: DatabaseSQLite, SQLitePath: filepath.Join(dir, "y.db")},
			wantErr: "no primary key",
		},
		{
			name:    "SQLite without a key or a path",
			cfg:     KeyConfig{Database: DatabaseSQLite},
			wantErr: "no SQLite path",
		},
		{
			name:    "unknown database",
			cfg:     KeyConfig{Key: b64(1, 32), Database: "mysql"},
			wantErr: "unknown database kind",
		},
		{
			name:    "directory of the database missing",
			cfg:     KeyConfig{Database: DatabaseSQLite, SQLitePath: filepath.Join(dir, "missing", "samplit.db")},
			wantErr: "directory of the SQLite database",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadKeyring(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), b64(1, 32)) || strings.Contains(err.Error(), b64(1, 16)) {
					t.Errorf("error repeats the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ids := strings.Join(got.Ring.IDs(), ","); ids != strings.Join(tt.wantIDs, ",") {
				t.Errorf("key ids = %s, want %s", ids, strings.Join(tt.wantIDs, ","))
			}
			if tt.wantSource != "" && got.Source != tt.wantSource {
				t.Errorf("source = %q, want %q", got.Source, tt.wantSource)
			}
			if got.Generated || got.Created {
				t.Errorf("Generated, Created = %v, %v for a configured key", got.Generated, got.Created)
			}
			warnings := strings.Join(got.Warnings, "\n")
			if tt.wantWarn == "" && warnings != "" || !strings.Contains(warnings, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", warnings, tt.wantWarn)
			}
		})
	}
}

func TestGeneratedKeyIsWrittenPrivatelyAndReused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "samplit.db")
	cfg := KeyConfig{Database: DatabaseSQLite, SQLitePath: db}

	first, err := LoadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Generated || !first.Created {
		t.Errorf("first start: Generated, Created = %v, %v, want true, true", first.Generated, first.Created)
	}
	if len(first.Warnings) != 1 || !strings.Contains(first.Warnings[0], "SAMPLIT_STATE_KEY") {
		t.Errorf("warnings = %q, want one telling to set SAMPLIT_STATE_KEY", first.Warnings)
	}
	path := db + GeneratedKeySuffix
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("generated key file mode = %#o, want 0600", info.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".samplit-state-key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	data, _ := os.ReadFile(path)
	if k, err := ParseKey(string(data)); err != nil || k.ID() != first.Ring.PrimaryID() {
		t.Errorf("file holds key %v (%v), want the primary %s", k, err, first.Ring.PrimaryID())
	}

	second, err := LoadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Generated || second.Created {
		t.Errorf("second start: Generated, Created = %v, %v, want true, false", second.Generated, second.Created)
	}
	if second.Ring.PrimaryID() != first.Ring.PrimaryID() {
		t.Fatalf("second start uses key %s, want the generated %s", second.Ring.PrimaryID(), first.Ring.PrimaryID())
	}
	_, blob, _ := first.Ring.Seal("exp_1", []byte("kept"))
	if got, err := second.Ring.Open("exp_1", first.Ring.PrimaryID(), blob); err != nil || string(got) != "kept" {
		t.Fatalf("state sealed on the first start = %q, %v", got, err)
	}

	// Configuring a key later keeps the generated one for reading, so
	// existing state stays readable until rotate-key has run.
	cfg.Key = b64(9, 32)
	third, err := LoadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if third.Generated || third.Ring.PrimaryID() != testKey(t, 9).ID() {
		t.Errorf("configured key not primary: %v", third.Ring)
	}
	if got, err := third.Ring.Open("exp_1", first.Ring.PrimaryID(), blob); err != nil || string(got) != "kept" {
		t.Errorf("state sealed with the generated key after configuring one = %q, %v", got, err)
	}
	if w := strings.Join(third.Warnings, "\n"); !strings.Contains(w, "rotate-key") {
		t.Errorf("warnings = %q, want advice to rotate", w)
	}
}

// TestGeneratedKeyConcurrentStarts checks that processes starting together
// agree on one key.
func TestGeneratedKeyConcurrentStarts(t *testing.T) {
	db := filepath.Join(t.TempDir(), "samplit.db")
	const n = 8
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := LoadKeyring(KeyConfig{Database: DatabaseSQLite, SQLitePath: db})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = got.Ring.PrimaryID(), got.Created
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("starts disagree on the key: %v", ids)
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d starts created the key file, want 1", creators)
	}
}

func TestGeneratedKeyFileWithWideModeWarns(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "samplit.db")
	writeFile(t, dir, "samplit.db"+GeneratedKeySuffix, b64(4, 32), 0o640)
	got, err := LoadKeyring(KeyConfig{Database: DatabaseSQLite, SQLitePath: db})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ring.PrimaryID() != testKey(t, 4).ID() {
		t.Errorf("did not reuse the existing file")
	}
	if w := strings.Join(got.Warnings, "\n"); !strings.Contains(w, "0640") {
		t.Errorf("warnings = %q, want the file's mode named", w)
	}
}

func TestGeneratedKeyFileDamagedIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "samplit.db"+GeneratedKeySuffix, "garbage", 0o600)
	_, err := LoadKeyring(KeyConfig{Database: DatabaseSQLite, SQLitePath: filepath.Join(dir, "samplit.db")})
	if err == nil || !strings.Contains(err.Error(), "generated state key: "+filepath.Join(dir, "samplit.db"+GeneratedKeySuffix)) {
		t.Fatalf("error = %v, want the damaged key file reported (never silently replaced)", err)
	}
}

func TestGeneratedKeyPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain path", "/var/lib/samplit/samplit.db", "/var/lib/samplit/samplit.db.state.key", true},
		{"file URI with query", "file:/data/s.db?_pragma=busy_timeout(5000)", "/data/s.db.state.key", true},
		{"memory", ":memory:", "", true},
		{"memory URI", "file::memory:?cache=shared", "", true},
		{"memory mode", "file:x?mode=memory", "", true},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := generatedKeyPath(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("generatedKeyPath(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInMemoryDatabaseGetsEphemeralKey(t *testing.T) {
	got, err := LoadKeyring(KeyConfig{Database: DatabaseSQLite, SQLitePath: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Generated || got.Source != "generated, in memory only" || len(got.Warnings) == 0 {
		t.Errorf("got %+v, want a generated in-memory key with a warning", got)
	}
}

func TestDamagedGeneratedKeyBesideConfiguredKeyWarns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "samplit.db"+GeneratedKeySuffix, "garbage", 0o600)
	got, err := LoadKeyring(KeyConfig{Key: b64(1, 32), Database: DatabaseSQLite, SQLitePath: filepath.Join(dir, "samplit.db")})
	if err != nil {
		t.Fatal(err)
	}
	if ids := got.Ring.IDs(); len(ids) != 1 {
		t.Errorf("key ids = %v, want only the configured key", ids)
	}
	if w := strings.Join(got.Warnings, "\n"); !strings.Contains(w, "cannot be used for reading") {
		t.Errorf("warnings = %q, want the damaged generated key named", w)
	}
}
