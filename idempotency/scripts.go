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
//	state          "claimed" | "completed" | "released" | "parked"
//	token          owner token of the current (or last) claim
//	kind           1, 4 or 6: the answer of the claim (New, Recovered, Parked)
//	lease_until_ms server time in ms when the lease of a claim ends (0 otherwise)
//	attempts       how many times the reference was claimed for charging
//	seq            stream sequence of the current owner, or of the completing message
//	result         stored result (completed only)
//	reopen         "1" if the completed result may be re-opened by a later claim
//	maybe_sent     "1" if released by an owner that may have sent the charge
//	parked         "1" while the outcome is unknown and being resolved
//	updated_ms     server time in ms of the last change
//	held           seq of a request between two of its dunning attempts
//	               (Hold): until held_until_ms, another request's claim
//	               waits (StateInProgress) instead of charging
//	held_until_ms  server time in ms when a hold lapses
//	done:<seq>     the re-openable (failed) result of request seq, kept when
//	               a later request re-opens the record: a redelivery of
//	               seq is answered with it, never charged again

// claimSrc: KEYS[1] record key; ARGV[1] fingerprint, ARGV[2] caller token,
// ARGV[3] seq, ARGV[4] lease ms, ARGV[5] retention ms.
// Reply: {state code, attempts, seq (string), lease remaining ms, result}.
const claimSrc = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[4])
local f = redis.call('HMGET', key, 'fp', 'state', 'token', 'lease_until_ms', 'attempts', 'seq', 'reopen', 'maybe_sent', 'kind', 'parked',
  'held', 'held_until_ms')

local function ms(n) return string.format('%.0f', n) end

local function take(kind)
  local attempts = redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'fp', ARGV[1], 'state', 'claimed', 'token', ARGV[2], 'kind', kind,
    'lease_until_ms', ms(now + lease), 'seq', ARGV[3], 'reopen', '0', 'maybe_sent', '0', 'parked', '0', 'updated_ms', ms(now))
  redis.call('HDEL', key, 'result')
  redis.call('PEXPIRE', key, ARGV[5])
  return {kind, attempts, ARGV[3], 0, ''}
end

-- resolve takes a parked record over for a resolver: it keeps the parked
-- request's sequence and the parked mark, and counts no charge attempt.
local function resolve(seq)
  redis.call('HSET', key, 'state', 'claimed', 'token', ARGV[2], 'kind', 6,
    'lease_until_ms', ms(now + lease), 'parked', '1', 'updated_ms', ms(now))
  redis.call('PEXPIRE', key, ARGV[5])
  return {6, tonumber(redis.call('HGET', key, 'attempts')) or 0, seq, 0, ''}
end

if not f[1] then
  return take(1)
end
local attempts = tonumber(f[5]) or 0
local seq = f[6] or '0'
-- A request whose failed result was stored keeps it, even after a later
-- request re-opened the record: it is answered, never charged again.
local done = redis.call('HGET', key, 'done:' .. ARGV[3])
if done then
  return {2, attempts, ARGV[3], 0, done}
end
if f[1] ~= ARGV[1] then
  return {5, attempts, seq, 0, ''}
end
local state = f[2]
-- A request between two dunning attempts holds the record: another
-- request of the reference waits for its final result.
local heldBy = f[11]
if heldBy and heldBy ~= '' and heldBy ~= ARGV[3] and now < (tonumber(f[12]) or 0)
    and (state == 'released' or (state == 'claimed' and (tonumber(f[4]) or 0) <= now)) then
  return {3, attempts, seq, lease, ''}
end
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
  if f[10] == '1' then
    return resolve(seq)
  end
  return take(4)
elseif state == 'parked' or (state == 'released' and f[10] == '1') then
  return resolve(seq)
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
  'maybe_sent', '0', 'parked', '0', 'lease_until_ms', '0', 'updated_ms', string.format('%.0f', now))
redis.call('HDEL', key, 'held', 'held_until_ms')
if ARGV[4] == '1' then
  -- Re-openable (failed): a later request may charge the reference, and
  -- this one must still find its own result.
  redis.call('HSET', key, 'done:' .. ARGV[2], ARGV[3])
end
redis.call('PEXPIRE', key, ARGV[5])
return 1
`

// releaseSrc: KEYS[1] record key; ARGV[1] token, ARGV[2] maybe_sent
// ("0"/"1"), ARGV[3] retention ms, ARGV[4] unpark ("1": clear the parked
// mark), ARGV[5] seq of the request that holds the record (empty: none),
// ARGV[6] how long its hold lasts (ms from now, by the server's clock).
// Reply: 1 released (or already released by this token), 0 not the owner.
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
if ARGV[4] == '1' then
  redis.call('HSET', key, 'parked', '0')
end
if ARGV[5] ~= '' then
  redis.call('HSET', key, 'held', ARGV[5], 'held_until_ms', string.format('%.0f', now + tonumber(ARGV[6])))
end
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

// parkSrc: KEYS[1] record key; ARGV[1] token, ARGV[2] seq, ARGV[3]
// retention ms. Reply: 1 parked (or already parked by this token), 0 not
// the owner.
const parkSrc = `
local key = KEYS[1]
local f = redis.call('HMGET', key, 'state', 'token')
if f[2] ~= ARGV[1] then
  return 0
end
if f[1] == 'parked' then
  return 1
end
if f[1] ~= 'claimed' then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', key, 'state', 'parked', 'parked', '1', 'seq', ARGV[2], 'lease_until_ms', '0',
  'maybe_sent', '1', 'updated_ms', string.format('%.0f', now))
redis.call('PEXPIRE', key, ARGV[3])
return 1
`
