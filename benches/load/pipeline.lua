-- wrk script: write DEPTH requests back to back per request() call, so wrk
-- keeps DEPTH requests in flight per connection (HTTP/1.1 pipelining).
-- Usage: wrk -s pipeline.lua URL -- 16
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
