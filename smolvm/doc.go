// Package smolvm drives the smolvm command-line tool as a typed Go API,
// following ../shared/smolvm-cli.md (the contract), which its test fake
// follows too.
package smolvm
