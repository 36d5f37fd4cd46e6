package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"

	"pocketchat/internal/redistest"
)

// spawnedCluster is the cluster a run started (-spawn-edges): Redis, the
// primary and the edges, all on this machine.
type spawnedCluster struct {
	redis    *redistest.Server
	redisDir string
	primary  *spawned
	edges    []*spawned
}

// spawnCluster starts redis-server (no persistence), then cfg.Spawn as
// the primary and cfg.Edges edges, every node with the cluster's
// CHAT_REDIS_URL and a fresh CHAT_CLUSTER_SECRET before cfg.SpawnEnv.
// On an error, whatever started is stopped again.
func spawnCluster(ctx context.Context, cfg Config, logf func(string, ...any)) (_ *spawnedCluster, err error) {
	c := &spawnedCluster{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.redisDir, err = os.MkdirTemp("", "chatbench-redis-"); err != nil {
		return nil, err
	}
	if c.redis, err = redistest.Launch(c.redisDir); err != nil {
		return nil, err
	}
	logf("started redis-server on %s (pid %d)", c.redis.Addr, c.redis.Pid())
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	env := append([]string{"CHAT_REDIS_URL=" + c.redis.URL, "CHAT_CLUSTER_SECRET=" + hex.EncodeToString(secret[:])}, cfg.SpawnEnv...)
	if c.primary, err = spawn(ctx, cfg.Spawn, cfg.SpawnDir, cfg.SpawnHooks, env, cfg.SuperEmail, cfg.SuperPassword, logf); err != nil {
		return nil, err
	}
	for range cfg.Edges {
		e, err := spawnEdge(ctx, cfg.Spawn, c.primary.url, env, logf)
		if err != nil {
			return nil, err
		}
		c.edges = append(c.edges, e)
	}
	return c, nil
}

// stop ends the edges (SIGTERM: their users leave at once), then the
// primary, then Redis, and removes their temporary directories.
func (c *spawnedCluster) stop() {
	var wg sync.WaitGroup
	for _, e := range c.edges {
		wg.Go(e.stop)
	}
	wg.Wait()
	if c.primary != nil {
		c.primary.stop()
	}
	if c.redis != nil {
		c.redis.Kill()
	}
	_ = removeTmp(c.redisDir)
}

func (c *spawnedCluster) edgeURLs() []string {
	var out []string
	for _, e := range c.edges {
		out = append(out, e.url)
	}
	return out
}

// procs are the cluster's processes for the CPU figures.
func (c *spawnedCluster) procs() []proc {
	out := []proc{{rolePrimary, c.primary.pid()}}
	for _, e := range c.edges {
		out = append(out, proc{roleEdges, e.pid()})
	}
	return append(out, proc{roleRedis, c.redis.Pid()})
}

// problems is the error lines of the primary's and the edges' output.
func (c *spawnedCluster) problems() string {
	var out []string
	if p := c.primary.problems(); p != "" {
		out = append(out, "primary: "+p)
	}
	for i, e := range c.edges {
		if p := e.problems(); p != "" {
			out = append(out, fmt.Sprintf("edge %d: %s", i+1, p))
		}
	}
	return strings.Join(out, " | ")
}

// proc is one process of the server under test, by its role: the whole
// server (one node) or the primary, an edge, Redis (a cluster).
type proc struct {
	role string
	pid  int
}

// Roles of the server's processes, as keys of Result.CPUByRole.
const (
	rolePrimary = "primary"
	roleEdges   = "edges"
	roleRedis   = "redis"
)
