-- bench/lua/walk-keys.lua - wrk script: GET PREFIX1 .. PREFIXN in turn, over
-- and over (every connection of a wrk thread shares one counter), so a run
-- touches every key about equally. Arguments after `--`: N (default 1000)
-- and PREFIX (default /item/).
--   wrk -s bench/lua/walk-keys.lua http://127.0.0.1:8080 -- 1000 /item/

local n, prefix, i = 1000, "/item/", 0
local reqs = {}

function init(args)
    n = tonumber(args[1]) or n
    prefix = args[2] or prefix
    -- Pre-format the requests: the per-request cost in wrk stays a table
    -- lookup, which keeps the load generator as fast as possible.
    for k = 1, n do
        reqs[k] = wrk.format("GET", prefix .. k)
    end
    -- Each thread starts at a different place in the walk.
    i = math.random(n) - 1
end

function request()
    i = i % n + 1
    return reqs[i]
end
