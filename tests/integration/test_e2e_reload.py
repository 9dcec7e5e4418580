#!/usr/bin/env python3
"""test_e2e_reload.py -- config reloads under load. Clients keep a and b
busy (switching between them) while the config is reloaded, by
`llmuxctl reload` and by SIGHUP, over and over: a model c is added
(and served), b's eviction and arguments change, an invalid file is
refused with the running config kept, c is removed while requests for
it wait. Every request for a and b is answered by its model, each one
for c is answered or refused with 404; the daemons exit cleanly."""
import signal
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack

ARGS = ["--fake-token-ms", "3", "--fake-wake-ms", "100", "--fake-sleep-level1-ms", "50"]


@harness.test
def reloads_under_load(env):
    models = {"a": {"eviction": "offload+keep_running", "args": ARGS},
              "b": {"eviction": "offload+keep_running", "args": ARGS}}
    s = Stack(env, models).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    load = Load(c, mix(["a", "b"], stream=0.4), clients=4)
    progress(ledger, 20)
    generation = s.status()["supervisor"]["config_generation"]

    def reload(how):
        nonlocal generation
        s.sup.write_config(models, s.sup.extra)
        if how == "ctl":
            out = s.sup.ctl_ok("reload")
            check("reloaded" in out.lower(), out)
        else:
            s.sup.proc.signal(signal.SIGHUP)
        generation += 1
        wait_until(lambda: s.status()["supervisor"]["config_generation"] == generation, 20,
                   "config generation %d" % generation)

    for i in range(scale(2, 15)):
        how = ("ctl", "hup")[i % 2]
        # Add c; serve it beside the load.
        models["c"] = {"eviction": "discard+keep_running", "args": ARGS}
        reload(how)
        wait_until(lambda: "c" in s.status()["models"], 10, "c known")
        o = c.send("c", stream=True)
        check(o.kind == "ok", "c, added, is served: %r" % o)
        # Change b: another eviction and another argument.
        models["b"] = {"eviction": ("discard+keep_running", "offload+keep_running")[i % 2],
                       "args": ARGS + ["--max-model-len", str(4096 * (i + 1))]}
        reload(how)
        progress(ledger, 10, "b")
        # An invalid file is refused; the running config stays.
        with open(s.sup.config_path, "a") as f:
            f.write("policy: [not, a, map]\n")
        rc, out, err = s.sup.ctl("reload")
        check(rc == 1 and "policy" in out + err, (rc, out, err))
        progress(ledger, 10)
        # Remove c while requests for it wait (a and b stay busy): each is
        # served or refused.
        late = [threading.Thread(target=c.send, args=("c",), daemon=True) for i in range(3)]
        for t in late:
            t.start()
        del models["c"]
        reload(how)
        wait_until(lambda: "c" not in s.status()["models"], 20, "c gone")
        for t in late:
            t.join(60)
            check(not t.is_alive(), "a request for c is stuck")
        o = c.send("c")
        check(o.kind == "error" and o.status == 404 and o.code == "model_not_found", repr(o))
        progress(ledger, 10)
        say("round %d: %s", i, ledger.summary())
    load.stop()
    idle(s)
    ledger.check(allow=[(404, "model_not_found")], models=("c",))
    check(s.sup.proc.alive(), "the supervisor lives")
    check(c.send("a").kind == "ok" and c.send("b").kind == "ok", "a and b serve on")
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
