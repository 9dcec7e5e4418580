"""test_fakevllm_faults.py -- llmux-fakevllm's injected failures (from the
command line and from POST /fake/faults), and its process tree with
--fake-engine-process: what happens when either process is killed."""
import json
import os
import signal
import threading

import harness
from harness import check, http, test, wait_until

import fakevllm_helpers as fv


def arm(port, fault, **kw):
    body = {"fault": fault}
    body.update(kw)
    status, obj = fv.post(port, "/fake/faults", body)
    check(status == 200, "arm %s: %d %r" % (fault, status, obj))
    return obj


def background(fn):
    """Run fn in a thread; a hung call it makes may die with the server."""
    def run():
        try:
            fn()
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@test
def fail_sleep_from_the_command_line(env):
    p, port = fv.start(env, "--fake-fail-sleep")
    status, obj = fv.post(port, "/sleep?level=1")
    check(status == 500 and obj["error"]["type"] == "InternalServerError", obj)
    check(not fv.state(port)["is_sleeping"])
    check(fv.post(port, "/sleep?level=1")[0] == 200)   # only the next one failed
    check(fv.state(port)["is_sleeping"])


@test
def fail_wake_and_reload_from_the_admin_route(env):
    p, port = fv.start(env)
    arm(port, "fail_wake")
    check(fv.post(port, "/sleep?level=2")[0] == 200)
    status, obj = fv.post(port, "/wake_up")
    check(status == 500 and "wake_up failed" in obj["error"]["message"], obj)
    check(fv.state(port)["is_sleeping"])
    check(fv.post(port, "/wake_up")[0] == 200)
    arm(port, "fail_reload", count=2)
    for _ in range(2):
        status, obj = fv.post(port, "/collective_rpc", {"method": "reload_weights"})
        check(status == 500, obj)
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    check(fv.chat(port, "works")[0] == 200)


@test
def hang_sleep_leaves_health_answering(env):
    p, port = fv.start(env)
    arm(port, "hang_sleep")
    background(lambda: http(port, "POST", "/sleep?level=1", timeout=600))
    wait_until(lambda: fv.state(port)["busy"], what="the sleep hangs")
    check(fv.health(port) == 200)
    check(http(port, "GET", "/v1/models")[0] == 200)
    st = fv.state(port)
    check(st["busy"] and st["sleeps"] == 0, st)
    p.signal(signal.SIGTERM)
    rc = fv.exit_code(p)
    check(rc == 0, "SIGTERM while hung: exit %s" % rc)


@test
def hang_wake_from_the_command_line(env):
    p, port = fv.start(env, "--fake-hang-wake")
    check(fv.post(port, "/sleep?level=1")[0] == 200)
    background(lambda: http(port, "POST", "/wake_up", timeout=600))
    wait_until(lambda: fv.state(port)["busy"], what="the wake hangs")
    check(fv.health(port) == 200)
    check(fv.state(port)["is_sleeping"])


@test
def crash_during_a_stream(env):
    p, port = fv.start(env)
    arm(port, "crash_stream", after=3)
    s = fv.Stream(port, fv.chat_body("crash", 50, stream=True))
    s.wait()
    check(len(s.tokens()) == 3 and not s.ended_with_done(), s.events)
    rc = fv.exit_code(p)
    check(rc != 0, "a crashed server exited %s" % rc)
    check(fv.log_has(p, "engine crashed"), p.output())


@test
def crash_in_the_engine_process_fails_requests(env):
    p, port = fv.start(env, "--fake-engine-process", "--fake-crash-after-tokens", "3")
    s = fv.Stream(port, fv.chat_body("crash", 50, stream=True))
    s.wait()
    check(len(s.tokens()) == 3, s.events)
    check(s.ended_with_done(), s.events)
    err = json.loads(s.events[-2])["error"]
    check(err["code"] == 500 and "EngineCore" in err["message"], err)
    rc = fv.exit_code(p)
    check(rc == 1, "the API server exited %s" % rc)
    check(fv.log_has(p, "died unexpectedly"), p.output())


@test
def stalled_stream(env):
    p, port = fv.start(env, "--fake-stall-after-tokens", "2")
    s = fv.Stream(port, fv.chat_body("stall", 50, stream=True))
    wait_until(lambda: fv.state(port)["requests_stalled"] == 1, what="stall")
    wait_until(lambda: len(s.tokens()) == 2, what="the tokens before the stall")
    check(not s.done.is_set(), s.events)
    # Other requests are served meanwhile; only that stream is stuck.
    check(fv.chat(port, "other")[0] == 200)
    s2 = fv.Stream(port, fv.chat_body("other", 4, stream=True))
    s2.wait()
    check(len(s2.tokens()) == 4, s2.events)
    s.close()
    wait_until(lambda: fv.state(port)["requests_stalled"] == 0, what="abort")
    # From the admin route: every stream, after one token.
    arm(port, "stall_stream", count=-1, arg=1)
    s3 = fv.Stream(port, fv.chat_body("x", 9, stream=True))
    wait_until(lambda: fv.state(port)["requests_stalled"] == 1, what="stall again")
    wait_until(lambda: len(s3.tokens()) == 1, what="one token before the stall")
    s3.close()


@test
def health_500(env):
    p, port = fv.start(env)
    arm(port, "health_500", count=-1)
    check(fv.health(port) == 500 and fv.health(port) == 500)
    check(fv.state(port)["faults"]["health_500"]["count"] == -1)
    arm(port, "health_500", count=0)
    check(fv.health(port) == 200)
    arm(port, "health_500", count=1)
    check(fv.health(port) == 500 and fv.health(port) == 200)
    p2, port2 = fv.start(env, "--fake-health-500", wait=False, name="sick")
    wait_until(lambda: fv.state(port2)["ready"], what="started")
    check(fv.health(port2) == 500)


@test
def exit_during_startup(env):
    p, port = fv.start(env, "--fake-exit-during-startup=3", "--fake-startup-ms",
                       "400", wait=False)
    rc = fv.exit_code(p)
    check(rc == 3, "exit %s" % rc)
    check(not fv.log_has(p, "Application startup complete."), p.output())
    p2, port2 = fv.start(env, "--fake-exit-during-startup", "--fake-engine-process",
                         wait=False, name="engine")
    rc = fv.exit_code(p2)
    check(rc == 1, "exit %s" % rc)
    check(fv.log_has(p2, "Engine core initialization failed."), p2.output())


@test
def fault_admin_route_validates(env):
    p, port = fv.start(env)
    for body in ({"fault": "explode"}, {"fault": 3}, {}, {"fault": "fail_sleep",
                                                          "count": "x"},
                 {"fault": "fail_sleep", "count": -2}, {"fault": "exit_startup"}):
        status, obj = fv.post(port, "/fake/faults", body)
        check(status == 400, "%r: %d %r" % (body, status, obj))
    status, _, data = http(port, "POST", "/fake/faults", body="{bad",
                           headers={"Content-Type": "application/json"})
    check(status == 400, data)
    arm(port, "fail_sleep", count=2)
    arm(port, "health_500", count=1)
    status, obj = harness.http_json(port, "GET", "/fake/faults")
    check(obj["faults"]["fail_sleep"]["count"] == 2, obj)
    check(obj["faults"]["health_500"]["count"] == 1, obj)
    status, obj = fv.post(port, "/fake/faults", {"fault": "clear"})
    check(status == 200, obj)
    status, obj = harness.http_json(port, "GET", "/fake/faults")
    check(obj == {"faults": {}}, obj)
    check(fv.post(port, "/sleep?level=1")[0] == 200)


@test
def engine_process_tree(env):
    p, port = fv.start(env, "--fake-engine-process", "--fake-weights-mb", "8")
    st = fv.state(port)
    child = st["engine_pid"]
    check(child != p.pid and st["pid"] == p.pid, st)
    with open("/proc/%d/comm" % child) as f:
        check(f.read().strip() == "VLLM::EngineCor")
    with open("/proc/%d/stat" % child) as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    check(ppid == p.pid, (ppid, p.pid))
    a = fv.content_of(fv.chat(port, "through the engine", max_tokens=10)[1])
    p2, port2 = fv.start(env, name="inproc")
    b = fv.content_of(fv.chat(port2, "through the engine", max_tokens=10)[1])
    check(a == b, (a, b))
    check(fv.post(port, "/sleep?level=2")[0] == 200)
    check(fv.post(port, "/wake_up")[0] == 200)
    check(fv.chat(port, "x")[0] == 500)
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    check(fv.chat(port, "x")[0] == 200)


@test
def killing_the_engine_process_fails_requests_and_exits(env):
    p, port = fv.start(env, "--fake-engine-process", "--fake-token-ms", "20")
    child = fv.state(port)["engine_pid"]
    s = fv.Stream(port, fv.chat_body("doomed", 5000, stream=True))
    wait_until(lambda: len(s.tokens()) >= 2, what="tokens flowing")
    res = {}
    background(lambda: res.update(r=http(port, "POST", "/sleep?level=1&mode=wait",
                                         timeout=60)))
    wait_until(lambda: fv.state(port)["busy"], what="sleep waiting on the stream")
    os.kill(child, signal.SIGKILL)
    s.wait()
    check(s.ended_with_done(), s.events)
    err = json.loads(s.events[-2])["error"]
    check(err["type"] == "InternalServerError", err)
    rc = fv.exit_code(p)
    check(rc == 1, "exit %s" % rc)
    wait_until(lambda: "r" in res, what="the pending sleep answered")
    check(res["r"][0] == 500, res)


@test
def killing_the_api_server_takes_the_engine_down(env):
    p, port = fv.start(env, "--fake-engine-process")
    child = fv.state(port)["engine_pid"]
    check(not fv.gone(child))
    os.kill(p.pid, signal.SIGKILL)
    fv.exit_code(p)
    wait_until(lambda: fv.gone(child), what="the engine process exits")


@test
def sigterm_stops_both_processes(env):
    p, port = fv.start(env, "--fake-engine-process", "--fake-token-ms", "20")
    child = fv.state(port)["engine_pid"]
    s = fv.Stream(port, fv.chat_body("bye", 5000, stream=True))
    wait_until(lambda: len(s.tokens()) >= 1, what="tokens flowing")
    p.signal(signal.SIGTERM)
    rc = fv.exit_code(p)
    check(rc == 0, "exit %s" % rc)
    wait_until(lambda: fv.gone(child), what="the engine process exits")


if __name__ == "__main__":
    harness.main()
