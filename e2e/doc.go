// Package e2e holds black-box tests: they build the real pocketchat
// binary, run it on a random loopback port with a temporary data
// directory, and talk to it with real clients (gorilla WebSocket, plain
// HTTP for REST and PocketBase's SSE realtime).
package e2e
