"""test_proxy_fakevllm.py -- llmux-proxyd in front of llmux-fakevllm, the
project's vLLM stand-in: chat and streaming chat relayed (the stream says
the same deterministic text as the plain answer), usage in the last chunk,
the model server's own errors passed through untouched, an engine that
dies mid-stream ends the client's stream visibly, and a client that leaves
a stalled stream frees the model server's request."""
import json
import socket

import harness
from harness import test, check
from fakesup import READY_S, state_msg
from proxykit import Stack

MSG = [{"role": "user", "content": "Tell me about llamas"}]


def start_fakevllm(env, name, *extra):
    port = harness.free_port()
    env.spawn("fakevllm-" + name, [harness.binary("llmux-fakevllm"), "serve", name, "--port",
                                   str(port), "--fake-fast", "--fake-admin"] + list(extra))
    harness.wait_until(lambda: harness.http(port, "GET", "/health")[0] == 200,
                       what="llmux-fakevllm %s" % name)
    return port


def fake_state(port):
    return json.loads(harness.http(port, "GET", "/fake/state")[2])


@test
def chat_and_stream_through_the_proxy(env):
    # The body reaches the model server byte for byte, so it answers to
    # the alias too (the supervisor starts it with every name).
    fv = start_fakevllm(env, "a", "--served-model-name", "a", "alias")
    st = Stack(env, [("a", fv, ["alias"])], state_msg({"a": (READY_S, fv, 1)}))
    status, _, obj = st.post({"model": "alias", "messages": MSG, "max_tokens": 12,
                              "temperature": 0})
    check(status == 200 and obj["object"] == "chat.completion", repr(obj))
    text = obj["choices"][0]["message"]["content"]
    check(text, "an answer")
    status, events = harness.sse_events(st.port, "/v1/chat/completions",
                                        {"model": "a", "messages": MSG, "max_tokens": 12,
                                         "temperature": 0, "stream": True,
                                         "stream_options": {"include_usage": True}})
    check(status == 200 and events[-1] == "[DONE]", repr(events[-3:]))
    chunks = [json.loads(e) for e in events[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    check(streamed == text, "stream %r vs answer %r" % (streamed, text))
    check(chunks[-1]["usage"]["completion_tokens"] == 12, repr(chunks[-1]))


@test
def model_server_errors_pass_through(env):
    fv = start_fakevllm(env, "a")
    # The proxy knows "b" at fakevllm's port, but fakevllm serves only "a".
    st = Stack(env, [("b", fv, [])], state_msg({"b": (READY_S, fv, 1)}))
    status, _, obj = st.post({"model": "b", "messages": MSG})
    check(status == 404, "status %d %r" % (status, obj))
    check("does not exist" in json.dumps(obj), repr(obj))
    # The model server's own error (vLLM's type), not one the proxy made.
    check(obj.get("error", {}).get("type") == "NotFoundError", repr(obj))


@test
def engine_death_mid_stream_is_visible(env):
    fv = start_fakevllm(env, "a", "--fake-crash-after-tokens", "3")
    st = Stack(env, [("a", fv, [])], state_msg({"a": (READY_S, fv, 1)}))
    status, events = harness.sse_events(st.port, "/v1/chat/completions",
                                        {"model": "a", "messages": MSG, "max_tokens": 50,
                                         "stream": True})
    check(status == 200, repr(events))
    last = json.loads(events[-1])
    check("error" in last, "the stream ended with an error event: %r" % events[-2:])


@test
def client_leaving_a_stalled_stream_frees_the_request(env):
    fv = start_fakevllm(env, "a", "--fake-stall-after-tokens", "2")
    st = Stack(env, [("a", fv, [])], state_msg({"a": (READY_S, fv, 1)}))
    s = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    body = json.dumps({"model": "a", "messages": MSG, "max_tokens": 50, "stream": True}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    got = b""
    while got.count(b"data: ") < 2:
        got += s.recv(4096)
    harness.wait_until(lambda: fake_state(fv).get("requests_stalled", 0) >= 1,
                       what="the stream to stall")
    s.close()
    harness.wait_until(lambda: fake_state(fv).get("requests_stalled", 1) == 0, timeout=15,
                       what="the model server to drop the stalled request")
    st.sup.wait_demand("a", lambda m: m["in_flight"] == 0)


if __name__ == "__main__":
    harness.main()
