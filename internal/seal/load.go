package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The names of the settings, used in error messages so that an operator knows
// which one to fix. internal/config defines the settings themselves.
const (
	SettingKey     = "SAMPLIT_STATE_KEY"
	SettingKeyFile = "--state-key-file"
	SettingOldKeys = "SAMPLIT_STATE_OLD_KEYS"
)

// The database kinds KeyConfig.Database accepts.
const (
	DatabaseSQLite   = "sqlite"
	DatabasePostgres = "postgres"
)

// GeneratedKeySuffix is appended to the SQLite file's path to name the key
// file generated when no key is configured ("samplit.db" →
// "samplit.db.state.key").
const GeneratedKeySuffix = ".state.key"

// maxKeyFileSize bounds how much of a key file is read: a key file holds
// 44 characters of base64, so anything much larger is the wrong file.
const maxKeyFileSize = 4096

// KeyConfig is everything that decides the state keyring, passed explicitly
// by the caller (internal/config), so that this package reads no environment
// and tests need none.
type KeyConfig struct {
	// Key is the primary key, base64 of 32 bytes (SAMPLIT_STATE_KEY).
	Key string
	// KeyFile is the path of a file holding the primary key in base64
	// (--state-key-file). Set at most one of Key and KeyFile.
	KeyFile string
	// OldKeys are keys kept for reading only, base64 each
	// (SAMPLIT_STATE_OLD_KEYS split on commas; blank entries are ignored and
	// spaces trimmed, so strings.Split of the raw value can be passed as is).
	OldKeys []string
	// OldKeyFiles are files holding old keys, one base64 key per file.
	OldKeyFiles []string
	// Database is DatabaseSQLite or DatabasePostgres.
	Database string
	// SQLitePath is the SQLite database file (a plain path, or a "file:" URI
	// whose query is ignored). With SQLite and no key configured, the
	// generated key is kept at SQLitePath+GeneratedKeySuffix; for an
	// in-memory database the generated key is not written anywhere.
	SQLitePath string
}

// Loaded is the result of LoadKeyring.
type Loaded struct {
	Ring *Keyring
	// Source says where the primary key came from, for the start-up log
	// (never the key itself): "SAMPLIT_STATE_KEY", "file /etc/samplit/key",
	// "generated file /var/lib/samplit/samplit.db.state.key" or "generated,
	// in memory only".
	Source string
	// Generated is true when no key was configured and the primary key is
	// one Samplit generated beside the SQLite file (or in memory). The caller
	// must log a warning: the key sits next to the data it protects, so a
	// copy of that directory reveals the optimizer state; set
	// SAMPLIT_STATE_KEY or --state-key-file to protect it. Warnings holds
	// a ready-made message.
	Generated bool
	// Created is true when the generated key file was written by this call
	// (the first start); false when an existing one was reused, and for an
	// in-memory database, where no file is written.
	Created bool
	// Warnings are messages the caller should log at warning level: the
	// generated key, key files readable by other users, a generated key kept
	// for reading beside a configured one.
	Warnings []string
}

// LoadKeyring builds the state keyring from the configuration.
//
//   - A configured key (Key or KeyFile) is the primary; OldKeys and
//     OldKeyFiles are added for reading. With SQLite, a previously generated
//     key file beside the database is also added for reading (with a warning
//     to rotate and delete it), so that configuring a key after running on
//     the generated one does not make existing state unreadable.
//   - With SQLite and nothing configured, a key is generated and written to
//     SQLitePath+".state.key" with mode 0600, or reused if that file exists;
//     Generated is set so the caller warns.
//   - With PostgreSQL and nothing configured, it fails: replicas share the
//     database but not a file system, so there is nowhere safe to generate a
//     key that all of them would find.
//
// Key files readable by group or others produce a warning, not an error:
// Kubernetes secret volumes are 0644 and Docker secrets 0444 by default, and
// refusing them would push operators to less careful workarounds, whereas a
// warning names the problem where it can be fixed.
func LoadKeyring(cfg KeyConfig) (Loaded, error) {
	var out Loaded
	switch cfg.Database {
	case DatabaseSQLite, DatabasePostgres:
	default:
		return out, fmt.Errorf("state key: unknown database kind %q (want %q or %q)", cfg.Database, DatabaseSQLite, DatabasePostgres)
	}
	cfg.Key = strings.TrimSpace(cfg.Key)
	cfg.KeyFile = strings.TrimSpace(cfg.KeyFile)
	if cfg.Key != "" && cfg.KeyFile != "" {
		return out, fmt.Errorf("state key: set %s or %s, not both", SettingKey, SettingKeyFile)
	}

	var old []Key
	for i, s := range cfg.OldKeys {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		k, err := ParseKey(s)
		if err != nil {
			return out, fmt.Errorf("%s, entry %d: %w", SettingOldKeys, i+1, err)
		}
		old = append(old, k)
	}
	for _, path := range cfg.OldKeyFiles {
		if strings.TrimSpace(path) == "" {
			continue
		}
		k, warn, err := readKeyFile(path)
		if err != nil {
			return out, fmt.Errorf("old state key file: %w", err)
		}
		out.Warnings = appendNonEmpty(out.Warnings, warn)
		old = append(old, k)
	}

	var primary Key
	switch {
	case cfg.Key != "":
		k, err := ParseKey(cfg.Key)
		if err != nil {
			return out, fmt.Errorf("%s: %w", SettingKey, err)
		}
		primary, out.Source = k, SettingKey
	case cfg.KeyFile != "":
		k, warn, err := readKeyFile(cfg.KeyFile)
		if err != nil {
			return out, fmt.Errorf("%s: %w", SettingKeyFile, err)
		}
		out.Warnings = appendNonEmpty(out.Warnings, warn)
		primary, out.Source = k, "file "+cfg.KeyFile
	case cfg.Database == DatabasePostgres:
		return out, fmt.Errorf("a state key is required with PostgreSQL: set %s or %s", SettingKey, SettingKeyFile)
	case len(old) > 0:
		// Old keys without a primary is a half-done rotation; generating a
		// fresh primary here would silently start sealing under a key the
		// operator never chose.
		return out, fmt.Errorf("state key: %s is set but no primary key: set %s or %s to the new key", SettingOldKeys, SettingKey, SettingKeyFile)
	default:
		k, path, created, warn, err := generatedKey(cfg.SQLitePath)
		if err != nil {
			return out, err
		}
		primary, out.Generated, out.Created = k, true, created
		out.Warnings = appendNonEmpty(out.Warnings, warn)
		if path == "" {
			out.Source = "generated, in memory only"
			out.Warnings = append(out.Warnings,
				"no state key configured: using a random key for this in-memory database; it is lost at exit")
		} else {
			out.Source = "generated file " + path
			out.Warnings = append(out.Warnings, fmt.Sprintf(
				"no state key configured: optimizer state is sealed with the key generated in %s, next to the database; "+
					"anyone with a copy of that directory can read it. Set %s or %s to keep the key elsewhere", path, SettingKey, SettingKeyFile))
		}
	}

	// A key generated on an earlier start stays readable after the operator
	// configures one, until `samplit state rotate-key` has re-sealed the rows.
	if !out.Generated && cfg.Database == DatabaseSQLite {
		if path, ok := generatedKeyPath(cfg.SQLitePath); ok && path != "" {
			k, warn, err := readKeyFile(path)
			switch {
			case err == nil:
				if k.ID() != primary.ID() {
					old = append(old, k)
					out.Warnings = append(out.Warnings, fmt.Sprintf(
						"the generated state key %s (id %s) is still used for reading; run `samplit state rotate-key`, then delete it", path, k.ID()))
				}
				out.Warnings = appendNonEmpty(out.Warnings, warn)
			case !errors.Is(err, fs.ErrNotExist):
				// The configured key is enough to run; only state sealed
				// under the generated key is affected, and Open will say so.
				out.Warnings = append(out.Warnings, fmt.Sprintf(
					"the generated state key beside the database cannot be used for reading old state: %v", err))
			}
		}
	}

	ring, err := NewKeyring(primary, old...)
	if err != nil {
		return out, err
	}
	out.Ring = ring
	return out, nil
}

// ParseKey decodes a base64 key of exactly 32 bytes. Standard and URL-safe
// alphabets are accepted, padded or not, because `openssl rand -base64 32`,
// `base64` and various secret managers differ; the error never repeats the
// value, which may be a real key with a typo.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("the key is empty")
	}
	var material []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if material, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return Key{}, errors.New("the key is not valid base64 (generate one with `openssl rand -base64 32`)")
	}
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("the key decodes to %d bytes, it must be %d (generate one with `openssl rand -base64 32`)", len(material), KeySize)
	}
	return NewKey(material)
}

// EncodeKey returns the base64 form of the key material that ParseKey reads,
// for the CLI that generates keys.
func EncodeKey(material []byte) string { return base64.StdEncoding.EncodeToString(material) }

// readKeyFile reads and parses a key file. It returns a warning when the file
// is readable by group or others.
func readKeyFile(path string) (k Key, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Key{}, "", err
	}
	if !info.Mode().IsRegular() {
		return Key{}, "", fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return Key{}, "", err
	}
	if len(data) > maxKeyFileSize {
		return Key{}, "", fmt.Errorf("%s is larger than %d bytes; a key file holds one base64 key", path, maxKeyFileSize)
	}
	k, err = ParseKey(string(data))
	if err != nil {
		return Key{}, "", fmt.Errorf("%s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		warning = fmt.Sprintf("state key file %s has mode %#o: other users may read it; chmod 600 it", path, perm)
	}
	return k, warning, nil
}

// generatedKeyPath returns where the generated key for the SQLite database
// lives: "" with ok for an in-memory database, and ok false when the path is
// missing.
func generatedKeyPath(sqlitePath string) (path string, ok bool) {
	p := strings.TrimSpace(sqlitePath)
	if p == "" {
		return "", false
	}
	if rest, isURI := strings.CutPrefix(p, "file:"); isURI {
		p, query, _ := strings.Cut(rest, "?")
		if p == ":memory:" || p == "" || strings.Contains(query, "mode=memory") {
			return "", true
		}
		return p + GeneratedKeySuffix, true
	}
	if p == ":memory:" {
		return "", true
	}
	return p + GeneratedKeySuffix, true
}

// generatedKey returns the key generated for the SQLite database, creating
// its file on the first start. The file is published with a hard link from a
// complete temporary file, so that two processes starting together (serve and
// migrate, say) agree on one key and neither can read a half-written file.
func generatedKey(sqlitePath string) (k Key, path string, created bool, warning string, err error) {
	path, ok := generatedKeyPath(sqlitePath)
	if !ok {
		return Key{}, "", false, "", errors.New("state key: no key configured and no SQLite path to keep a generated key beside")
	}
	if path != "" {
		k, warning, err = readKeyFile(path)
		if err == nil {
			return k, path, false, warning, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Key{}, "", false, "", fmt.Errorf("generated state key: %w", err)
		}
	}
	material := make([]byte, KeySize)
	if _, err := rand.Read(material); err != nil {
		return Key{}, "", false, "", fmt.Errorf("generate state key: %w", err)
	}
	if path == "" { // in-memory database: the state dies with the process, so may the key
		k, err := NewKey(material)
		return k, "", false, "", err
	}

	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err != nil {
		return Key{}, "", false, "", fmt.Errorf("generated state key: directory of the SQLite database: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".samplit-state-key-*") // mode 0600
	if err != nil {
		return Key{}, "", false, "", fmt.Errorf("generated state key: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := func() error {
		if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
			return err
		}
		if _, err := tmp.WriteString(EncodeKey(material) + "\n"); err != nil {
			return err
		}
		return tmp.Sync()
	}()
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Key{}, "", false, "", fmt.Errorf("generated state key: write %s: %w", tmp.Name(), werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its key
			k, warning, err = readKeyFile(path)
			if err != nil {
				return Key{}, "", false, "", fmt.Errorf("generated state key: %w", err)
			}
			return k, path, false, warning, nil
		}
		return Key{}, "", false, "", fmt.Errorf("generated state key: create %s: %w", path, err)
	}
	syncDir(dir)
	k, err = NewKey(material)
	return k, path, true, "", err
}

// syncDir makes the new directory entry durable before any state is sealed
// with the key, so that a power loss cannot keep sealed rows and lose their
// key. It is best effort: some platforms cannot sync a directory at all.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func appendNonEmpty(list []string, s string) []string {
	if s == "" {
		return list
	}
	return append(list, s)
}
