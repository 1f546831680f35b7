package e2e

import (
	"debug/elf"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/samplit/samplit/internal/config"
)

// repoRoot is the module's root, two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestStaticBinaryRunsFromAnEmptyRoot builds the binary as the Dockerfile
// does (CGO off), checks that it links nothing dynamically, and runs it in a
// chroot holding only itself — no libc, no /etc, no certificates, no time
// zones, as in a scratch or distroless image: `version` answers, `serve`
// starts on the SQLite default under /data, answers /readyz, and the
// container's `healthcheck` says ready. It talks only to 127.0.0.1.
func TestStaticBinaryRunsFromAnEmptyRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("chroot and ELF checks are Linux's")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; chroot needs it")
		}
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "samplit")
	// As the Dockerfile builds it, less -trimpath and -ldflags, which only
	// make it smaller and would miss the build cache the tests filled.
	build := exec.Command("go", "build", "-o", bin, "github.com/samplit/samplit/cmd/samplit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names a dynamic loader (PT_INTERP): not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	f.Close()
	if err := os.Mkdir(filepath.Join(root, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	inRoot := func(args ...string) *exec.Cmd {
		c := exec.Command("/samplit", args...)
		c.Dir = "/"
		c.Env = []string{"SAMPLIT_BOOTSTRAP_KEY=" + adminKey}
		c.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		return c
	}
	out, err := inRoot("version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "samplit ") {
		t.Fatalf("version in an empty root: %v %q", err, out)
	}

	// A free loopback port for serve (and the healthcheck that follows it).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := inRoot("serve", "--addr", addr, "--db", "/data/samplit.db", "--log-format", "json")
	var log strings.Builder
	srv.Stderr = &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve in an empty root never became ready:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(root, "data", "samplit.db")); err != nil {
		t.Errorf("no database under /data: %v", err)
	}
	hc := inRoot("healthcheck", "--addr", strings.Replace(addr, "127.0.0.1", "0.0.0.0", 1))
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("healthcheck in the empty root: %v %s", err, out)
	}
}

// TestDeploymentFilesAreWired reads the Dockerfile and docker-compose.yml (no
// image can be pulled here, so they are checked, not run): a static build
// on a non-root distroless base with the /data volume and a healthcheck the
// binary itself answers; compose's PostgreSQL with a healthcheck the
// server waits for, a database URL that names that service, user and
// database, the state key from a secret, and settings the server knows.
func TestDeploymentFilesAreWired(t *testing.T) {
	root := repoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(df)
	for _, want := range []string{
		"CGO_ENABLED=0 go build", "FROM gcr.io/distroless/static", "USER 65532:65532", "VOLUME /data",
		`HEALTHCHECK`, `CMD ["/samplit", "healthcheck"]`, "SAMPLIT_DATABASE_URL=/data/samplit.db",
		"SAMPLIT_ADDR=0.0.0.0:8080", "EXPOSE 8080", `ENTRYPOINT ["/samplit"]`, `CMD ["serve"]`,
		"--chown=65532:65532 /out/data /data",
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       string            `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Secrets     []string          `yaml:"secrets"`
			Ports       []string          `yaml:"ports"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	pg, ok := compose.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") || len(pg.Healthcheck.Test) == 0 {
		t.Fatalf("no postgres service with a healthcheck: %+v", pg)
	}
	app, ok := compose.Services["samplit"]
	if !ok || app.Build != "." {
		t.Fatalf("no samplit service built from the Dockerfile: %+v", app)
	}
	if app.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("samplit does not wait for a healthy postgres: %+v", app.DependsOn)
	}
	if strings.Join(app.Healthcheck.Test, " ") != "CMD /samplit healthcheck" {
		t.Errorf("samplit's healthcheck is %v", app.Healthcheck.Test)
	}
	// The database URL names the postgres service, its user and database.
	env := map[string]string{}
	for k, v := range app.Environment {
		env[k] = strings.ReplaceAll(v, "${SAMPLIT_PG_PASSWORD:?set SAMPLIT_PG_PASSWORD to the content of secrets/pg_password}", "pw")
	}
	u, err := url.Parse(env["SAMPLIT_DATABASE_URL"])
	if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" || u.User.Username() != pg.Environment["POSTGRES_USER"] ||
		strings.TrimPrefix(u.Path, "/") != pg.Environment["POSTGRES_DB"] {
		t.Errorf("database URL %q does not match the postgres service %v", env["SAMPLIT_DATABASE_URL"], pg.Environment)
	}
	// Secrets: the state key file is a secret the service mounts and the
	// file defines; so is the database password.
	keyFile := env["SAMPLIT_STATE_KEY_FILE"]
	name, ok := strings.CutPrefix(keyFile, "/run/secrets/")
	if !ok || !contains(app.Secrets, name) || compose.Secrets[name].File == "" {
		t.Errorf("state key file %q is not a secret mounted into samplit (%v, %v)", keyFile, app.Secrets, compose.Secrets)
	}
	if pw, ok := strings.CutPrefix(pg.Environment["POSTGRES_PASSWORD_FILE"], "/run/secrets/"); !ok || !contains(pg.Secrets, pw) || compose.Secrets[pw].File == "" {
		t.Errorf("postgres password is not a secret: %v", pg.Environment)
	}
	// Every SAMPLIT_ variable is a setting the server knows and accepts
	// (the key file is written for the check, as the secret would be).
	dir := t.TempDir()
	kf := filepath.Join(dir, "state_key")
	if err := os.WriteFile(kf, []byte(stateKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["SAMPLIT_STATE_KEY_FILE"] = kf
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, new(strings.Builder))
	if err != nil {
		t.Fatalf("the compose environment is not a valid configuration: %v", err)
	}
	if cfg.Addr != "0.0.0.0:8080" || !strings.HasSuffix(app.Ports[0], ":8080") {
		t.Errorf("listens on %q, publishes %v", cfg.Addr, app.Ports)
	}
	var help strings.Builder
	config.Load([]string{"--help"}, func(string) string { return "" }, &help)
	for k := range app.Environment {
		if strings.HasPrefix(k, "SAMPLIT_") && !strings.Contains(help.String(), k) {
			t.Errorf("%s is not a setting samplit knows", k)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
