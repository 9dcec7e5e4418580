"""holder.py -- a PyTorch process holding GB gigabytes of known data on
GPU 0, for tests/gpu/device-run.sh (the GPU module check with a PyTorch
process, as vLLM is one). Prints "READY pid=PID", waits for a line on
stdin, then checks its data on the GPU and prints "DATA OK" or
"DATA CORRUPT" (exit 0 or 1)."""
import os
import sys

import torch

gb = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
n = int(gb * (1 << 30)) // 4
torch.manual_seed(1234)
x = torch.rand(n, device="cuda:0")
head, tail = x[:1 << 20].cpu(), x[-(1 << 20):].cpu()
total = torch.sum(x, dtype=torch.float64).item()
torch.cuda.synchronize()
print("READY pid=%d" % os.getpid(), flush=True)
sys.stdin.readline()
# After a suspend and resume, the same bytes must be there.
ok = (torch.equal(x[:1 << 20].cpu(), head) and torch.equal(x[-(1 << 20):].cpu(), tail)
      and torch.sum(x, dtype=torch.float64).item() == total)
print("DATA OK" if ok else "DATA CORRUPT", flush=True)
sys.exit(0 if ok else 1)
