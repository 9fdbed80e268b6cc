// Command configdoc rewrites the table of environment variables in
// docs/configuration.md from configs.Variables, so that the page says what
// Load reads. `go generate ./configs` runs it; so does
//
//	go run ./configs/cmd/configdoc docs/configuration.md
//
// from the repository's root. It changes nothing else in the file.
package main

import (
	"bytes"
	"fmt"
	"os"

	"tenancy/configs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: configdoc <path to docs/configuration.md>")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

// rewrite regenerates the table in the file at path, leaving the file
// untouched when it is already up to date.
func rewrite(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := configs.RewriteDoc(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(doc, updated) {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, updated, info.Mode().Perm())
}
