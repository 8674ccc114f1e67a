# SPDX-License-Identifier: BSD-3-Clause
"""mxgate-gen over TLS (issue #8 scope 1: "STARTTLS or implicit TLS on or off").

Against mxgate-dp in sink mode over net_memif, as in test_gen.py:

    mxgate-gen --mode smtp --tls starttls|implicit  --memif-->  mxgate-dp (25: STARTTLS, 465: implicit)
       203.0.113.2                                             203.0.113.1

and against a kernel SMTP server (aiosmtpd) over a net_tap port inside a
network namespace the test makes, the way scripts/bench runs the generator
against Postfix:

    namespace mxh1g<pid>_<n>
      aiosmtpd 198.51.100.1:2525  <-- tap -->  mxgate-gen 198.51.100.2 (net_tap)

STARTTLS is required (RFC 3207): a server that does not offer it is a
session error, never mail in the clear. Implicit TLS (RFC 8314 §3.3) shakes
hands before the 220. A wrong CA fails every handshake as a verify failure.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import SANITIZED_ENV, run
from mxtel import Telemetry
from test_gen import (MXGATE_GEN, READY_TIMEOUT_S, Procs, gen_config, procs,  # noqa: F401
                      result, start_gen)
from conftest import MXGATE_DP

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: DPDK with hugepages")

HOSTNAME = "mx.example.com"
GW_ADDR = "203.0.113.1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA, the gateway's ECDSA certificate for HOSTNAME and GW_ADDR, and a second CA
    that signed nothing of ours."""
    d = tmp_path_factory.mktemp("gen-tls-certs")
    (d / "san.ext").write_text(f"subjectAltName=DNS:{HOSTNAME},IP:{GW_ADDR},IP:198.51.100.1\n")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=gen {ca}")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "gw.key", "-out", "gw.csr", "-subj", f"/CN={HOSTNAME}")
    ossl("x509", "-req", "-in", "gw.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "gw.pem")
    return d


def dp_config(d, prefix, certs):
    """mxgate-dp as test_gen.py's, in sink mode, with STARTTLS on 25 and implicit TLS on 465."""
    return f"""\
dataplane:
  main_core: 0
  worker_cores: [0]
  idle_sleep_us: 20
  memory: {{mode: hugepages, size_mb: 256, in_memory: true, file_prefix: {prefix}}}
  ports:
    - name: clients
      device: net_memif0,role=server,socket={d}/c.sock,socket-abstract=no,mac=02:6d:78:00:00:01
      addresses: [{GW_ADDR}/24]
tls:
  certificates:
    - cert: {certs}/gw.pem
      key: {certs}/gw.key
listeners:
  - name: mx
    port: 25
    ack: sink
    hostname: {HOSTNAME}
  - name: smtps
    port: 465
    ack: sink
    hostname: {HOSTNAME}
    tls: implicit
policy:
  relay_domains: [example.com]
  relay_networks: [203.0.113.0/24]
"""


def start_tls_gateway(procs, certs):
    if not MXGATE_DP.is_file() or not os.path.isfile(MXGATE_GEN):
        pytest.fail(f"build mxgate-dp and mxgate-gen first (MXGATE_DP={MXGATE_DP}, "
                    f"MXGATE_GEN={MXGATE_GEN})")
    prefix = f"mxh1dp{procs.n}"
    cfg = os.path.join(procs.dir, "dp.yaml")
    with open(cfg, "w") as f:
        f.write(dp_config(procs.dir, prefix, certs))
    p = procs.start("mxgate-dp", [MXGATE_DP, "-c", cfg], prefix)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "mxgate-dp: ready" not in procs.log("mxgate-dp"):
        if p.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mxgate-dp not ready\n{procs.logs()}")
        time.sleep(0.05)
    return prefix


def run_client(procs, *args):
    start_gen(procs, "client", "c.sock", "02:6d:78:00:00:02", "203.0.113.2",
              ["--mode", "smtp", "--dst", GW_ADDR, "--seconds", "60", *args])
    return result(procs, "client")


def assert_all_over_tls(r, n, starttls):
    sessions = r["sessions_opened"]
    assert r["acked"] == n and r["failed"] == 0 and r["unfinished"] == 0
    assert r["errors"] == 0 and r["session_errors"] == 0 and r["sessions_ok"] == sessions
    t = r["tls"]
    assert t["mode"] == ("starttls" if starttls else "implicit")
    assert t["started"] == t["handshakes"] == sessions > 0
    assert t["failures"] == 0 and not any(t["failed"].values()) and t["not_offered"] == 0
    assert t["resumed"] == 0
    assert sum(t["versions"].values()) == sessions and t["versions"]["tls1_3"] == sessions
    assert sum(t["ciphers"].values()) == sessions
    hs = t["handshake_us"]
    assert hs["n"] == sessions and 0 < hs["p50"] <= hs["p99"] <= hs["p999"] <= hs["max"]
    assert t["handshake_cycles"] > 0
    # the replies the scanner read under TLS: STARTTLS adds its 220 and a second EHLO
    per = 2 if starttls else 1
    assert r["replies"] == {"220": per * sessions, "221": sessions,
                            "250": per * sessions + 3 * n, "354": n}


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_gen_over_tls_acks_what_the_gateway_accepted_with_one_handshake_per_session(
        procs, certs, mode):
    prefix = start_tls_gateway(procs, certs)
    n = 200
    r = run_client(procs, "--tls", mode, "--messages", str(n), "--concurrency", "8",
                   "--per-session", "5", "--size", "1024")
    assert r["port"] == (25 if mode == "starttls" else 465)  # RFC 8314 §7.3: 465 by default
    assert_all_over_tls(r, n, mode == "starttls")

    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    assert gw["smtp_messages_accepted"] == n
    assert gw["tls_handshakes_server"] == r["sessions_opened"]
    assert gw["tls_version_tls1_3"] == r["tls"]["versions"]["tls1_3"]
    if mode == "starttls":
        assert gw["smtp_starttls"] == r["sessions_opened"]

    log = procs.log("client")
    assert " TLS hs/s" in log  # the live line
    assert "TLS handshake" in log and "TLS failures" in log  # the table


def test_gen_verifies_the_gateway_against_the_right_ca_and_name(procs, certs):
    """--tls-ca and --tls-name verify; --tls-ciphersuites and --tls-groups reach the context:
    offered ChaCha20 alone, the server has to take it."""
    prefix = start_tls_gateway(procs, certs)
    n = 20
    r = run_client(procs, "--tls", "starttls", "--tls-ca", certs / "ca.pem", "--tls-name",
                   HOSTNAME, "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256",
                   "--tls-groups", "P-256:X25519", "--messages", str(n), "--concurrency", "4",
                   "--per-session", "5")
    assert r["tls"]["verify"] is True
    assert_all_over_tls(r, n, True)
    sessions = r["sessions_opened"]
    assert r["tls"]["ciphers"]["chacha20_poly1305"] == sessions
    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    assert gw["tls_handshakes_server"] == sessions
    assert gw["tls_cipher_chacha20_poly1305"] == sessions


def test_tls_resume_offers_the_latest_ticket_and_the_gateway_resumes(procs, certs):
    """--tls-resume: after the first ticket (RFC 8446 §4.6.1) new sessions resume it; only
    the sessions opened before any ticket came shake hands in full."""
    prefix = start_tls_gateway(procs, certs)
    n, conc = 60, 2
    r = run_client(procs, "--tls", "starttls", "--tls-resume", "--messages", str(n),
                   "--concurrency", str(conc), "--per-session", "1")
    t = r["tls"]
    sessions = r["sessions_opened"]
    assert r["acked"] == n and r["errors"] == 0 and t["resume"] is True
    assert t["handshakes"] == sessions and t["failures"] == 0
    assert sessions - conc <= t["resumed"] < sessions
    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    assert gw["tls_resumptions"] == t["resumed"]
    assert gw["tls_handshakes_server"] == sessions


def test_a_wrong_ca_fails_every_session_as_a_verify_failure(procs, certs):
    prefix = start_tls_gateway(procs, certs)
    r = run_client(procs, "--tls", "implicit", "--tls-ca", certs / "other-ca.pem",
                   "--messages", "5", "--concurrency", "2", "--rate", "40", "--seconds", "2",
                   "--retries", "0")
    sessions = r["sessions_opened"]
    t = r["tls"]
    assert sessions > 0 and r["acked"] == 0 and r["sessions_ok"] == 0
    assert r["session_errors"] == sessions
    assert t["handshakes"] == 0 and t["started"] == sessions
    assert t["failed"]["verify"] == t["failures"] == sessions
    with Telemetry(prefix) as tel:
        gw = tel.stats_row("total")
    assert gw["tls_handshakes_server"] == 0 and gw["smtp_messages_accepted"] == 0


def test_implicit_tls_to_a_clear_text_listener_fails_as_a_protocol_error(procs, certs):
    """Port 25 greets in the clear: the 220 where a ServerHello belongs is no TLS record."""
    prefix = start_tls_gateway(procs, certs)
    r = run_client(procs, "--tls", "implicit", "--port", "25", "--messages", "5",
                   "--concurrency", "2", "--rate", "40", "--seconds", "2", "--retries", "0")
    sessions = r["sessions_opened"]
    t = r["tls"]
    assert sessions > 0 and r["acked"] == 0 and r["started"] == 0
    assert r["session_errors"] == sessions and r["sessions_ok"] == 0
    assert t["started"] == sessions and t["handshakes"] == 0
    assert t["failed"]["protocol"] == t["failures"] == sessions
    assert r["replies"] == {}  # nothing read as SMTP: the greeting went to TLS, and failed it
    with Telemetry(prefix) as tel:
        assert tel.stats_row("total")["tls_handshakes_server"] == 0


# --- usage errors ------------------------------------------------------------------------------


def gen_usage(procs, *args):
    cfg = os.path.join(procs.dir, "gen.yaml")
    with open(cfg, "w") as f:
        f.write(gen_config(procs.dir, f"mxh1bad{procs.n}", "c.sock", "02:6d:78:00:00:02",
                           "203.0.113.2"))
    return subprocess.run([MXGATE_GEN, "-c", cfg, *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=60, env=SANITIZED_ENV)


@pytest.mark.parametrize("args,said", [
    (["--tls", "ssl"], "--tls: 'ssl' is not none, starttls or implicit"),
    (["--tls", ""], "--tls: '' is not none, starttls or implicit"),
    (["--tls-ca", "/nonexistent/ca.pem", "--tls", "starttls"], "--tls-ca: '/nonexistent/ca.pem' "
     "cannot be read"),
    (["--tls-name", "mx.example.com"], "--tls-* options need --tls starttls or implicit"),
    (["--tls", "starttls", "--tls-name", "bad name"], "--tls-name: 'bad name' is not a host"),
    (["--tls", "starttls", "--tls-ciphers", "NO-SUCH-CIPHER"], "--tls-ciphers NO-SUCH-CIPHER"),
    (["--tls", "starttls", "--tls-groups", "P-999"], "--tls-groups P-999"),
    (["--tls", "implicit", "--tls-ca", "{certs}/gw.key"], "--tls-ca"),
    (["--mode", "sink", "--tls", "starttls"], "--tls and --tls-* are for --mode smtp"),
    (["--tls-resume"], "--tls-* options need --tls starttls or implicit"),
], ids=["mode", "empty", "ca-missing", "no-tls", "name", "ciphers", "groups", "ca-not-pem",
        "sink", "resume-no-tls"])
def test_bad_tls_options_are_usage_errors(procs, certs, args, said):
    args = [a.replace("{certs}", str(certs)) for a in args]
    if "--mode" not in args:
        args = ["--mode", "smtp", "--dst", GW_ADDR, *args]
    # refused before any port is touched: no gateway needed
    r = gen_usage(procs, *args)
    assert r.returncode == 2, r.stderr
    assert said in r.stderr, r.stderr


# --- over net_tap against a kernel SMTP server --------------------------------------------------

KERNEL_ADDR = "198.51.100.1"
GEN_ADDR = "198.51.100.2"
KERNEL_MAC = "02:6b:65:72:6e:01"
KERNEL_PORT = 2525

KERNEL_SERVER = r'''
import asyncio, json, os, signal, ssl, sys
from aiosmtpd.smtp import SMTP

addr, port, cert, key, folder, mode = sys.argv[1:7]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)


class Handler:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        with open(os.path.join(folder, f"{Handler.n}.json"), "w") as f:
            json.dump({"tls": session.ssl is not None, "rcpt_tos": envelope.rcpt_tos,
                       "size": len(envelope.content)}, f)
        return "250 2.0.0 Ok: kept"


class Smtp(SMTP):
    """RFC 4954 §5: a server that offers AUTH takes MAIL's AUTH= parameter. aiosmtpd 1.4
    offers AUTH under TLS, then answers AUTH= with 555; it is dropped here."""

    async def smtp_MAIL(self, arg):
        if arg:
            arg = " ".join(w for w in arg.split(" ") if not w.upper().startswith("AUTH="))
        return await super().smtp_MAIL(arg)


async def main():
    loop = asyncio.get_running_loop()
    # "require": STARTTLS before MAIL (RFC 3207 §4); "plain": STARTTLS never offered.
    # Bound before the tap has the address (ip_nonlocal_bind): mxgate-gen makes the tap.
    server = await loop.create_server(
        lambda: Smtp(Handler(), hostname="kernel.example.net",
                     tls_context=ctx if mode == "require" else None,
                     require_starttls=mode == "require"),
        host=addr, port=int(port))
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()

asyncio.run(main())
'''


class TapRun:
    """A namespace of this test's own, a kernel SMTP server in it, mxgate-gen on a tap there."""

    def __init__(self, tmp_path):
        n = time.monotonic_ns() % 100000
        self.ns = f"mxh1g{os.getpid()}_{n}"[:15]
        self.iface = f"h1t{os.getpid()}{n}"[:15]
        self.prefix = f"mxh1tap{os.getpid()}_{n}"
        self.dir = tmp_path
        self.server = None
        self.gen = None
        run(["ip", "netns", "del", self.ns], check=False)
        run(["ip", "netns", "add", self.ns])
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.exec("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self.exec("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")

    def exec(self, *args, check=True):
        return run(["ip", "netns", "exec", self.ns, *[str(a) for a in args]], check=check)

    def start_server(self, certs, mode):
        self.mail = self.dir / "mail"
        self.mail.mkdir()
        script = self.dir / "kernel_smtp.py"
        script.write_text(KERNEL_SERVER)
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, str(script), KERNEL_ADDR,
             str(KERNEL_PORT), str(certs / "gw.pem"), str(certs / "gw.key"), str(self.mail),
             mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.server.stdout.readline()
        assert line.strip() == "ready", f"kernel SMTP server: {line!r} {self.server.stderr.read()}"

    def messages(self):
        return [json.loads(p.read_text()) for p in sorted(self.mail.glob("*.json"))]

    def run_gen(self, *args):
        cfg = self.dir / "gen.yaml"
        cfg.write_text(f"""\
dataplane:
  main_core: 1
  worker_cores: [1]
  idle_sleep_us: 20
  memory: {{mode: no-huge, size_mb: 256, in_memory: false, file_prefix: {self.prefix}}}
  ports:
    - name: tap0
      device: net_tap0,iface={self.iface}
      addresses: [{GEN_ADDR}/24]
""")
        self.log = self.dir / "gen.log"
        with open(self.log, "wb") as out:
            self.gen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, MXGATE_GEN, "-c", str(cfg), "--mode", "smtp", "--dst", KERNEL_ADDR, "--port",
                 str(KERNEL_PORT), *[str(a) for a in args]],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=SANITIZED_ENV)
        # the tap appears once the port started; the kernel's end gets its own MAC and the
        # address (ARP is retried each second, within the generator's 3 s ping)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.exec("ip", "link", "show", "dev", self.iface, check=False).returncode != 0:
            if self.gen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mxgate-gen made no tap\n{self.log.read_text(errors='replace')}")
            time.sleep(0.02)
        self.exec("ip", "link", "set", "dev", self.iface, "address", KERNEL_MAC)
        self.exec("ip", "addr", "add", f"{KERNEL_ADDR}/24", "dev", self.iface)
        self.exec("ip", "link", "set", "dev", self.iface, "up")
        try:
            rc = self.gen.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mxgate-gen still running\n{self.log.read_text(errors='replace')}")
        text = self.log.read_text(errors="replace")
        assert rc == 0, f"mxgate-gen exited with {rc}\n{text}"
        lines = [l for l in text.splitlines() if l.startswith("{")]
        assert len(lines) == 1, text
        return json.loads(lines[0]), text

    def stop(self):
        problems = []
        for p in (self.gen, self.server):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        if self.gen is not None:
            from conftest import sanitizer_report
            report = sanitizer_report(self.log.read_text(errors="replace"))
            if report:
                problems.append(f"sanitizer report from mxgate-gen:\n{report}")
        run(["ip", "netns", "del", self.ns], check=False)
        from mxtel import RUNTIME_DIR
        shutil.rmtree(os.path.join(RUNTIME_DIR, self.prefix), ignore_errors=True)
        return problems


@pytest.fixture
def tap(tmp_path):
    t = TapRun(tmp_path)
    yield t
    problems = t.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_starttls_over_net_tap_to_a_kernel_server_delivers_every_message(tap, certs):
    tap.start_server(certs, "require")
    n = 30
    r, log = tap.run_gen("--tls", "starttls", "--tls-ca", certs / "ca.pem", "--tls-name",
                         KERNEL_ADDR, "--messages", n, "--concurrency", "3", "--per-session", "5",
                         "--size", "2000")
    assert r["acked"] == n and r["errors"] == 0, log
    t = r["tls"]
    assert t["handshakes"] == r["sessions_opened"] == r["sessions_ok"] > 0
    assert t["failures"] == 0 and t["verify"] is True
    got = tap.messages()
    assert len(got) == n and all(m["tls"] for m in got)


def test_starttls_to_a_server_without_it_is_a_session_error_not_clear_text(tap, certs):
    tap.start_server(certs, "plain")
    r, log = tap.run_gen("--tls", "starttls", "--messages", "5", "--concurrency", "2",
                         "--rate", "20", "--seconds", "2", "--retries", "0")
    sessions = r["sessions_opened"]
    assert sessions > 0 and r["acked"] == 0 and r["started"] == 0, log
    assert r["session_errors"] == sessions and r["sessions_ok"] == 0
    assert r["tls"]["not_offered"] == sessions and r["tls"]["started"] == 0
    assert tap.messages() == []  # nothing went in the clear
    # RFC 3207 §4.1 leaves the client to end the session: QUIT, no MAIL
    assert "221" in r["replies"] and "354" not in r["replies"]
