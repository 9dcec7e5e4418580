#!/usr/bin/env python3
"""test_switch_failures.py -- switches that fail, through the whole stack:
a wake the model refuses is answered 503 with its reason and the model is
backed off before the next try; a wake that hangs is given up (503) and the
half-woken model stopped; a model that cannot start says why; and every
request ends in one answer or one explicit error."""
import harness
from harness import check, wait_until
from supervisor_helpers import alive
from switch_helpers import Parallel, Stack

OFFLOAD = "offload+keep_running"


def error(body):
    check(isinstance(body, dict) and "error" in body, "an OpenAI error: %r" % (body,))
    return body["error"]


@harness.test
def failed_wake_is_503_then_backoff(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD},
                    "b": {"eviction": OFFLOAD, "args": ["--fake-fail-wake"]}}).start()
    s.served("b")
    s.served("a")
    # b's /wake_up answers 500: the request gets the reason.
    st, body = s.chat("b")
    check(st == 503, (st, body))
    e = error(body)
    check(e["code"] == "model_failed", e)
    check("wake_up failed: the model answered 500" in e["message"], e)
    log = s.sup_log()
    check('msg="switch failed" from=a to=b' in log and "backoff_ms=2000" in log, log)
    check(s.metric("llmux_switch_failures_total", to="b") == 1, s.metrics())
    m = s.status()["models"]["b"]
    check(m["state"] == "failed" and m["pid"] is None, "the half-woken b stopped: %r" % m)
    # The next request waits out the backoff, then b starts afresh.
    p = Parallel()
    p.run(s.chat, "b", text="after the failure")
    wait_until(lambda: s.status()["models"]["b"]["queue_depth"] == 1, 10, "queued")
    (st, body), = p.join()
    check(st == 200 and body["model"] == "b", (st, body))
    check(s.status()["models"]["b"]["starts"] == 2, "a cold start: %r" % s.status())
    log = s.sup_log()
    # The first start, the failed wake, the start after the backoff.
    check(log.count('msg="switch started" from=a to=b') == 1 and
          log.count('msg="switch started" from=none to=b') == 2, log)


@harness.test
def hung_wake_times_out(env):
    # b's /wake_up never answers; a warm wake is given up after b's
    # startup timeout (2 s here) and 5 s of grace for the engine's own.
    s = Stack(env, {"a": {"eviction": OFFLOAD},
                    "b": {"eviction": OFFLOAD, "args": ["--fake-hang-wake"],
                          "startup_timeout_secs": 2}}).start()
    s.served("b")
    pid = s.status()["models"]["b"]["pid"]
    s.served("a")
    st, body = s.chat("b", timeout=60)
    check(st == 503, (st, body))
    e = error(body)
    check(e["code"] == "model_failed" and "timed out after 7 s waking b" in e["message"], e)
    wait_until(lambda: s.status()["models"]["b"]["pid"] is None, 20, "the hung b stopped")
    wait_until(lambda: not alive(pid), 20, "its process gone")
    check("timed out" in s.status()["models"]["b"]["last_error"], s.status()["models"]["b"])
    # A cold start does not call /wake_up: the next request is served.
    check(s.served("b", timeout=60) == "b", "b started afresh")


@harness.test
def start_failure_says_why(env):
    s = Stack(env, {"a": {}, "b": {"args": ["--fake-exit-during-startup=3"]}}).start()
    s.served("a")
    p = Parallel()
    for i in range(3):
        p.run(s.chat, "b", text="try %d" % i)
    for st, body in p.join():
        check(st == 503, (st, body))
        e = error(body)
        check("exited with status 3 while starting" in e["message"], e)
    # a was evicted for b and is woken again on demand.
    check(s.served("a") == "a", "a again")


if __name__ == "__main__":
    harness.main()
