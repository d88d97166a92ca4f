package idempotency

// The Lua scripts below run atomically inside Redis. They use only core Redis
// commands (no cjson/cmsgpack) so that they run unchanged on Redis 7 and on
// miniredis. Time comes from the server (TIME), so the clocks of the pods do
// not matter. Integers that may exceed 2^53 (stream sequences) stay strings
// end to end; millisecond timestamps are formatted with %.0f so that Lua's
// number-to-string conversion never switches to exponent notation.
//
// Hash fields of one record:
//
//	fp             request fingerprint
//	state          "claimed" | "completed" | "released"
//	token          owner token of the current (or last) claim
//	kind           1 (claim answered New) or 4 (claim answered Recovered)
//	lease_until_ms server time in ms when the lease of a claim ends (0 otherwise)
//	attempts       how many times the reference was claimed for charging
//	seq            stream sequence of the current owner, or of the completing message
//	result         stored result (completed only)
//	reopen         "1" if the completed result may be re-opened by a later claim
//	maybe_sent     "1" if released by an owner that may have sent the charge
//	updated_ms     server time in ms of the last change

// claimSrc: KEYS[1] record key; ARGV[1] fingerprint, ARGV[2] caller token,
// ARGV[3] seq, ARGV[4] lease ms, ARGV[5] retention ms.
// Reply: {state code, attempts, seq (string), lease remaining ms, result}.
const claimSrc = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[4])
local f = redis.call('HMGET', key, 'fp', 'state', 'token', 'lease_until_ms', 'attempts', 'seq', 'reopen', 'maybe_sent', 'kind')

local function ms(n) return string.format('%.0f', n) end

local function take(kind)
  local attempts = redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'fp', ARGV[1], 'state', 'claimed', 'token', ARGV[2], 'kind', kind,
    'lease_until_ms', ms(now + lease), 'seq', ARGV[3], 'reopen', '0', 'maybe_sent', '0', 'updated_ms', ms(now))
  redis.call('HDEL', key, 'result')
  redis.call('PEXPIRE', key, ARGV[5])
  return {kind, attempts, ARGV[3], 0, ''}
end

if not f[1] then
  return take(1)
end
local attempts = tonumber(f[5]) or 0
local seq = f[6] or '0'
if f[1] ~= ARGV[1] then
  return {5, attempts, seq, 0, ''}
end
local state = f[2]
if state == 'claimed' then
  if f[3] == ARGV[2] then
    -- The caller already owns this claim: its first reply was lost and the
    -- command was sent again. Answer as the first time and renew the lease.
    redis.call('HSET', key, 'lease_until_ms', ms(now + lease), 'updated_ms', ms(now))
    redis.call('PEXPIRE', key, ARGV[5])
    return {tonumber(f[9]) or 1, attempts, seq, 0, ''}
  end
  local left = (tonumber(f[4]) or 0) - now
  if left > 0 then
    return {3, attempts, seq, left, ''}
  end
  return take(4)
elseif state == 'released' then
  if f[8] == '1' then
    return take(4)
  end
  return take(1)
elseif state == 'completed' then
  if f[7] == '1' then
    return take(4)
  end
  return {2, attempts, seq, 0, redis.call('HGET', key, 'result') or ''}
end
return redis.error_reply('idempotency: record ' .. key .. ' has unknown state')
`

// extendSrc: KEYS[1] record key; ARGV[1] token, ARGV[2] lease ms, ARGV[3]
// retention ms. Reply: 1 renewed, 0 not the owner.
const extendSrc = `
local key = KEYS[1]
local f = redis.call('HMGET', key, 'state', 'token')
if f[1] ~= 'claimed' or f[2] ~= ARGV[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', key, 'lease_until_ms', string.format('%.0f', now + tonumber(ARGV[2])), 'updated_ms', string.format('%.0f', now))
redis.call('PEXPIRE', key, ARGV[3])
return 1
`

// completeSrc: KEYS[1] record key; ARGV[1] token, ARGV[2] seq, ARGV[3]
// result, ARGV[4] reopen ("0"/"1"), ARGV[5] retention ms.
// Reply: 1 stored (or already stored by this token), 0 not the owner.
const completeSrc = `
local key = KEYS[1]
local f = redis.call('HMGET', key, 'state', 'token')
if f[2] ~= ARGV[1] then
  return 0
end
if f[1] == 'completed' then
  return 1
end
if f[1] ~= 'claimed' then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', key, 'state', 'completed', 'seq', ARGV[2], 'result', ARGV[3], 'reopen', ARGV[4],
  'maybe_sent', '0', 'lease_until_ms', '0', 'updated_ms', string.format('%.0f', now))
redis.call('PEXPIRE', key, ARGV[5])
return 1
`

// releaseSrc: KEYS[1] record key; ARGV[1] token, ARGV[2] maybe_sent
// ("0"/"1"), ARGV[3] retention ms. Reply: 1 released (or already released by
// this token), 0 not the owner.
const releaseSrc = `
local key = KEYS[1]
local f = redis.call('HMGET', key, 'state', 'token')
if f[2] ~= ARGV[1] then
  return 0
end
if f[1] == 'released' then
  return 1
end
if f[1] ~= 'claimed' then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', key, 'state', 'released', 'maybe_sent', ARGV[2], 'lease_until_ms', '0',
  'updated_ms', string.format('%.0f', now))
redis.call('PEXPIRE', key, ARGV[3])
return 1
`

// forgetSrc: KEYS[1] record key; ARGV[1] token. Reply: 1 deleted (or
// already gone), 0 not the owner.
const forgetSrc = `
local t = redis.call('HGET', KEYS[1], 'token')
if not t then
  return 1
end
if t ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
`
