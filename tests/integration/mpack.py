"""mpack.py -- a small msgpack encoder and decoder (standard library only)
for the scripted supervisor of the integration tests, and the framing of
the supervisor socket (4-byte big-endian length, then one msgpack map)."""
import struct


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if 0 <= v <= 0xff:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v <= 0xffff:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v <= 0xffffffff:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n <= 0xff:
            return b"\xd9" + bytes([n]) + b
        if n <= 0xffff:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n <= 0xff:
            return b"\xc4" + bytes([n]) + bytes(v)
        if n <= 0xffff:
            return b"\xc5" + struct.pack(">H", n) + bytes(v)
        return b"\xc6" + struct.pack(">I", n) + bytes(v)
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else (
            b"\xdc" + struct.pack(">H", n) if n <= 0xffff else b"\xdd" + struct.pack(">I", n))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else (
            b"\xde" + struct.pack(">H", n) if n <= 0xffff else b"\xdf" + struct.pack(">I", n))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError("cannot pack %r" % (v,))


class _Reader:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("truncated msgpack")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def value(self):
        c = self.take(1)[0]
        if c <= 0x7f:
            return c
        if c >= 0xe0:
            return c - 0x100
        if 0x80 <= c <= 0x8f:
            return self.map(c & 0x0f)
        if 0x90 <= c <= 0x9f:
            return [self.value() for _ in range(c & 0x0f)]
        if 0xa0 <= c <= 0xbf:
            return self.take(c & 0x1f).decode()
        simple = {0xc0: None, 0xc2: False, 0xc3: True}
        if c in simple:
            return simple[c]
        fmt = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
               0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q",
               0xca: ">f", 0xcb: ">d"}
        if c in fmt:
            f = fmt[c]
            return struct.unpack(f, self.take(struct.calcsize(f)))[0]
        if c in (0xd9, 0xda, 0xdb):
            n = struct.unpack({0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[c],
                              self.take({0xd9: 1, 0xda: 2, 0xdb: 4}[c]))[0]
            return self.take(n).decode()
        if c in (0xc4, 0xc5, 0xc6):
            n = struct.unpack({0xc4: ">B", 0xc5: ">H", 0xc6: ">I"}[c],
                              self.take({0xc4: 1, 0xc5: 2, 0xc6: 4}[c]))[0]
            return bytes(self.take(n))
        if c in (0xdc, 0xdd):
            n = struct.unpack(">H" if c == 0xdc else ">I", self.take(2 if c == 0xdc else 4))[0]
            return [self.value() for _ in range(n)]
        if c in (0xde, 0xdf):
            n = struct.unpack(">H" if c == 0xde else ">I", self.take(2 if c == 0xde else 4))[0]
            return self.map(n)
        raise ValueError("unsupported msgpack byte 0x%02x" % c)

    def map(self, n):
        out = {}
        for _ in range(n):
            k = self.value()
            out[k] = self.value()
        return out


def unpack(data):
    r = _Reader(data)
    v = r.value()
    if r.i != len(data):
        raise ValueError("trailing bytes after msgpack value")
    return v


def frame(msg):
    p = pack(msg)
    return struct.pack(">I", len(p)) + p


def read_frame(sock):
    """One decoded frame from a blocking socket, or None at EOF."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = _recv_exact(sock, n)
    if body is None:
        return None
    return unpack(body)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
