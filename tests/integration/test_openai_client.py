"""test_openai_client.py -- the `openai` npm client talks to llmux-proxyd in
front of llmux-fakevllm: models, chat, streaming chat (the same text), an
unknown model and a wrong API key (the client sees the error object's
code, type and param), a stream whose engine dies (the client sees an
error, never a hang), and embeddings.create against a model served with
--task embed (base64, as the client asks by default, and floats: the same
vectors).

The package is installed with npm into build/npm (not committed); the test
fails clearly when npm cannot install it."""
import json
import os
import shutil
import subprocess

import harness
from harness import test, check
from fakesup import READY_S, state_msg
from proxykit import Stack

OPENAI_VERSION = "4.95.0"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai-client.mjs")


@test
def openai_client_talks_to_the_proxy(env):
    harness.npm_install("openai", OPENAI_VERSION)
    ports = {}
    for name, extra in (("a", ["--served-model-name", "a", "gpt-a"]),
                        ("c", ["--fake-crash-after-tokens", "2"]),
                        ("e", ["--task", "embed"])):
        ports[name] = harness.free_port()
        env.spawn("fakevllm-" + name, [harness.binary("llmux-fakevllm"), "serve", name, "--port",
                                       str(ports[name]), "--fake-fast"] + extra)
        harness.wait_until(lambda p=ports[name]: harness.http(p, "GET", "/health")[0] == 200)
    st = Stack(env, [("a", ports["a"], ["gpt-a"]), ("c", ports["c"], []), ("e", ports["e"], [])],
               state_msg({"a": (READY_S, ports["a"], 1), "c": (READY_S, ports["c"], 1),
                          "e": (READY_S, ports["e"], 1)}),
               api_keys=["sk-test"])
    script = os.path.join(harness.NPM_DIR, "openai-client.mjs")
    shutil.copy(SCRIPT, script)  # so that `import 'openai'` finds build/npm/node_modules
    p = subprocess.run(["node", script, "http://127.0.0.1:%d/v1" % st.port, "sk-test"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "node failed:\n%s\n%s" % (p.stdout.decode(), p.stderr.decode()))
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    check(out["models"] == ["a", "c", "e", "gpt-a"], repr(out))
    check(out["chat"] and out["stream"] == out["chat"], repr(out))
    # The client sees the error object's type and param, as from OpenAI.
    check(out["unknown"] == {"status": 404, "code": "model_not_found",
                             "type": "invalid_request_error", "param": "model",
                             "name": "NotFoundError"}, repr(out))
    check(out["wrong_key"] == {"status": 401, "code": "invalid_api_key",
                               "type": "invalid_request_error", "param": None,
                               "name": "AuthenticationError"}, repr(out))
    check("error" in out["dying"], repr(out))
    e = out["embeddings"]
    check(e["n"] == 2 and e["dim"] == 32 and abs(e["norm"] - 1) < 1e-5 and e["same"] and
          e["differ"] and e["usage"] == 4 and e["model"] == "e", repr(e))


if __name__ == "__main__":
    harness.main()
