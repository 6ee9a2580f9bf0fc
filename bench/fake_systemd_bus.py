#!/usr/bin/env python3
"""A fake systemd on a D-Bus socket, for the bench (this machine has no
systemd): every unit is loaded, active and running, as the fake `systemctl`
says. Speaks what chatstack-status asks (src/probe/systemd_bus.rs): the
EXTERNAL authentication, `Hello`, and `org.freedesktop.DBus.Properties.Get`.

    fake_systemd_bus.py SOCKET [break|mute]   # serves until killed

For the tests: `break` answers `Hello`, then hangs up at the first Get;
`mute` answers `Hello`, then nothing. With `FAKE_BUS_LOG=FILE` set, each
connection accepted appends a line to FILE (the tests count them).

Its CPU is not charged to the daemon measured, as the real systemd's is not.
"""
import os
import socket
import struct
import sys
import threading

VALUES = {  # property: (signature, value)
    "Id": ("s", None),  # the unit's name, from its object path
    "LoadState": ("s", "loaded"), "ActiveState": ("s", "active"), "SubState": ("s", "running"),
    "InvocationID": ("ay", bytes(range(16))), "Result": ("s", "success"), "NRestarts": ("u", 0),
    "ExecMainCode": ("i", 0), "ExecMainStatus": ("i", 0), "ExecMainPID": ("u", 4242),
    "MemoryCurrent": ("t", 50 << 20), "CPUUsageNSec": ("t", 12_000_000_000), "TasksCurrent": ("t", 3),
}


def pad(b, n):
    return b + b"\0" * (-len(b) % n)


def string(b, s):
    b = pad(b, 4)
    s = s.encode()
    return b + struct.pack("<I", len(s)) + s + b"\0"


def sig(b, s):
    return b + bytes([len(s)]) + s.encode() + b"\0"


def value(b, t, v):
    if t == "s":
        return string(b, v)
    if t in ("u", "i"):
        return pad(b, 4) + struct.pack("<I" if t == "u" else "<i", v)
    if t == "t":
        return pad(b, 8) + struct.pack("<Q", v)
    return pad(b, 4) + struct.pack("<I", len(v)) + v  # ay


def reply(to, serial, error=None, signature="", body=b""):
    h = struct.pack("<cBBBIII", b"l", 3 if error else 2, 1, 1, len(body), serial, 0)
    h = pad(h, 8) + b"\x05"
    h = sig(h, "u")
    h = pad(h, 4) + struct.pack("<I", to)
    for code, t, v in ((4, "s", error), (8, "g", signature)):
        if v:
            h = pad(h, 8) + bytes([code])
            h = sig(h, t)
            h = string(h, v) if t == "s" else sig(h, v)
    h = h[:12] + struct.pack("<I", len(h) - 16) + h[16:]
    return pad(h, 8) + body


def parse(msg):
    """serial, path, member, string arguments of a little-endian call."""
    serial, flen = struct.unpack_from("<II", msg, 8)
    pos, end, fields = 16, 16 + flen, {}
    while pos < end:
        pos += -pos % 8
        code, n = msg[pos], msg[pos + 1]
        t = msg[pos + 2:pos + 2 + n].decode()
        pos += 3 + n
        if t in ("s", "o"):
            pos += -pos % 4
            (ln,) = struct.unpack_from("<I", msg, pos)
            fields[code] = msg[pos + 4:pos + 4 + ln].decode()
            pos += 5 + ln
        elif t == "g":
            ln = msg[pos]
            fields[code] = msg[pos + 1:pos + 1 + ln].decode()
            pos += 2 + ln
        else:  # u
            pos += -pos % 4 + 4
    pos += -pos % 8
    args = []
    for _ in fields.get(8, ""):
        pos += -pos % 4
        (ln,) = struct.unpack_from("<I", msg, pos)
        args.append(msg[pos + 4:pos + 4 + ln].decode())
        pos += 5 + ln
    return serial, fields.get(1, ""), fields.get(3, ""), args


def unit_name(path):
    label = path.rsplit("/", 1)[-1]
    out, i = bytearray(), 0
    while i < len(label):
        if label[i] == "_":
            out.append(int(label[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(ord(label[i]))
            i += 1
    return out.decode()


BREAK = sys.argv[2:] == ["break"]
MUTE = sys.argv[2:] == ["mute"]


def serve(conn):
    buf = b""
    while b"BEGIN\r\n" not in buf:
        data = conn.recv(4096)
        if not data:
            return
        if b"AUTH" in data and b"\r\n" in data:
            conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        buf += data
    buf = buf.split(b"BEGIN\r\n", 1)[1]
    serial = 0
    while True:
        out = []
        while len(buf) >= 16:
            body, flen = struct.unpack_from("<I", buf, 4)[0], struct.unpack_from("<I", buf, 12)[0]
            total = 16 + flen + (-(16 + flen) % 8) + body
            if len(buf) < total:
                break
            msg, buf = buf[:total], buf[total:]
            to, path, member, args = parse(msg)
            serial += 1
            if member == "Hello":
                out.append(reply(to, serial, signature="s", body=string(b"", ":1.1")))
            elif BREAK:
                conn.close()
                return
            elif MUTE:
                continue
            elif member == "Get" and len(args) == 2 and args[1] in VALUES:
                t, v = VALUES[args[1]]
                v = unit_name(path) if v is None else v
                out.append(reply(to, serial, signature="v", body=value(sig(b"", t), t, v)))
            else:
                out.append(reply(to, serial, error="org.freedesktop.DBus.Error.UnknownProperty"))
        if out:
            conn.sendall(b"".join(out))
        data = conn.recv(65536)
        if not data:
            return
        buf += data


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sys.argv[1])
    s.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        if os.environ.get("FAKE_BUS_LOG"):
            with open(os.environ["FAKE_BUS_LOG"], "a") as log:
                log.write("connected\n")
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
