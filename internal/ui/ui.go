// Package ui embeds the web app: static assets (plain ES modules and CSS,
// no build step) and the server-rendered page templates.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static templates
var files embed.FS

// Static is the tree served under /static/.
func Static() fs.FS { return sub("static") }

// Templates holds the html/template page files.
func Templates() fs.FS { return sub("templates") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// Only reachable if the embed directive and dir disagree, which the
		// build would have caught; fail loudly rather than serve nothing.
		panic("ui: " + err.Error())
	}
	return f
}
