package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const goodKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 ASCII bytes

func TestDefaultsAreTheContractsBootstrap(t *testing.T) {
	c, err := Load(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != "samplit.db" || c.IsPostgres() {
		t.Fatalf("defaults: addr %q db %q", c.Addr, c.DatabaseURL)
	}
}

func TestPrecedenceFlagsOverEnvOverFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "samplit.toml")
	content := "addr = \"127.0.0.1:7000\"\nlog_level = \"debug\"\nrate_limit = 50\nstate_old_keys = [\"" + goodKey + "\"]\nread_timeout = \"3s\"\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantLvl  string
	}{
		{"file only", []string{"--config", file}, nil, "127.0.0.1:7000", "debug"},
		{"env beats file", []string{"--config", file}, map[string]string{"SAMPLIT_ADDR": "127.0.0.1:7001"}, "127.0.0.1:7001", "debug"},
		{"flag beats env", []string{"--config", file, "--addr", "127.0.0.1:7002"}, map[string]string{"SAMPLIT_ADDR": "127.0.0.1:7001"}, "127.0.0.1:7002", "debug"},
		{"file from env", nil, map[string]string{"SAMPLIT_CONFIG": file, "SAMPLIT_LOG_LEVEL": "warn"}, "127.0.0.1:7000", "warn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tt.wantAddr || c.LogLevel != tt.wantLvl {
				t.Fatalf("addr %q level %q, want %q %q", c.Addr, c.LogLevel, tt.wantAddr, tt.wantLvl)
			}
			if c.RateLimit != 50 || len(c.StateOldKeys) != 1 || c.ReadTimeout != 3*time.Second {
				t.Fatalf("file values lost: %+v", c)
			}
		})
	}
}

func TestDatabaseURLFromContractEnv(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"SAMPLIT_DATABASE_URL": "postgres://u@db:5432/x", "SAMPLIT_STATE_KEY": goodKey}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsPostgres() {
		t.Fatalf("db %q not postgres", c.DatabaseURL)
	}
	c, err = Load([]string{"--db", "/tmp/x.db"}, env(map[string]string{"SAMPLIT_DATABASE_URL": "postgres://u@db:5432/x"}), &bytes.Buffer{})
	if err != nil || c.DatabaseURL != "/tmp/x.db" {
		t.Fatalf("flag must beat env: %v %q", err, c.DatabaseURL)
	}
}

func TestBoolFlagWithoutValue(t *testing.T) {
	c, err := Load([]string{"--pg-simple-protocol"}, env(nil), &bytes.Buffer{})
	if err != nil || !c.PGSimpleProtocol {
		t.Fatalf("err %v simple %v", err, c.PGSimpleProtocol)
	}
}

func TestValidationNamesTheSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad port", []string{"--addr", "127.0.0.1:99999"}, nil, "addr (--addr, SAMPLIT_ADDR): port"},
		{"no port", []string{"--addr", "localhost"}, nil, "is not host:port"},
		{"bad url", []string{"--db", "postgres://u@[::1/x"}, map[string]string{"SAMPLIT_STATE_KEY": goodKey}, "db (--db, SAMPLIT_DB): not a valid URL"},
		{"other scheme", []string{"--db", "mysql://root@localhost/x"}, nil, "unsupported database URL"},
		{"short key", []string{"--state-key", "c2hvcnQ="}, nil, "state-key (--state-key, SAMPLIT_STATE_KEY)"},
		{"not base64", []string{"--state-key", "!!!"}, nil, "base64"},
		{"bad duration env", nil, map[string]string{"SAMPLIT_READ_TIMEOUT": "soon"}, "SAMPLIT_READ_TIMEOUT: \"soon\" is not a duration"},
		{"bad number flag", []string{"--rate-limit", "lots"}, nil, "--rate-limit: \"lots\" is not a number"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"missing file", []string{"--config", "/nonexistent/samplit.toml"}, nil, "does not exist"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestUnknownFileSettingIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("adr = \"x\"\n"), 0o600)
	_, err := Load([]string{"--config", file}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `unknown setting "adr"`) {
		t.Fatalf("error %v", err)
	}
}

func TestHelpDocumentsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v, want flag.ErrHelp", err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), "--"+s.name+"\n") || !strings.Contains(out.String(), s.help) {
			t.Errorf("--help does not document %s", s.name)
		}
		if s.name != "db" && !strings.Contains(out.String(), s.env()) {
			t.Errorf("--help does not name %s", s.env())
		}
	}
}

func TestRedactedHidesPassword(t *testing.T) {
	c := Config{DatabaseURL: "postgres://u:secret@h:5432/x"}
	if strings.Contains(c.Redacted(), "secret") {
		t.Fatalf("password shown: %s", c.Redacted())
	}
}

func TestDecideEvery(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "samplit.toml")
	if err := os.WriteFile(file, []byte("decide_every = \"30s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, nil, 10 * time.Second},
		{"file", []string{"--config", file}, nil, 30 * time.Second},
		{"env", []string{"--config", file}, map[string]string{"SAMPLIT_DECIDE_EVERY": "200ms"}, 200 * time.Millisecond},
		{"flag turns it off", []string{"--decide-every", "0"}, map[string]string{"SAMPLIT_DECIDE_EVERY": "200ms"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.DecideEvery != tt.want {
				t.Fatalf("decide-every %v, want %v", c.DecideEvery, tt.want)
			}
		})
	}
	_, err := Load([]string{"--decide-every", "-1s"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SAMPLIT_DECIDE_EVERY") {
		t.Fatalf("negative decide-every: %v", err)
	}
	var help bytes.Buffer
	if _, err := Load([]string{"--help"}, env(nil), &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "--decide-every") {
		t.Fatalf("help does not list --decide-every: %v\n%s", err, help.String())
	}
}

// The operator's guide lists every setting with its environment variable and
// default, so that an operator need not read --help to find one.
func TestOperationsDocumentsEverySetting(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Settings\n")
	if !ok {
		t.Fatal("docs/operations.md has no Settings section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `--") {
			name := strings.TrimPrefix(strings.SplitN(line, "`", 3)[1], "--")
			rows[name] = line
		}
	}
	def := Default()
	for _, s := range settings {
		line, ok := rows[s.name]
		if !ok {
			t.Errorf("docs/operations.md has no row for --%s", s.name)
			continue
		}
		if s.name != "db" && !strings.Contains(line, "`"+s.env()+"`") {
			t.Errorf("the row of --%s does not name %s", s.name, s.env())
		}
		want := "(none)"
		if v := s.get(&def); v != "" {
			want = "`" + v + "`"
		}
		if !strings.Contains(line, "| "+want+" |") {
			t.Errorf("the row of --%s does not give its default %s: %s", s.name, want, line)
		}
	}
}
