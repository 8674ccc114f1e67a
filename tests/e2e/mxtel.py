# SPDX-License-Identifier: BSD-3-Clause
"""A small client for mxgate-dp's DPDK telemetry socket.

The socket is /var/run/dpdk/<file_prefix>/dpdk_telemetry.v2 (SOCK_SEQPACKET).
On connect the server sends one JSON blob about itself; then each command
string sent gets exactly one JSON reply, {"<command without params>": value}.
A path-based unix socket is reachable from any network namespace.

DPDK 22.11 sends each reply as one message of at most 16 KiB, so /mxgate/stats
is read a row at a time (/mxgate/stats,N and /mxgate/stats,total): stats()
does that. Usage: mxtel.py [PREFIX [COMMAND...]]; without commands it prints
every row of /mxgate/stats.
"""

import json
import os
import socket
import time

RUNTIME_DIR = "/var/run/dpdk"


def socket_path(file_prefix, runtime_dir=RUNTIME_DIR):
    return os.path.join(runtime_dir, file_prefix, "dpdk_telemetry.v2")


class TelemetryError(RuntimeError):
    """The dataplane answered a command with {"error": ...} or null."""


class Telemetry:
    """One connection; use as a context manager or call close()."""

    def __init__(self, file_prefix, timeout=10.0, connect_timeout=5.0, runtime_dir=RUNTIME_DIR):
        self.path = socket_path(file_prefix, runtime_dir)
        deadline = time.monotonic() + connect_timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.settimeout(timeout)
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self.sock = sock
        self.info = json.loads(self._recv(64 * 1024))
        self.bufsize = max(64 * 1024, int(self.info.get("max_output_len", 0)) + 1)

    def _recv(self, n):
        data = self.sock.recv(n)
        if not data:
            raise ConnectionError(f"{self.path}: the dataplane closed the telemetry socket")
        return data.decode()

    def raw(self, command):
        """Sends COMMAND ("/mxgate/ping,198.51.100.1,3") and returns the whole reply dict."""
        self.sock.send(command.encode())
        return json.loads(self._recv(self.bufsize))

    def cmd(self, command):
        """Sends COMMAND and returns its value (None for an unknown command)."""
        return self.raw(command).get(command.split(",", 1)[0])

    def stats_row(self, row="total"):
        """The counters of one row of /mxgate/stats: "total", "workerN" or N. One row is one
        reply, so any number of workers fits DPDK's 16 KiB limit."""
        page = str(row).removeprefix("worker")
        value = self.cmd(f"/mxgate/stats,{page}")
        if not isinstance(value, dict) or "error" in value:
            raise TelemetryError(f"/mxgate/stats,{page}: {value}")
        return value

    def stats(self):
        """Every row of /mxgate/stats ({"worker0": {...}, ..., "total": {...}}), page by page:
        the whole table may exceed one reply, which the dataplane then refuses to send."""
        workers = self.cmd("/mxgate/info")["workers"]
        rows = {f"worker{n}": self.stats_row(n) for n in range(workers)}
        rows["total"] = self.stats_row("total")
        return rows

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    import sys

    prefix = sys.argv[1] if len(sys.argv) > 1 else "mxgate"
    with Telemetry(prefix) as tel:
        if len(sys.argv) <= 2:  # every counter of every worker, read page by page
            print(json.dumps({"/mxgate/stats": tel.stats()}, indent=2))
        for c in sys.argv[2:]:
            print(json.dumps(tel.raw(c), indent=2))
