"""Loaded by every Python process of a test run (PYTHONPATH): refuse and log any non-loopback connection.

Kernels talk to papermill over loopback TCP, which stays allowed; anything else (a hub, a registry, a
telemetry endpoint) is refused and written to $BIG5CHAT_NETLOG, which the test reads.
"""

import os
import socket

_LOG = os.environ.get("BIG5CHAT_NETLOG")
_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


def _record(what):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {what}\n")


def _loopback(addr):
    host = addr[0] if isinstance(addr, tuple) else addr
    return host in _LOCAL or str(host).startswith("127.")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, addr):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(addr):
        _record(f"connect {addr!r}")
        raise OSError(101, "network access blocked by the big5chat test")
    return _connect(self, addr)


def connect_ex(self, addr):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(addr):
        _record(f"connect_ex {addr!r}")
        return 101
    return _connect_ex(self, addr)


def getaddrinfo(host, *args, **kwargs):
    if not _loopback((host,)):
        _record(f"getaddrinfo {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "name resolution blocked by the big5chat test")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo
