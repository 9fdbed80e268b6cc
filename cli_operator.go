package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"tenancy/configs"
	"tenancy/internal/password"
	"tenancy/models"
)

// operatorCommands are the subcommands of `tenancy operator`. Each reads
// the password, if it needs one, from stdin.
func operatorCommands() []operatorCommand {
	return []operatorCommand{
		{"create", "add an operator, who signs in on the base domain for the pages across tenants", runOperatorCreate},
		{"list", "list the operators", runOperatorList},
		{"delete", "remove an operator; its sessions end at its next request", runOperatorDelete},
	}
}

// operatorCommand is one `tenancy operator <name>` subcommand; it may read
// stdin.
type operatorCommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error
}

func operatorUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tenancy operator <command> [arguments] [flags]\n\nCommands:")
	for _, c := range operatorCommands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `tenancy operator <command> --help` for a command's flags. See docs/users.md.\n\n%s", configs.Help())
}

// runOperator is `tenancy operator`: it dispatches to a subcommand, which
// reads passwords from stdin.
func runOperator(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		operatorUsage(stderr)
		return usageError{errors.New("operator: no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		operatorUsage(stdout)
		return nil
	}
	for _, c := range operatorCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdin, stdout, stderr)
		}
	}
	operatorUsage(stderr)
	return usageError{fmt.Errorf("operator: unknown command %q", args[0])}
}

func runOperatorCreate(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newOperatorFlagSet("create", "<email> ", `Adds an operator: an account of no tenant, who signs in at the base domain's
/login (not at any tenant's address) for the all-tenants view, the
cross-tenant report and the metrics. The password is asked for twice on the
terminal, not echoed; with --password-stdin it is the first line of stdin, for
scripts (printf '%s\n' "$PW" | tenancy operator create ops@example.com
--password-stdin). A password is refused when it is empty, shorter than 12
characters, one character repeated, or a published one. It is stored hashed,
in Django's pbkdf2_sha256 format. An email taken already (in any case) is
refused, and nothing is written.`)
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of the terminal")
	operands, help, err := parseOperands(fs, args, 1, stdout)
	if help || err != nil {
		return err
	}
	email := strings.TrimSpace(operands[0])
	if email == "" || !strings.Contains(email, "@") || len(email) > 254 {
		return usageError{fmt.Errorf("operator create: %q is not an email address", operands[0])}
	}
	pw, err := readNewPassword(stdin, stderr, *fromStdin)
	if err != nil {
		return fmt.Errorf("operator create %s: %w", email, err)
	}
	if err := password.Acceptable(pw); err != nil {
		return fmt.Errorf("operator create %s: %w; choose another (nothing was written)", email, err)
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return fmt.Errorf("operator create %s: %w", email, err)
	}
	cfg, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	o, err := admin.CreateOperator(ctx, email, hash)
	if err != nil {
		return fmt.Errorf("operator create %s: %w", email, err)
	}
	fmt.Fprintf(stdout, "operator %s: created (id %d, %s, database %s); sign in at http://%s/login\n", o.Email, o.ID, cfg.Strategy.Strategy, cfg.Strategy.Database, cfg.BaseDomain)
	return nil
}

// newOperatorFlagSet is newFlagSet for `tenancy operator <name> <operands>`.
func newOperatorFlagSet(name, operands, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("operator "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tenancy operator %s %s[flags]\n\n%s\n\nFlags:\n", name, operands, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", configs.Help())
	}
	return fs
}

// readNewPassword reads a password from the terminal, twice and without
// echo, or from the first line of stdin when fromStdin.
func readNewPassword(stdin io.Reader, prompt io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("stdin is not a terminal: give --password-stdin to read the password from it")}
	}
	var pws [2]string
	for i, p := range []string{"Password: ", "Password (again): "} {
		fmt.Fprint(prompt, p)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the password from the terminal: %w", err)
		}
		pws[i] = string(b)
	}
	if pws[0] != pws[1] {
		return "", errors.New("the two passwords differ; nothing was written")
	}
	return pws[0], nil
}

func runOperatorList(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newOperatorFlagSet("list", "", `Lists the operators by email (never their password hashes).`)
	asJSON := fs.Bool("json", false, "print JSON (an array of {id, email, created_at})")
	if _, help, err := parseOperands(fs, args, 0, stdout); help || err != nil {
		return err
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	ops, err := admin.Operators(ctx)
	if err != nil {
		return fmt.Errorf("operator list: %w", err)
	}
	if *asJSON {
		if ops == nil {
			ops = []models.Operator{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ops)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tID\tCREATED")
	for _, o := range ops {
		fmt.Fprintf(w, "%s\t%d\t%s\n", o.Email, o.ID, o.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d operators\n", len(ops))
	return nil
}

func runOperatorDelete(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newOperatorFlagSet("delete", "<email> ", `Removes an operator. The server looks the operator up on each request, so
its sessions end with it.`)
	operands, help, err := parseOperands(fs, args, 1, stdout)
	if help || err != nil {
		return err
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.DeleteOperator(ctx, operands[0]); err != nil {
		return fmt.Errorf("operator delete %s: %w", operands[0], err)
	}
	fmt.Fprintf(stdout, "operator %s: deleted\n", operands[0])
	return nil
}
