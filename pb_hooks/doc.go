// Package pb_hooks holds the server's PocketBase JavaScript hooks
// (*.pb.js files), which the jsvm plugin loads at startup from this folder.
//
// There is no Go code here: this file only makes the folder a Go package so
// that its tests (which load the hooks into a test app and check what they
// do) can live next to the scripts.
package pb_hooks
