package shardflow

// docs/options.md is generated from the option registry; a test in
// options_test.go fails when it is stale.
//go:generate go run ./internal/optdocs/cmd -o docs/options.md
