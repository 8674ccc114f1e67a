# SPDX-License-Identifier: BSD-3-Clause
"""mxgate-gen's SMTP roles against mxgate-dp over net_memif (issue #8).

    mxgate-gen --mode smtp  --memif c.sock-->  mxgate-dp  --memif s.sock-->  mxgate-gen --mode sink
       203.0.113.2                  203.0.113.1 | 198.51.100.1                    198.51.100.20

Two or three DPDK processes joined by memif sockets in a temporary folder of
the test's own: no network namespace, nothing reaches the host's interfaces.
mxgate-dp is the memif server (hugepages, --in-memory), each mxgate-gen a
client (--no-huge, a file prefix of its own); every one runs with --no-pci.
What the generator says it got acknowledged must be what the gateway's
counters say it accepted and, in store mode, what the sink received.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import MXGATE_DP, SANITIZED_ENV, TOP, sanitizer_report
from mxtel import RUNTIME_DIR, Telemetry

MXGATE_GEN = os.environ.get("MXGATE_GEN", str(TOP / "build-test/dataplane/gen/mxgate-gen"))
READY_TIMEOUT_S = 20.0
RUN_TIMEOUT_S = 90

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: DPDK with hugepages")


def dp_config(d, prefix, ack, store=False):
    """mxgate-dp: memif server toward the client, and in store mode one toward the sink."""
    text = f"""\
dataplane:
  main_core: 0
  worker_cores: [0]
  idle_sleep_us: 20
  memory: {{mode: hugepages, size_mb: 256, in_memory: true, file_prefix: {prefix}}}
  ports:
    - name: clients
      device: net_memif0,role=server,socket={d}/c.sock,socket-abstract=no,mac=02:6d:78:00:00:01
      addresses: [203.0.113.1/24]
"""
    if store:
        text += f"""\
    - name: nexthop
      device: net_memif1,role=server,socket={d}/s.sock,socket-abstract=no,mac=02:6d:78:00:01:01
      addresses: [198.51.100.1/24]
"""
    text += f"""\
listeners:
  - name: mx
    port: 25
    ack: {ack}
    hostname: mx.example.com
policy:
  relay_domains: [example.com]
  relay_networks: [203.0.113.0/24]
"""
    if store:
        text += f"""\
routes:
  domains:
    - domain: example.com
      next_hops:
        - {{address: 198.51.100.20, port: 25}}
spool:
  directory: {d}/spool
  segment_mb: 64
  staging_mb: 16
relay:
  helo_name: mx.example.com
  retry_first_s: 1
  retry_max_s: 2
"""
    return text


def gen_config(d, prefix, sock, mac, addr):
    return f"""\
dataplane:
  main_core: 1
  worker_cores: [1]
  idle_sleep_us: 20
  memory: {{mode: no-huge, size_mb: 256, in_memory: false, file_prefix: {prefix}}}
  ports:
    - name: memif0
      device: net_memif0,role=client,socket={d}/{sock},socket-abstract=no,mac={mac}
      addresses: [{addr}/24]
"""


class Procs:
    """The processes of one test, stopped by PID at the end, their logs checked."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxgen")  # short: memif socket paths
        self.n = f"{os.getpid()}_{time.monotonic_ns() % 100000}"
        self.procs = []  # (name, Popen, log path, prefix)

    def start(self, name, args, prefix):
        log = os.path.join(self.dir, f"{name}.log")
        with open(log, "wb") as out:
            p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=SANITIZED_ENV)
        self.procs.append((name, p, log, prefix))
        return p

    def log(self, name):
        for n, _, log, _ in self.procs:
            if n == name:
                with open(log, errors="replace") as f:
                    return f.read()
        return ""

    def logs(self):
        return "".join(f"--- {n} ---\n{self.log(n)}" for n, *_ in self.procs)

    def wait(self, name, timeout=RUN_TIMEOUT_S):
        p = next(p for n, p, *_ in self.procs if n == name)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running after {timeout} s\n{self.logs()}")

    def stop(self):
        problems = []
        for name, p, log, prefix in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
            report = sanitizer_report(self.log(name))
            if report:
                problems.append(f"sanitizer report from {name}:\n{report}")
            shutil.rmtree(os.path.join(RUNTIME_DIR, prefix), ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


@pytest.fixture
def procs():
    p = Procs()
    yield p
    problems = p.stop()
    if problems:
        pytest.fail("\n".join(problems) + "\n" + p.logs(), pytrace=False)


def start_gateway(procs, ack, store=False):
    if not MXGATE_DP.is_file() or not os.path.isfile(MXGATE_GEN):
        pytest.fail(f"build mxgate-dp and mxgate-gen first (MXGATE_DP={MXGATE_DP}, "
                    f"MXGATE_GEN={MXGATE_GEN})")
    prefix = f"mxgdp{procs.n}"
    cfg = os.path.join(procs.dir, "dp.yaml")
    with open(cfg, "w") as f:
        f.write(dp_config(procs.dir, prefix, ack, store))
    p = procs.start("mxgate-dp", [MXGATE_DP, "-c", cfg], prefix)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "mxgate-dp: ready" not in procs.log("mxgate-dp"):
        if p.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mxgate-dp not ready\n{procs.logs()}")
        time.sleep(0.05)
    return prefix


def start_gen(procs, name, sock, mac, addr, args):
    prefix = f"mxg{name}{procs.n}"
    cfg = os.path.join(procs.dir, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(gen_config(procs.dir, prefix, sock, mac, addr))
    return procs.start(name, [MXGATE_GEN, "-c", cfg, *args], prefix)


def result(procs, name):
    """The JSON line a finished mxgate-gen printed."""
    rc = procs.wait(name)
    assert rc == 0, f"{name} exited with {rc}\n{procs.logs()}"
    lines = [l for l in procs.log(name).splitlines() if l.startswith("{")]
    assert len(lines) == 1, f"{name}: no JSON line\n{procs.logs()}"
    return json.loads(lines[0])


def run_client(procs, *args):
    start_gen(procs, "client", "c.sock", "02:6d:78:00:00:02", "203.0.113.2",
              ["--mode", "smtp", "--dst", "203.0.113.1", "--seconds", "60", *args])
    return result(procs, "client")


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_acked_messages_equal_the_gateways_accepted_count_in_sink_mode(procs, pipelining):
    prefix = start_gateway(procs, "sink")
    n = 400
    r = run_client(procs, "--messages", str(n), "--concurrency", "8", "--per-session", "5",
                   "--size", "512-4096", "--rcpts", "2",
                   *([] if pipelining else ["--no-pipelining"]))

    assert r["mode"] == "smtp" and r["pipelining"] is pipelining
    assert r["started"] == n and r["acked"] == n
    assert r["errors"] == 0 and r["failed"] == 0 and r["session_errors"] == 0
    sessions = r["sessions_opened"]
    assert sessions == r["sessions_ok"] and sessions >= n // 5
    # one final reply per command: 220, EHLO, MAIL, 2 RCPT, DATA (354), end of data, QUIT
    assert r["replies"] == {"220": sessions, "221": sessions, "250": sessions + 4 * n, "354": n}
    lat = r["latency_us"]
    assert lat["connect"]["n"] == sessions and lat["mail"]["n"] == n and lat["dot"]["n"] == n
    for k in ("connect", "mail", "dot"):
        assert 0 < lat[k]["p50"] <= lat[k]["p99"] <= lat[k]["p999"] <= lat[k]["max"]
    assert 512 * n <= r["bytes_acked"] <= 4096 * n

    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    assert gw["smtp_messages_accepted"] == n
    assert gw["smtp_rcpts_accepted"] == 2 * n
    assert gw["smtp_message_bytes"] >= r["bytes_acked"]  # plus the gateway's Received: field


def test_sink_receives_every_message_the_gateway_acked_in_store_mode(procs):
    start_gateway(procs, "store", store=True)
    n = 300
    start_gen(procs, "sink", "s.sock", "02:6d:78:00:01:02", "198.51.100.20",
              ["--mode", "sink", "--expect", str(n), "--seconds", "60"])
    time.sleep(0.5)  # the sink's memif link and listener
    r = run_client(procs, "--messages", str(n), "--concurrency", "8", "--per-session", "10",
                   "--size", "500-3000")
    assert r["acked"] == n and r["errors"] == 0

    s = result(procs, "sink")
    assert s["run_id"] == r["run_id"]
    assert s["unique"] == r["acked"]
    assert s["lost"] == 0 and s["duplicates"] == 0
    assert s["body_ok"] == n and s["body_bad"] == 0 and s["no_token"] == 0
    assert s["errors"] == 0
