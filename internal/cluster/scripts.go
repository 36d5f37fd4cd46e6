package cluster

import "github.com/redis/go-redis/v9"

// The presence directory's Lua scripts. Each runs atomically in Redis, so
// a user's presence in a room and its announcement change together:
// whichever nodes report joins and leaves in whatever order, the room
// hears "online" and "offline" in the order the state changed.
//
// Keys, under the cluster's prefix P:
//
//	P nodes          sorted set: node id → when its presence expires (ms, Redis time)
//	P node:<node>    hash: "<room>\x00<user>" → 1, what the node has online
//	P pc:<room>      hash: user → on how many nodes the user is online in the room
//	P pn:<room>      sorted set, all scores 0: "<name>\x00<user>", by name then id
//	P pm:<room>      hash: user → their member of pn (to remove it after a rename)
//	P pu:<room>      hash: user → the user as JSON, for rosters
//	P ps:<room>      set while the room's presence is a summary (too many online)
//
// The scripts touch keys they compute (a dead node's rooms): one Redis,
// not Redis Cluster.

// setScript marks one user present (ARGV[5] "1") or absent on this node
// in one room, and announces a change of the cluster's state: it
// publishes ARGV[7] (online) or ARGV[8] (offline) itself while the room
// announces users one by one, else tells the node what to publish.
// Returns {code, online count}: 0 nothing changed for the cluster; 1
// announced; 2 the room just became a summary; 3 a summary's count
// changed; 4 the room just went back to per-user presence.
//
// KEYS: node hash, pc, pn, pm, pu, ps.
// ARGV: field, user id, pn member, user JSON, present, channel, online
// envelope, offline envelope, limit, resume mark.
var setScript = redis.NewScript(`
local had = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
local limit, resume = tonumber(ARGV[9]), tonumber(ARGV[10])
if ARGV[5] == '1' then
  if had then return {0, 0} end
  redis.call('HSET', KEYS[1], ARGV[1], '1')
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[4])
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) > 1 then return {0, 0} end
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[3], 0, ARGV[3])
  local n = redis.call('HLEN', KEYS[2])
  if redis.call('EXISTS', KEYS[6]) == 1 then return {3, n} end
  if n > limit then
    redis.call('SET', KEYS[6], '1')
    return {2, n}
  end
  redis.call('PUBLISH', ARGV[6], ARGV[7])
  return {1, n}
end
if not had then return {0, 0} end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then return {0, 0} end
redis.call('HDEL', KEYS[2], ARGV[2])
local m = redis.call('HGET', KEYS[4], ARGV[2])
if m then redis.call('ZREM', KEYS[3], m) end
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
local n = redis.call('HLEN', KEYS[2])
if redis.call('EXISTS', KEYS[6]) == 1 then
  if n <= resume then
    redis.call('DEL', KEYS[6])
    return {4, n}
  end
  return {3, n}
end
redis.call('PUBLISH', ARGV[6], ARGV[8])
return {1, n}
`)

// reapScript removes a node's presence: the node ARGV[2], or, when that
// is "", one node whose heartbeat expired. It returns, for each user that
// went offline for the whole cluster, {room, user JSON, mode}: mode "u"
// to announce the user offline, "c" for a summary's new count, "l" for a
// room that went back to per-user presence.
//
// KEYS: nodes. ARGV: prefix, node or "", resume mark.
var reapScript = redis.NewScript(`
local node = ARGV[2]
if node == '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #dead == 0 then return {} end
  node = dead[1]
end
redis.call('ZREM', KEYS[1], node)
local p = ARGV[1]
local resume = tonumber(ARGV[3])
local out = {}
local nk = p .. 'node:' .. node
for _, f in ipairs(redis.call('HKEYS', nk)) do
  local i = string.find(f, '\0', 1, true)
  local room, user = string.sub(f, 1, i - 1), string.sub(f, i + 1)
  local pc = p .. 'pc:' .. room
  if redis.call('HINCRBY', pc, user, -1) <= 0 then
    redis.call('HDEL', pc, user)
    local m = redis.call('HGET', p .. 'pm:' .. room, user)
    if m then redis.call('ZREM', p .. 'pn:' .. room, m) end
    redis.call('HDEL', p .. 'pm:' .. room, user)
    local j = redis.call('HGET', p .. 'pu:' .. room, user)
    redis.call('HDEL', p .. 'pu:' .. room, user)
    local mode = 'u'
    if redis.call('EXISTS', p .. 'ps:' .. room) == 1 then
      mode = 'c'
      if redis.call('HLEN', pc) <= resume then
        redis.call('DEL', p .. 'ps:' .. room)
        mode = 'l'
      end
    end
    table.insert(out, room)
    table.insert(out, j or '')
    table.insert(out, mode)
  end
end
redis.call('DEL', nk)
return out
`)

// heartbeatScript extends the node's presence by ARGV[2] ms from now
// (Redis time) and returns 1 if the node was not registered: it is new,
// was reaped, or Redis lost its data.
//
// KEYS: nodes. ARGV: node, TTL in ms.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`)

// rosterScript returns {online count, summary (0/1), user JSON...}: the
// first ARGV[1] users by name, all of them for a negative limit.
//
// KEYS: pc, pn, pu, ps.
var rosterScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local out = {redis.call('HLEN', KEYS[1]), redis.call('EXISTS', KEYS[4])}
if limit == 0 then return out end
local stop = -1
if limit > 0 then stop = limit - 1 end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, stop)) do
  local i = string.find(m, '\0', 1, true)
  local j = redis.call('HGET', KEYS[3], string.sub(m, i + 1))
  if j then table.insert(out, j) end
end
return out
`)

// publishAbsentScript publishes ARGV[3] (an offline notice) unless the
// user ARGV[1] is online in the room again: a user who came back on
// another node after their node died is announced online, never offline
// after that.
//
// KEYS: pc. ARGV: user, channel, envelope.
var publishAbsentScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
`)
