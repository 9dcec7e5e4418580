"""pty_helpers.py -- running a program on a pseudo-terminal (Python's pty
module) as a person would in a terminal of a given size, and a small
screen that interprets what `llmuxctl top` writes (cursor moves, clearing
to the end of a line or of the screen, attributes, the alternate screen
and the cursor's visibility), so a test reads the screen as it is shown."""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time

from harness import check

CSI = re.compile(rb"\x1b\[([?0-9;]*)([A-Za-z])")


class Screen:
    """The visible screen: rows of characters, nothing else."""

    def __init__(self, cols, rows):
        self.cols, self.rows = cols, rows
        self.lines = [[" "] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.alternate = False
        self.cursor_shown = True
        self.pending = b""
        self.overflow = 0       # characters written past the last column

    def feed(self, data):
        data = self.pending + data
        self.pending = b""
        i = 0
        while i < len(data):
            if data[i] == 0x1b:
                m = CSI.match(data, i)
                if m is None:
                    if len(data) - i < 16:      # a sequence cut in two
                        self.pending = data[i:]
                        return
                    i += 1
                    continue
                self._csi(m.group(1).decode(), m.group(2).decode())
                i = m.end()
                continue
            ch = data[i]
            i += 1
            if ch == 0x0d:
                self.c = 0
            elif ch == 0x0a:
                self.r = min(self.r + 1, self.rows - 1)
            elif ch >= 0x20:
                if self.c >= self.cols:
                    self.overflow += 1
                    continue
                self.lines[self.r][self.c] = chr(ch)
                self.c += 1

    def _csi(self, args, op):
        if args.startswith("?"):
            on = op == "h"
            if args == "?1049":
                self.alternate = on
                self.clear()
            elif args == "?25":
                self.cursor_shown = on
            return
        nums = [int(x) if x else 0 for x in args.split(";")] if args else []
        if op == "H":
            self.r = max(1, nums[0] if nums else 1) - 1
            self.c = max(1, nums[1] if len(nums) > 1 else 1) - 1
            self.r = min(self.r, self.rows - 1)
        elif op == "K":
            for c in range(self.c, self.cols):
                self.lines[self.r][c] = " "
        elif op == "J":
            n = nums[0] if nums else 0
            if n == 2:
                self.clear()
            else:
                for c in range(self.c, self.cols):
                    self.lines[self.r][c] = " "
                for r in range(self.r + 1, self.rows):
                    self.lines[r] = [" "] * self.cols

    def clear(self):
        self.lines = [[" "] * self.cols for _ in range(self.rows)]

    def text(self):
        return "\n".join("".join(l).rstrip() for l in self.lines)


class Pty:
    """A program on a pseudo-terminal of cols x rows."""

    def __init__(self, env, name, argv, cols=80, rows=24):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        self.screen = Screen(cols, rows)
        self.raw = b""
        self.log = open(env.path(name + ".pty"), "wb")
        self.p = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave,
                                  stderr=self.slave, start_new_session=True,
                                  preexec_fn=self._ctty)
        env.procs.append(self)
        self.name = name
        self.argv = argv

    def _ctty(self):
        # The terminal becomes the child's controlling terminal.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def pump(self, timeout=0.2):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        self.raw += data
        self.log.write(data)
        self.log.flush()
        self.screen.feed(data)
        return True

    def wait_screen(self, pred, timeout=20, what="the screen"):
        deadline = time.monotonic() + timeout
        while True:
            if pred(self.screen.text()):
                return self.screen.text()
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; screen:\n%s"
                                     % (what, self.screen.text()))
            self.pump(0.1)

    def send(self, data):
        os.write(self.master, data)

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def finish(self, timeout=10):
        """Wait for the exit, reading what it writes; returns the status."""
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        while self.pump(0.05):
            pass
        check(self.p.poll() is not None, "%s did not exit" % self.name)
        return self.p.returncode

    def after(self):
        return termios.tcgetattr(self.slave)

    # As an Env process: stopped and closed at the end of the test.
    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=5.0):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait(timeout)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        return self.p.returncode

    def output(self):
        return self.raw.decode("utf-8", "replace")[-4000:]
