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


def test_a_second_generator_reuses_the_first_ones_ports_without_a_stall(procs):
    """The gateway keeps a client's 4-tuples in TIME-WAIT after its 221; a generator
    started next begins at the same ephemeral port (both derive it from the boot's TCP
    secret) and reuses them at once. RFC 6191: a SYN on a TIME-WAIT 4-tuple is taken when
    its timestamp is newer, which holds across processes only if the timestamp offset is
    the boot's, not the process's; with one of its own about half the SYNs failed PAWS,
    drew a challenge ACK and our RST, and waited a retransmission timeout (1 s)."""
    prefix = start_gateway(procs, "sink")
    n = 300
    first = run_client(procs, "--messages", str(n), "--concurrency", "8")
    assert first["acked"] == n and first["errors"] == 0
    start_gen(procs, "client2", "c.sock", "02:6d:78:00:00:02", "203.0.113.2",
              ["--mode", "smtp", "--dst", "203.0.113.1", "--seconds", "60",
               "--messages", str(n), "--concurrency", "8"])
    second = result(procs, "client2")
    assert second["acked"] == n and second["errors"] == 0
    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    # the second run's connections met the first's TIME-WAITs, and each SYN was newer
    assert gw["tcp_time_wait_reused"] >= n // 2, gw
    assert gw.get("drop_tcp_paws", 0) == 0, gw
    assert gw.get("tcp_rsts_in", 0) == 0, gw
    assert second["latency_us"]["connect"]["max"] < 500_000, second["latency_us"]["connect"]


def test_sink_receives_every_message_the_gateway_acked_in_store_mode(procs):
    start_gateway(procs, "store", store=True)
    n = 300
    start_gen(procs, "sink", "s.sock", "02:6d:78:00:01:02", "198.51.100.20",
              ["--mode", "sink", "--expect", str(n), "--seconds", "60"])
    time.sleep(0.5)  # the sink's memif link and listener
    r = run_client(procs, "--messages", str(n), "--concurrency", "8", "--per-session", "10",
                   "--size", "500-3000")
    # a 451 4.3.2 (the spool's backpressure on a busy machine) is retried, counted apart
    assert r["acked"] == n and r["failed"] == 0 and r["unfinished"] == 0

    s = result(procs, "sink")
    assert s["run_id"] == r["run_id"]
    assert s["unique"] == r["acked"]
    assert s["lost"] == 0 and s["duplicates"] == 0
    assert s["body_ok"] == n and s["body_bad"] == 0 and s["no_token"] == 0
    assert s["errors"] == 0


def live_acked(log):
    """The last 'acked N' of mxgate-gen --mode smtp's live lines, 0 before the first."""
    n = 0
    for line in log.splitlines():
        if line.startswith("mxgate-gen:") and " acked " in line:
            n = int(line.split(" acked ", 1)[1].split()[0])
    return n


def test_gateway_killed_mid_run_loses_no_acked_message(procs):
    """Issue #5 fault 1 and #8's proof: mxgate-dp (store) gets SIGKILL under load and is
    started again on the same spool. The client retries what was cut and writes the tokens
    it saw acknowledged; the sink waits for that list and checks every one arrived."""
    n = 3000
    prefix = start_gateway(procs, "store", store=True)
    acked_file = os.path.join(procs.dir, "acked.txt")
    start_gen(procs, "sink", "s.sock", "02:6d:78:00:01:02", "198.51.100.20",
              ["--mode", "sink", "--acked-from", acked_file, "--seconds", "150"])
    time.sleep(0.5)  # the sink's memif link and listener
    start_gen(procs, "client", "c.sock", "02:6d:78:00:00:02", "203.0.113.2",
              ["--mode", "smtp", "--dst", "203.0.113.1", "--seconds", "120", "--messages",
               str(n), "--concurrency", "8", "--per-session", "10", "--size", "500-3000",
               "--retries", "60", "--backoff-ms", "20-500", "--acked-out", acked_file,
               # a session whose content the killed gateway took, waiting for its reply
               "--reply-timeout", "15"])

    # SIGKILL once a good part of the run was acked, well before its end
    dp = next(p for name, p, *_ in procs.procs if name == "mxgate-dp")
    deadline = time.monotonic() + 60
    while live_acked(procs.log("client")) < n // 5:
        if time.monotonic() > deadline or dp.poll() is not None:
            pytest.fail(f"the run did not get going\n{procs.logs()}")
        time.sleep(0.05)
    dp.send_signal(signal.SIGKILL)
    assert dp.wait(timeout=10) == -signal.SIGKILL
    acked_at_kill = live_acked(procs.log("client"))
    assert acked_at_kill < n, "the kill came after the run: nothing was cut"

    # the same config and spool: recovery requeues what was acked and not delivered. The
    # killed server left its memif socket files, which a new server cannot bind over.
    for sock in ("c.sock", "s.sock"):
        os.unlink(os.path.join(procs.dir, sock))
    p2 = procs.start("mxgate-dp-2", [MXGATE_DP, "-c", os.path.join(procs.dir, "dp.yaml")],
                     prefix)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "mxgate-dp: ready" not in procs.log("mxgate-dp-2"):
        if p2.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mxgate-dp did not come back\n{procs.logs()}")
        time.sleep(0.05)

    r = result(procs, "client")
    s = result(procs, "sink")
    with open(acked_file) as f:
        acked = [int(x) for x in f.read().split()]

    # the client: everything it began ended acked or failed
    assert r["acked"] == len(acked) == len(set(acked)) > acked_at_kill
    assert r["acked"] + r["failed"] + r["unfinished"] == r["started"] == n
    assert r["unfinished"] == 0
    # the rest went through the restarted gateway (the kill may find every session between
    # transactions, so a cut transaction, retries_lost, is likely but not certain)
    with Telemetry(prefix) as tel:
        accepted_after = tel.stats_row("total")["smtp_messages_accepted"]
    assert 0 < accepted_after <= n  # (the live line's count lags the kill by up to 1 s)
    # the sink: it read the client's list, saw every token in it, and counted the rest
    assert s["run_id"] == r["run_id"]
    assert s["acked_listed"] == r["acked"]
    assert s["acked_seen"] == r["acked"] and s["lost"] == 0
    assert isinstance(s["duplicates"], int) and s["duplicates"] >= 0
    assert s["unique"] >= r["acked"]  # a message may arrive whose 250 the kill swallowed
    assert s["messages"] == s["unique"] + s["duplicates"]
    assert s["body_bad"] == 0 and s["other_run"] == 0 and s["out_of_range"] == 0
    print(f"killed at {acked_at_kill} acked; client: acked {r['acked']}, failed {r['failed']}, "
          f"retries after a lost connection {r['retries_lost']}, after 4xx {r['retries_4xx']}; "
          f"the restarted gateway accepted {accepted_after}; "
          f"sink: unique {s['unique']}, duplicates {s['duplicates']}, lost {s['lost']}")


def test_bodies_from_a_folder_arrive_intact_through_the_store(procs):
    """--size-dir: each message's body is one of the folder's files, round robin. Through
    the gateway in store mode, the sink checks every body against the hash the client put
    in its header: LF-only lines (made CRLF), a line that starts with a dot (stuffed on the
    wire, RFC 5321 §4.5.2), 8-bit text (BODY=8BITMIME), and a 40 KiB file."""
    n = 60
    bodies = os.path.join(procs.dir, "bodies")
    os.mkdir(bodies)
    files = {
        "1-unix.txt": b"Hello,\nthree lines\nwith LF only\n",
        "2-dots.txt": b".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n",
        "3-8bit.txt": "Grüße aus Köln, ½ €\n".encode(),
        "4-big.txt": b"".join(b"%05d " % i + b"x" * 70 + b"\r\n" for i in range(540)),
    }
    for name, data in files.items():
        with open(os.path.join(bodies, name), "wb") as f:
            f.write(data)
    start_gateway(procs, "store", store=True)
    start_gen(procs, "sink", "s.sock", "02:6d:78:00:01:02", "198.51.100.20",
              ["--mode", "sink", "--expect", str(n), "--seconds", "60"])
    time.sleep(0.5)
    r = run_client(procs, "--messages", str(n), "--concurrency", "4", "--per-session", "5",
                   "--size-dir", bodies)
    assert r["acked"] == n and r["failed"] == 0
    assert r["size_dir_files"] == len(files)
    lens = sorted(len(d.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for d in files.values())
    assert (r["size_min"], r["size_max"]) == (lens[0], lens[-1])

    s = result(procs, "sink")
    assert s["unique"] == n and s["lost"] == 0 and s["duplicates"] == 0
    assert s["body_ok"] == n and s["body_bad"] == 0


def test_size_dir_refuses_a_bad_folder_with_its_reason(procs):
    bodies = os.path.join(procs.dir, "bad")
    os.mkdir(bodies)
    with open(os.path.join(bodies, "long.txt"), "wb") as f:
        f.write(b"y" * 1200 + b"\n")
    cfg = os.path.join(procs.dir, "gen.yaml")
    with open(cfg, "w") as f:
        f.write(gen_config(procs.dir, f"mxgbad{procs.n}", "c.sock", "02:6d:78:00:00:02",
                           "203.0.113.2"))
    # refused before any port is touched: no gateway needed
    r = subprocess.run([MXGATE_GEN, "-c", cfg, "--mode", "smtp", "--dst", "203.0.113.1",
                        "--size-dir", bodies, "--messages", "1"], capture_output=True, text=True,
                       timeout=60, env=SANITIZED_ENV)
    assert r.returncode != 0
    assert "long.txt" in r.stderr and "998" in r.stderr
    r = subprocess.run([MXGATE_GEN, "-c", cfg, "--mode", "smtp", "--dst", "203.0.113.1",
                        "--size-dir", bodies, "--size", "100"], capture_output=True, text=True,
                       timeout=60, env=SANITIZED_ENV)
    assert r.returncode == 2 and "--size-dir" in r.stderr
