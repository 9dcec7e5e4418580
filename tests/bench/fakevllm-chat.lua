-- fakevllm-chat.lua -- wrk script for tests/bench/bench-fakevllm.sh: POST a
-- non-streaming chat completion of about 1 KB (the request body) to
-- /v1/chat/completions, and count any answer other than 200 as an error.
local words = {}
for i = 1, 160 do
  words[#words + 1] = "word" .. (i % 17)
end
local content = table.concat(words, " ")
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","temperature":0,"max_tokens":16,' ..
  '"messages":[{"role":"system","content":"You are a benchmark."},' ..
  '{"role":"user","content":"' .. content .. '"}]}'

local bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad == 1 then
      io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("body_bytes %d\n", #wrk.body))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency_p%s_us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("non_2xx_or_errors %d\n", summary.errors.status +
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
  io.write(string.format("requests_per_s %.0f\n",
    summary.requests / (summary.duration / 1e6)))
end
