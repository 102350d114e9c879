-- bench/lua/put-keys.lua - wrk script: PUT a small JSON body to PREFIX1 ..
-- PREFIXN in turn, over and over (a wrk thread's connections share one
-- counter). Arguments after `--`: N (default 1000000: distinct keys for a
-- whole run) and PREFIX (default /wb/).
--   wrk -s bench/lua/put-keys.lua http://127.0.0.1:8080 -- 10 /wb/hot-

local n, prefix, i = 1000000, "/wb/", 0
local headers = { ["Host"] = "api.bench", ["Content-Type"] = "application/json" }
local body = '{"cart":[1,2,3],"note":"a write-behind benchmark body of about 100 bytes...."}'

function init(args)
    n = tonumber(args[1]) or n
    prefix = args[2] or prefix
    -- Each thread starts at a different place in the walk.
    i = math.random(n) - 1
end

function request()
    i = i % n + 1
    return wrk.format("PUT", prefix .. i, headers, body)
end
