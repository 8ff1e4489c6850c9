// Package bundle is the per-bottle sidecar: the egress proxy, the git gate
// and the supervisor, run from one static Linux binary inside one container.
// Nothing under bundle/ imports the plugin side; the plugin imports the
// bundle's configuration types to write them.
package bundle
