package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/cli"
	"github.com/samplit/samplit/internal/config"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/webhook"
)

// dbFlags registers the flags that pick a database on a command's flag set;
// resolve then applies the same precedence as serve (flags, environment,
// file) through config.Load.
type dbFlags struct {
	db, configFile *string
	simple         *bool
}

func addDBFlags(fs *flag.FlagSet) dbFlags {
	return dbFlags{
		db:         fs.String("db", "", "database: SQLite file or postgres:// `URL` (env SAMPLIT_DATABASE_URL; default samplit.db)"),
		configFile: fs.String("config", "", "optional TOML `file` of settings (env SAMPLIT_CONFIG)"),
		simple:     fs.Bool("pg-simple-protocol", false, "PostgreSQL without prepared statements (env SAMPLIT_PG_SIMPLE_PROTOCOL)"),
	}
}

func (d dbFlags) resolve(fs *flag.FlagSet, getenv func(string) string, stderr io.Writer) (config.Config, error) {
	var args []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "db", "config":
			args = append(args, "--"+f.Name, f.Value.String())
		case "pg-simple-protocol":
			args = append(args, "--pg-simple-protocol="+f.Value.String())
		}
	})
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return cfg, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

// parse parses a command's flags: --help prints its help to stdout and
// ends the command with status 0 (flag.ErrHelp), a bad flag is reported on
// stderr with status 2.
func parse(c *cli.Command, args []string, stdout, stderr io.Writer) error {
	help, err := c.Parse(args, stdout, stderr)
	switch {
	case help:
		return flag.ErrHelp
	case err != nil:
		return exitCode(2)
	}
	return nil
}

// subcommand is one subcommand of a group (migrate, keys, state).
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

// group dispatches to a subcommand. The group's own --help lists the
// subcommands (exit 0); no or an unknown subcommand lists them on stderr
// (exit 2).
func group(ctx context.Context, name string, subs []subcommand, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	help := func(w io.Writer) {
		names := make([]string, len(subs))
		for i, s := range subs {
			names[i] = s.name
		}
		fmt.Fprintf(w, "Usage: samplit %s %s [flags]\n\nSubcommands:\n", name, strings.Join(names, "|"))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range subs {
			fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun 'samplit %s <subcommand> --help' for its flags.\n", name)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		help(stdout)
		return flag.ErrHelp
	}
	if len(args) > 0 {
		for _, s := range subs {
			if s.name == args[0] {
				return s.run(ctx, args[1:], getenv, stdout, stderr)
			}
		}
		fmt.Fprintf(stderr, "samplit %s: unknown subcommand %q\n\n", name, args[0])
	}
	help(stderr)
	return exitCode(2)
}

var migrateCommands = []subcommand{
	{"up", "apply the pending migrations, then list them all", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return migrate(ctx, "up", args, getenv, stdout, stderr)
	}},
	{"status", "list the migrations of this binary and whether each is applied", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return migrate(ctx, "status", args, getenv, stdout, stderr)
	}},
}

// migrate: samplit migrate up|status.
func migrate(ctx context.Context, sub string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	about := "List the migrations embedded in this binary and whether the database has each."
	if sub == "up" {
		about = "Apply the pending migrations (serve does it at start; behind a transaction pooler run it once\nover a direct connection first), then list them all."
	}
	c := cli.New("samplit migrate "+sub, "samplit migrate "+sub+" [flags]", about)
	dbf := addDBFlags(c.FS)
	if err := parse(c, args, stdout, stderr); err != nil {
		return err
	}
	if c.FS.NArg() > 0 {
		c.Fail(stderr, fmt.Sprintf("unexpected argument %q", c.FS.Arg(0)))
		return exitCode(2)
	}
	cfg, err := dbf.resolve(c.FS, getenv, stderr)
	if err != nil {
		return err
	}
	opts := backendOptions(cfg, false)
	if sub == "up" {
		if err := backend.Migrate(ctx, cfg.DatabaseURL, opts); err != nil {
			return err
		}
	}
	infos, err := backend.MigrationStatus(ctx, cfg.DatabaseURL, opts)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range infos {
		applied := "pending"
		if m.Applied {
			applied = m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, applied)
	}
	return tw.Flush()
}

var keysCommands = []subcommand{
	{"create", "make an API key and print it once", keysCreate},
	{"list", "list the workspace's keys, newest first (never the keys themselves)", keysList},
	{"revoke", "revoke a key by its id (key_…)", keysRevoke},
}

// keysCommand is the flag set every keys subcommand shares: the database
// and the workspace.
func keysCommand(sub, usage, about string) (*cli.Command, dbFlags, *string) {
	c := cli.New("samplit keys "+sub, usage, about)
	dbf := addDBFlags(c.FS)
	workspace := c.FS.String("workspace", apikey.DefaultWorkspace, "workspace `name`")
	return c, dbf, workspace
}

// keysStore parses the flags and opens the store.
func keysStore(ctx context.Context, c *cli.Command, dbf dbFlags, args []string, getenv func(string) string, stdout, stderr io.Writer) (store.Store, error) {
	if err := parse(c, args, stdout, stderr); err != nil {
		return nil, err
	}
	cfg, err := dbf.resolve(c.FS, getenv, stderr)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg, false)
}

func keysCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, dbf, workspace := keysCommand("create", "samplit keys create --scope admin [flags]",
		"Make an API key and print it once on stdout (only its hash is stored).\n"+
			"Scopes: admin (keys, webhooks, everything), write (experiments, events),\n"+
			"assign (assignments and events only: safe in a web or mobile app).")
	scope := c.FS.String("scope", "", "`scope` of the key: admin, write or assign (required)")
	name := c.FS.String("name", "", "a `name` for the key")
	st, err := keysStore(ctx, c, dbf, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if *scope == "" {
		c.Fail(stderr, "--scope is required: admin, write or assign")
		return exitCode(2)
	}
	plain, k, err := apikey.Create(ctx, st, *workspace, *name, store.Scope(*scope), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created key %s (%s) in workspace %q; it is shown once:\n", k.ID, k.Scope, *workspace)
	fmt.Fprintln(stdout, plain)
	return nil
}

func keysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, dbf, workspace := keysCommand("list", "samplit keys list [flags]", "List the workspace's API keys, newest first (never the keys themselves).")
	st, err := keysStore(ctx, c, dbf, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	ks, err := apikey.List(ctx, st, *workspace)
	if err != nil {
		return err
	}
	// Newest first: the key just made is the one a person looks for.
	slices.SortStableFunc(ks, func(a, b store.APIKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tPREFIX\tCREATED\tREVOKED")
	for _, k := range ks {
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Scope, apikey.Prefix+k.Lookup+"_…", k.CreatedAt.UTC().Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, dbf, workspace := keysCommand("revoke", "samplit keys revoke [flags] KEY_ID",
		"Revoke the key with id KEY_ID (key_…, from 'samplit keys list'); servers refuse it within a second.")
	st, err := keysStore(ctx, c, dbf, args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if c.FS.NArg() != 1 {
		c.Fail(stderr, "give exactly one KEY_ID")
		return exitCode(2)
	}
	if err := apikey.Revoke(ctx, st, *workspace, c.FS.Arg(0), time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s\n", c.FS.Arg(0))
	return nil
}

var stateCommands = []subcommand{
	{"rotate-key", "re-seal every optimizer state and webhook secret under the primary state key", rotateKey},
}

// rotateKey: samplit state rotate-key. The new key is the configured primary
// (SAMPLIT_STATE_KEY / --state-key-file); the previous one must be given for
// reading (SAMPLIT_STATE_OLD_KEYS / --state-old-keys). It is safe while
// servers run: each re-seal is an optimistic versioned write.
func rotateKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := cli.New("samplit state rotate-key", "samplit state rotate-key --state-key-file NEW --state-old-keys OLD [flags]",
		"Re-seal every optimizer state and webhook signing secret under the new primary key, reading\n"+
			"with the old ones; safe while servers run. The procedure: docs/operations.md.")
	fs := c.FS
	dbf := addDBFlags(fs)
	key := fs.String("state-key", "", "the new primary `key`, base64 (env SAMPLIT_STATE_KEY)")
	keyFile := fs.String("state-key-file", "", "`file` holding the new primary key (env SAMPLIT_STATE_KEY_FILE)")
	old := fs.String("state-old-keys", "", "comma-separated old `keys` to read with (env SAMPLIT_STATE_OLD_KEYS)")
	if err := parse(c, args, stdout, stderr); err != nil {
		return err
	}
	cfg, err := dbf.resolve(fs, getenv, stderr)
	if err != nil {
		return err
	}
	if *key != "" {
		cfg.StateKey, cfg.StateKeyFile = *key, ""
	}
	if *keyFile != "" {
		cfg.StateKeyFile, cfg.StateKey = *keyFile, ""
	}
	if *old != "" {
		cfg.StateOldKeys = strings.Split(*old, ",")
	}
	logger := newLogger(cfg, stderr)
	ring, err := loadKeyring(cfg, logger)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := seal.Rotate(ctx, st, ring, time.Now())
	fmt.Fprintln(stdout, rep.String())
	for _, f := range rep.Failures {
		fmt.Fprintf(stderr, "experiment %s (key %s): %v\n", f.ExperimentID, f.KeyID, f.Err)
	}
	if err != nil {
		return err
	}
	// Webhook signing secrets are sealed under the same keys.
	wrep, err := webhook.ResealSecrets(ctx, st, ring)
	fmt.Fprintln(stdout, wrep.String())
	for _, f := range wrep.Failures {
		fmt.Fprintln(stderr, f)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 || wrep.Failed > 0 {
		// The old key is still needed for these rows: a script must not
		// go on to remove it.
		return fmt.Errorf("%d states and %d webhook secrets could not be re-sealed; keep the old key and run again", rep.Failed, wrep.Failed)
	}
	return nil
}

// loadKeyring builds the state keyring and logs where the key came from and
// any warning (a generated key beside the data, a key file others can read).
func loadKeyring(cfg config.Config, logger *slog.Logger) (*seal.Keyring, error) {
	kc := seal.KeyConfig{
		Key:      cfg.StateKey,
		KeyFile:  cfg.StateKeyFile,
		OldKeys:  cfg.StateOldKeys,
		Database: seal.DatabaseSQLite,
	}
	if cfg.IsPostgres() {
		kc.Database = seal.DatabasePostgres
	} else {
		kc.SQLitePath = cfg.DatabaseURL
	}
	loaded, err := seal.LoadKeyring(kc)
	if err != nil {
		return nil, err
	}
	for _, w := range loaded.Warnings {
		logger.Warn(w)
	}
	logger.Info("state key loaded", "source", loaded.Source, "key_id", loaded.Ring.PrimaryID())
	return loaded.Ring, nil
}
