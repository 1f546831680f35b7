package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/samplit/samplit/internal/apikey"
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
		db:         fs.String("db", "", "database: SQLite file or postgres:// URL (env SAMPLIT_DATABASE_URL; default samplit.db)"),
		configFile: fs.String("config", "", "optional TOML file of settings (env SAMPLIT_CONFIG)"),
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

// parse parses a subcommand's flags, turning --help into a clean exit and a
// flag error into exit status 2 (the flag package has printed it).
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return flag.ErrHelp
	case err != nil:
		return exitCode(2)
	}
	return nil
}

// migrate: samplit migrate up|status.
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		fmt.Fprintln(stderr, "Usage: samplit migrate up|status [--db URL]")
		return exitCode(2)
	}
	fs := flag.NewFlagSet("samplit migrate "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbf := addDBFlags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := dbf.resolve(fs, getenv, stderr)
	if err != nil {
		return err
	}
	opts := backendOptions(cfg, false)
	if args[0] == "up" {
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

// keys: samplit keys create|list|revoke.
func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const use = "Usage: samplit keys create --workspace NAME --scope admin|write|assign [--name N] | list --workspace NAME | revoke --workspace NAME KEY_ID"
	if len(args) == 0 {
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	}
	sub := args[0]
	fs := flag.NewFlagSet("samplit keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbf := addDBFlags(fs)
	workspace := fs.String("workspace", apikey.DefaultWorkspace, "workspace name")
	scope := fs.String("scope", "", "create: admin, write or assign")
	name := fs.String("name", "", "create: a name for the key")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := dbf.resolve(fs, getenv, stderr)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	switch sub {
	case "create":
		if *scope == "" {
			fmt.Fprintln(stderr, "samplit keys create: --scope admin|write|assign is required")
			return exitCode(2)
		}
		plain, k, err := apikey.Create(ctx, st, *workspace, *name, store.Scope(*scope), now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created key %s (%s) in workspace %q; it is shown once:\n", k.ID, k.Scope, *workspace)
		fmt.Fprintln(stdout, plain)
		return nil
	case "list":
		ks, err := apikey.List(ctx, st, *workspace)
		if err != nil {
			return err
		}
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
	case "revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "samplit keys revoke: give exactly one KEY_ID")
			return exitCode(2)
		}
		if err := apikey.Revoke(ctx, st, *workspace, fs.Arg(0), now); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return nil
	default:
		fmt.Fprintln(stderr, use)
		return exitCode(2)
	}
}

// state: samplit state rotate-key. The new key is the configured primary
// (SAMPLIT_STATE_KEY / --state-key-file); the previous one must be given for
// reading (SAMPLIT_STATE_OLD_KEYS / --state-old-keys). It is safe while
// servers run: each re-seal is an optimistic versioned write.
func state(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate-key" {
		fmt.Fprintln(stderr, "Usage: samplit state rotate-key [--db URL] [--state-key KEY | --state-key-file F] --state-old-keys OLD[,OLD...]")
		return exitCode(2)
	}
	fs := flag.NewFlagSet("samplit state rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbf := addDBFlags(fs)
	key := fs.String("state-key", "", "the new primary key, base64 (env SAMPLIT_STATE_KEY)")
	keyFile := fs.String("state-key-file", "", "file holding the new primary key (env SAMPLIT_STATE_KEY_FILE)")
	old := fs.String("state-old-keys", "", "comma-separated old keys to read with (env SAMPLIT_STATE_OLD_KEYS)")
	if err := parse(fs, args[1:]); err != nil {
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
