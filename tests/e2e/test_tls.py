# SPDX-License-Identifier: BSD-3-Clause
"""TLS on the wire: STARTTLS (RFC 3207) on 25, implicit TLS (RFC 8314 §3.3) on
465, a clear-text-only listener, with an RSA-2048 and an ECDSA P-256
certificate side by side, both issued by a test CA the test makes with the
openssl tool. Clients: Python's smtplib, openssl s_client, swaks (--tls and
--tls-on-connect), Postfix's posttls-finger, testssl.sh. Bad input: the
STARTTLS command-injection case (CVE-2011-0411), garbage instead of a
ClientHello, a handshake that stalls, a client leaving mid-handshake -- each
counted, each closing only its own connection. And mail sent over TLS
reaching the next hop with "ESMTPS" in our Received: header."""

import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR
from test_relay import HOP_PORT, NextHop

netns = pytest.mark.netns

HOSTNAME = "mx.example.com"
PLAIN_PORT = 2525
SMTPS_PORT = 465
HANDSHAKE_TIMEOUT_MS = 1500


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA and two server certificates for HOSTNAME: RSA-2048 and ECDSA P-256."""
    d = tmp_path_factory.mktemp("tls-certs")
    (d / "san.ext").write_text(f"subjectAltName=DNS:{HOSTNAME},IP:{DP_ADDR}\n")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=mxgate e2e CA")
    for name, alg in (("rsa", ["rsa:2048"]),
                      ("ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        ossl("req", "-newkey", *alg, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={HOSTNAME}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem")
    return d


def tls_section(certs):
    return f"""\
tls:
  certificates:
    - cert: {certs}/rsa.pem
      key: {certs}/rsa.key
    - cert: {certs}/ec.pem
      key: {certs}/ec.key
  handshake_timeout_ms: {HANDSHAKE_TIMEOUT_MS}
"""


def sink_config(certs):
    return tls_section(certs) + f"""\
listeners:
  - name: mx
    port: 25
    hostname: {HOSTNAME}
  - name: smtps
    port: {SMTPS_PORT}
    hostname: {HOSTNAME}
    tls: implicit
  - name: plain
    port: {PLAIN_PORT}
    hostname: {HOSTNAME}
    tls: none
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
"""


@pytest.fixture
def tls_dp(start_dataplane, certs):
    return start_dataplane(extra=sink_config(certs))


def client_context(certs):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    return ctx


def connect(dp, port=25, timeout=10.0):
    with dp.netns():
        s = socket.create_connection((DP_ADDR, port), timeout=timeout)
    return s


def read_reply(s, buf=b""):
    """One complete (possibly multi-line) reply from S; returns (reply, rest)."""
    while True:
        m = re.search(rb"(?:^|\r\n)(\d{3}) [^\r\n]*\r\n", buf)
        if m:
            return buf[:m.end()], buf[m.end():]
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed; had {buf!r}")
        buf += chunk


def closed_within(s, seconds):
    """True when the peer closes S (EOF or reset) within SECONDS, having sent nothing."""
    s.settimeout(seconds)
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        return True
    except (TimeoutError, socket.timeout):
        return False
    return data == b""


# --- clients ------------------------------------------------------------------


@netns
def test_starttls_is_offered_and_smtplib_sends_over_it(tls_dp, certs):
    with tls_dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    smtp.ehlo("client.example.org")
    assert smtp.has_extn("starttls")
    code, _ = smtp.starttls(context=client_context(certs))
    assert code == 220
    smtp.ehlo("client.example.org")
    assert not smtp.has_extn("starttls"), "RFC 3207 §4.2: not offered again under TLS"
    assert smtp.sock.version() in ("TLSv1.2", "TLSv1.3")
    smtp.sendmail("sender@example.org", ["alice@example.com"], b"Subject: tls\r\n\r\nhi\r\n")
    smtp.quit()
    assert tls_dp.wait_counter("smtp_messages_accepted", 1) == 1
    assert tls_dp.counter("tls_handshakes_server") == 1
    assert tls_dp.counter("tls_version_tls1_3") == 1
    assert tls_dp.counter("smtp_starttls") == 1


@netns
def test_a_listener_with_tls_none_does_not_offer_starttls(tls_dp):
    with tls_dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, PLAIN_PORT, timeout=10)
    smtp.ehlo("client.example.org")
    assert not smtp.has_extn("starttls")
    assert smtp.docmd("STARTTLS")[0] == 502
    smtp.quit()


@netns
def test_openssl_s_client_starttls_verifies_the_rsa_and_the_ecdsa_certificate(tls_dp, certs):
    for sigalgs, want in (("ECDSA+SHA256", "ECDSA"), ("RSA-PSS+SHA256:RSA+SHA256", "RSA")):
        r = tls_dp.ns.exec("openssl", "s_client", "-starttls", "smtp", "-connect",
                           f"{DP_ADDR}:25", "-CAfile", certs / "ca.pem", "-verify_hostname",
                           HOSTNAME, "-verify_return_error", "-sigalgs", sigalgs, "-brief",
                           "-crlf", "-ign_eof", input="QUIT\n", check=False, timeout=30)
        out = r.stdout + r.stderr
        assert "Verification: OK" in out, out
        assert re.search(rf"^Signature type: {want}", out, re.M), out
        assert re.search(r"^221 ", out, re.M), f"QUIT answered under TLS\n{out}"
    assert tls_dp.wait_counter("tls_handshakes_server", 2) == 2


@netns
def test_swaks_sends_with_starttls_and_with_tls_on_connect_to_465(tls_dp, certs):
    need("swaks")
    for args in (["--port", "25", "--tls"], ["--port", str(SMTPS_PORT), "--tls-on-connect"]):
        r = tls_dp.ns.exec("swaks", "--server", DP_ADDR, *args, "--to", "alice@example.com",
                           "--from", "sender@example.org", "--helo", "client.example.org",
                           "--tls-verify", "--tls-ca-path", certs / "ca.pem",
                           "--tls-sni", HOSTNAME, check=False, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert "250 2.0.0 Ok: queued" in out or "250 " in out.split("DATA")[-1], out
        assert "TLS started" in out or "TLS" in out, out
    assert tls_dp.wait_counter("smtp_messages_accepted", 2) == 2
    assert tls_dp.counter("tls_handshakes_server") == 2


@netns
def test_implicit_tls_handshake_comes_before_the_greeting(tls_dp, certs):
    s = connect(tls_dp, SMTPS_PORT)
    s.settimeout(1.0)
    with pytest.raises((TimeoutError, socket.timeout)):
        s.recv(100)  # RFC 8314 §3.3: nothing in the clear, not even the 220
    s.settimeout(10)
    t = client_context(certs).wrap_socket(s, server_hostname=HOSTNAME)
    greeting, _ = read_reply(t)
    assert greeting.startswith(b"220 " + HOSTNAME.encode())
    t.sendall(b"EHLO client.example.org\r\n")
    ehlo, _ = read_reply(t)
    assert b"STARTTLS" not in ehlo
    t.sendall(b"QUIT\r\n")
    assert read_reply(t)[0].startswith(b"221")
    t.close()


@netns
def test_python_smtplib_smtp_ssl_on_465(tls_dp, certs):
    with tls_dp.netns():
        smtp = smtplib.SMTP_SSL(DP_ADDR, SMTPS_PORT, timeout=10,
                                context=client_context(certs))
    smtp.ehlo("client.example.org")
    smtp.sendmail("sender@example.org", ["alice@example.com"], b"Subject: 465\r\n\r\nhi\r\n")
    smtp.quit()
    assert tls_dp.wait_counter("smtp_messages_accepted", 1) == 1


@netns
def test_posttls_finger_verifies_the_server(tls_dp, certs):
    need("posttls-finger")
    conf = certs / "postfix"  # posttls-finger reads a main.cf: an empty one, our own
    conf.mkdir(exist_ok=True)
    (conf / "main.cf").write_text("")
    r = tls_dp.ns.exec("env", f"MAIL_CONFIG={conf}", "posttls-finger", "-c", "-l", "secure", "-F", certs / "ca.pem",
                       "-t", "10s", f"[{DP_ADDR}]:25", HOSTNAME, check=False, timeout=60)
    out = r.stdout + r.stderr
    assert re.search(r"Verified TLS connection established", out), out


@netns
def test_testssl_sees_no_protocol_older_than_tls12(tls_dp):
    tool = shutil.which("testssl") or shutil.which("testssl.sh")
    if tool is None:
        pytest.skip("testssl.sh is not installed (scripts/setup installs it)")
    r = tls_dp.ns.exec(tool, "--quiet", "--color", "0", "--warnings", "off", "-p",
                       "--starttls", "smtp", f"{DP_ADDR}:25", check=False, timeout=300)
    out = r.stdout
    found = {}
    for proto in ("SSLv2", "SSLv3", "TLS 1", "TLS 1.1", "TLS 1.2", "TLS 1.3"):
        m = re.search(rf"^\s*{re.escape(proto)}\s+(.*)$", out, re.M)
        assert m, f"{proto} missing from testssl.sh's report\n{out}"
        found[proto] = m.group(1)
    for old in ("SSLv2", "SSLv3", "TLS 1", "TLS 1.1"):
        assert "not offered" in found[old], f"{old}: {found[old]}\n{out}"
    for new in ("TLS 1.2", "TLS 1.3"):
        assert re.search(r"(?<!not )offered", found[new]), f"{new}: {found[new]}\n{out}"


# --- bad input ----------------------------------------------------------------


@netns
def test_plaintext_after_starttls_in_one_segment_is_never_answered(tls_dp, certs):
    """CVE-2011-0411: "STARTTLS\\r\\nRSET\\r\\n" in one segment; no reply to RSET ever."""
    s = connect(tls_dp)
    _, rest = read_reply(s)
    s.sendall(b"EHLO client.example.org\r\n")
    _, rest = read_reply(s, rest)
    s.sendall(b"STARTTLS\r\nRSET\r\n")
    ready, rest = read_reply(s, rest)
    assert ready.startswith(b"220 2.0.0"), ready
    assert rest == b""
    t = client_context(certs).wrap_socket(s, server_hostname=HOSTNAME)
    t.settimeout(1.0)
    with pytest.raises((TimeoutError, socket.timeout)):
        t.recv(100)  # a 250 for the injected RSET would be here
    t.settimeout(10)
    t.sendall(b"EHLO client.example.org\r\n")
    ehlo, rest = read_reply(t)
    assert ehlo.startswith(b"250-" + HOSTNAME.encode()), ehlo
    t.sendall(b"QUIT\r\n")
    assert read_reply(t, rest)[0].startswith(b"221")
    t.close()
    assert tls_dp.wait_counter("smtp_starttls_discarded", 6) == 6


def starttls_raw(dp):
    """A connection that has sent STARTTLS and read the 220."""
    s = connect(dp)
    _, rest = read_reply(s)
    s.sendall(b"EHLO client.example.org\r\n")
    _, rest = read_reply(s, rest)
    s.sendall(b"STARTTLS\r\n")
    ready, _ = read_reply(s, rest)
    assert ready.startswith(b"220 2.0.0"), ready
    return s


def other_session_works(dp):
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, PLAIN_PORT, timeout=10)
    assert smtp.ehlo("client.example.org")[0] == 250
    smtp.quit()


@netns
def test_garbage_instead_of_a_client_hello_closes_only_that_connection(tls_dp):
    other = connect(tls_dp, PLAIN_PORT)
    read_reply(other)
    s = starttls_raw(tls_dp)
    s.sendall(b"EHLO still.plaintext.example\r\nMAIL FROM:<a@example.org>\r\n")
    s.settimeout(5)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    assert b"250" not in data and b"EHLO" not in data, f"answered in the clear: {data!r}"
    assert data == b"" or data[0] == 0x15, f"at most a TLS alert record: {data!r}"
    assert tls_dp.wait_counter("tls_fail_protocol", 1) == 1
    other.sendall(b"NOOP\r\n")
    assert read_reply(other)[0].startswith(b"250")
    other_session_works(tls_dp)


@netns
def test_a_handshake_that_stalls_is_timed_out_and_counted(tls_dp):
    s = starttls_raw(tls_dp)
    t0 = time.monotonic()
    assert closed_within(s, HANDSHAKE_TIMEOUT_MS / 1000 + 3), "still open after the timeout"
    took = time.monotonic() - t0
    assert took >= HANDSHAKE_TIMEOUT_MS / 1000 - 0.3, f"closed after {took:.2f} s"
    assert tls_dp.wait_counter("tls_fail_timeout", 1) == 1
    other_session_works(tls_dp)


@netns
def test_a_client_leaving_mid_handshake_is_counted(tls_dp, certs):
    # the start of a real ClientHello, made by Python's TLS over memory BIOs
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(certs).wrap_bio(inc, out, server_hostname=HOSTNAME)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    s = connect(tls_dp, SMTPS_PORT)
    s.sendall(hello[: len(hello) // 2])
    time.sleep(0.2)
    s.close()
    assert tls_dp.wait_counter("tls_fail_closed", 1) == 1
    assert tls_dp.counter("tls_handshakes_server") == 0
    other_session_works(tls_dp)


# --- mail over TLS to the next hop --------------------------------------------------


@netns
def test_mail_sent_over_tls_reaches_the_next_hop_marked_esmtps(start_dataplane, certs,
                                                               tmp_path):
    spool = tmp_path / "spool"
    dp = start_dataplane(extra=tls_section(certs) + f"""\
listeners:
  - name: mx
    port: 25
    ack: store
    hostname: {HOSTNAME}
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
spool:
  directory: {spool}
  segment_mb: 32
  staging_mb: 16
routes:
  smarthost:
    - {{address: {KERNEL_ADDR}, port: {HOP_PORT}}}
relay:
  helo_name: {HOSTNAME}
  retry_first_s: 1
  retry_max_s: 2
""")
    hop = NextHop(dp, KERNEL_ADDR, HOP_PORT, tmp_path / "hop")
    try:
        with dp.netns():
            smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
        smtp.starttls(context=client_context(certs))
        smtp.ehlo("client.example.org")
        smtp.sendmail("sender@example.org", ["alice@example.com"],
                      b"Subject: over tls\r\n\r\nsecret body\r\n")
        smtp.quit()
        got = hop.wait(1)
        assert len(got) == 1
        assert "secret body" in got[0]["data"]
        assert re.search(r"with ESMTPS id", got[0]["data"]), got[0]["data"][:400]
    finally:
        hop.stop()


# --- STARTTLS to the next hop (routes: tls: encrypt) ----------------------------------------

HOP_NAME = "hop.example.net"

TLS_HOP = r'''
import json, os, signal, ssl, sys
from aiosmtpd.controller import Controller

addr, port, cert, key, folder = sys.argv[1:6]
# "require": STARTTLS before MAIL; "broken": STARTTLS offered, but only TLS 1.0/1.1,
# which our client refuses, so every handshake fails; "plain": no STARTTLS at all;
# "offer": STARTTLS offered, mail taken with or without it
mode = sys.argv[6] if len(sys.argv) > 6 else "require"
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
if mode == "broken":
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1


class Handler:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        with open(os.path.join(folder, f"{Handler.n}.json"), "w") as f:
            json.dump({"tls": session.ssl is not None, "rcpt_tos": envelope.rcpt_tos,
                       "data": envelope.content.decode("latin-1")}, f)
        return "250 2.0.0 Ok: kept"


signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
c = Controller(Handler(), hostname=addr, port=int(port),
               tls_context=None if mode == "plain" else ctx,
               require_starttls=mode == "require", server_hostname=addr)
c.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
'''


class TlsHop:
    """An aiosmtpd next hop in DP's namespace that takes mail only after STARTTLS."""

    def __init__(self, dp, folder, cert, key, port=HOP_PORT, mode="require"):
        import sys
        self.dir = folder
        folder.mkdir()
        script = folder.parent / "tls_hop.py"
        script.write_text(TLS_HOP)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", dp.name, sys.executable, str(script), KERNEL_ADDR, str(port),
             str(cert), str(key), str(folder), mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"TLS hop did not start: {line!r} {self.proc.stderr.read()}"

    def messages(self):
        import json
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("*.json"))]

    def wait(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while len(self.messages()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.messages()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def hop_certs(certs):
    """hop.example.net from the test CA, and a self-signed one no CA vouches for."""
    d = certs
    (d / "hop.ext").write_text(f"subjectAltName=DNS:{HOP_NAME}\n")

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "hop.key", "-out", "hop.csr", "-subj", f"/CN={HOP_NAME}")
    ossl("x509", "-req", "-in", "hop.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "hop.ext", "-out", "hop.pem")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2", "-subj", f"/CN={HOP_NAME}",
         "-addext", f"subjectAltName=DNS:{HOP_NAME}")
    return d


def encrypt_relay_config(certs, spool, policy="encrypt"):
    return tls_section(certs) + f"""\
  ca_file: {certs}/ca.pem
listeners:
  - name: mx
    port: 25
    ack: store
    hostname: {HOSTNAME}
    tls: none
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
spool:
  directory: {spool}
  segment_mb: 32
  staging_mb: 16
routes:
  smarthost:
    - {{address: {KERNEL_ADDR}, port: {HOP_PORT}, tls: {policy}, tls_name: {HOP_NAME}}}
relay:
  helo_name: {HOSTNAME}
  retry_first_s: 1
  retry_max_s: 2
"""


def send_one(dp, body):
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    smtp.sendmail("sender@example.org", ["someone@elsewhere.example"], body)
    smtp.quit()


@netns
def test_encrypt_policy_delivers_over_verified_starttls(start_dataplane, certs, hop_certs,
                                                        tmp_path):
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key")
    try:
        send_one(dp, b"Subject: to the hop\r\n\r\nover verified TLS\r\n")
        got = hop.wait(1)
        assert len(got) == 1, dp.stdout()[-2000:]
        assert got[0]["tls"], "the hop took it under TLS"
        assert "over verified TLS" in got[0]["data"]
        assert dp.wait_counter("tls_handshakes_client", 1) == 1
        assert dp.wait_counter("relay_messages_delivered", 1) == 1
    finally:
        hop.stop()


@netns
def test_encrypt_policy_defers_when_the_hops_certificate_does_not_verify(start_dataplane, certs,
                                                                          hop_certs, tmp_path):
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "rogue.pem", hop_certs / "rogue.key")
    try:
        send_one(dp, b"Subject: not to a stranger\r\n\r\nkeep me\r\n")
        assert dp.wait_counter("tls_fail_verify", 1, timeout=10) >= 1
        assert dp.wait_counter("relay_messages_deferred", 1, timeout=10) >= 1
        assert dp.counter("relay_messages_delivered") == 0
        assert dp.counter("relay_messages_bounced") == 0
        assert hop.messages() == []
    finally:
        hop.stop()


@netns
def test_may_policy_uses_starttls_without_verifying(start_dataplane, certs, hop_certs, tmp_path):
    """tls: may takes STARTTLS when offered and does not ask who the hop is (RFC 3207 §4,
    opportunistic): a self-signed certificate is fine."""
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool", "may"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "rogue.pem", hop_certs / "rogue.key",
                 mode="require")
    try:
        send_one(dp, b"Subject: may\r\n\r\nopportunistic\r\n")
        got = hop.wait(1)
        assert len(got) == 1, dp.stdout()[-2000:]
        assert got[0]["tls"], "STARTTLS was offered, so it was used"
        assert dp.counter("tls_fail_verify") == 0
    finally:
        hop.stop()


@netns
def test_may_policy_falls_back_to_clear_text_when_the_handshake_fails(start_dataplane, certs,
                                                                     hop_certs, tmp_path):
    """A hop that offers STARTTLS but cannot complete a TLS 1.2+ handshake: "may" retries
    that hop in the clear (Postfix's opportunistic level), so the mail is delivered."""
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool", "may"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="broken")
    try:
        send_one(dp, b"Subject: may, broken TLS\r\n\r\nin the clear then\r\n")
        got = hop.wait(1, timeout=30)
        assert len(got) == 1, dp.stdout()[-2000:]
        assert not got[0]["tls"], "delivered in the clear after the failed handshake"
        assert "in the clear then" in got[0]["data"]
        assert dp.counter("tls_handshakes_client") == 0
        assert dp.wait_counter("relay_messages_delivered", 1) == 1
        assert dp.counter("relay_messages_bounced") == 0
    finally:
        hop.stop()


@netns
def test_may_policy_sends_in_the_clear_to_a_hop_without_starttls(start_dataplane, certs,
                                                                 hop_certs, tmp_path):
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool", "may"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="plain")
    try:
        send_one(dp, b"Subject: may, no STARTTLS\r\n\r\nclear\r\n")
        got = hop.wait(1)
        assert len(got) == 1, dp.stdout()[-2000:]
        assert not got[0]["tls"]
        assert dp.counter("relay_messages_deferred") == 0
    finally:
        hop.stop()


@netns
def test_encrypt_policy_defers_when_the_hop_offers_no_starttls(start_dataplane, certs,
                                                              hop_certs, tmp_path):
    """RFC 3207 §4: a client that requires TLS does not send mail in the clear."""
    dp = start_dataplane(extra=encrypt_relay_config(certs, tmp_path / "spool"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="plain")
    try:
        send_one(dp, b"Subject: encrypt, no STARTTLS\r\n\r\nkeep me\r\n")
        assert dp.wait_counter("relay_messages_deferred", 1, timeout=10) >= 1
        assert dp.counter("relay_messages_delivered") == 0
        assert hop.messages() == []
    finally:
        hop.stop()


# --- certificates read again on a config reload ------------------------------------------


@netns
def test_a_reload_picks_up_renewed_certificate_files_and_keeps_sessions(start_dataplane, certs,
                                                                        tmp_path):
    import hashlib
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs / "rsa.pem", live / "cert.pem")
    shutil.copy(certs / "rsa.key", live / "key.pem")
    dp = start_dataplane(extra=f"""\
tls:
  certificates:
    - cert: {live}/cert.pem
      key: {live}/key.pem
listeners:
  - name: mx
    port: 25
    hostname: {HOSTNAME}
policy:
  relay_networks: [198.51.100.0/24]
""")

    def starttls_session():
        s = connect(dp)
        _, rest = read_reply(s)
        s.sendall(b"EHLO client.example.org\r\n")
        _, rest = read_reply(s, rest)
        s.sendall(b"STARTTLS\r\n")
        read_reply(s, rest)
        t = client_context(certs).wrap_socket(s, server_hostname=HOSTNAME)
        t.sendall(b"EHLO client.example.org\r\n")
        read_reply(t)
        return t, hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()

    old, fp_old = starttls_session()
    # the operator renews the certificate in place (certbot, then a reload)
    shutil.copy(certs / "ec.pem", live / "cert.pem")
    shutil.copy(certs / "ec.key", live / "key.pem")
    r = dp.cmd("/mxgate/reload")
    assert "error" not in json.dumps(r), r
    new, fp_new = starttls_session()
    assert fp_new != fp_old, "the new session got the renewed certificate"
    assert fp_old == hashlib.sha256(
        ssl.PEM_cert_to_DER_cert((certs / "rsa.pem").read_text())).hexdigest()
    assert fp_new == hashlib.sha256(
        ssl.PEM_cert_to_DER_cert((certs / "ec.pem").read_text())).hexdigest()
    old.sendall(b"NOOP\r\n")  # the session from before the reload goes on under TLS
    assert read_reply(old)[0].startswith(b"250")
    for t in (old, new):
        t.sendall(b"QUIT\r\n")
        assert read_reply(t)[0].startswith(b"221")
        t.close()


# --- tls: settings changed by a reload (control/config/restart.c: hitless) ----------------


def reload_with(dp, old, new):
    """Rewrites DP's config file, OLD replaced by NEW, and has mxgate-dp reload it."""
    text = dp.config.read_text()
    assert old in text, old
    dp.config.write_text(text.replace(old, new, 1))
    r = dp.cmd("/mxgate/reload")
    assert '"applied"' in json.dumps(r), r
    return r


def s_client(dp, certs, *version):
    return dp.ns.exec("openssl", "s_client", "-starttls", "smtp", *version, "-connect",
                      f"{DP_ADDR}:25", "-CAfile", certs / "ca.pem", "-verify_hostname",
                      HOSTNAME, "-verify_return_error", "-brief", "-crlf", "-ign_eof",
                      input="QUIT\n", check=False, timeout=30)


@netns
def test_a_reload_to_tls13_only_refuses_new_tls12_clients_and_keeps_earlier_sessions(
        start_dataplane, certs):
    dp = start_dataplane(extra=sink_config(certs))
    # a session that negotiated TLS 1.2 before the reload
    s = connect(dp)
    _, rest = read_reply(s)
    s.sendall(b"EHLO client.example.org\r\n")
    _, rest = read_reply(s, rest)
    s.sendall(b"STARTTLS\r\n")
    read_reply(s, rest)
    ctx = client_context(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    old = ctx.wrap_socket(s, server_hostname=HOSTNAME)
    assert old.version() == "TLSv1.2"
    old.sendall(b"EHLO client.example.org\r\n")
    assert read_reply(old)[0].startswith(b"250")
    out = s_client(dp, certs, "-tls1_2")
    assert re.search(r"^221 ", out.stdout + out.stderr, re.M), out.stdout + out.stderr

    reload_with(dp, "  handshake_timeout_ms:", "  min_version: TLSv1.3\n  handshake_timeout_ms:")

    r = s_client(dp, certs, "-tls1_2")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and not re.search(r"^221 ", out, re.M), out
    assert "Verification: OK" not in out, out
    r = s_client(dp, certs, "-tls1_3")
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.3" in out and re.search(r"^221 ", out, re.M), out
    # the TLS 1.2 session from before the reload goes on
    old.sendall(b"NOOP\r\n")
    assert read_reply(old)[0].startswith(b"250")
    old.sendall(b"QUIT\r\n")
    assert read_reply(old)[0].startswith(b"221")
    old.close()
    assert dp.wait_counter("tls_fail_version", 1) >= 1, "the refused ClientHello is counted"


@netns
def test_the_relay_takes_a_reloaded_tls_section_for_its_encrypt_hop(start_dataplane, certs,
                                                                     hop_certs, tmp_path):
    config = encrypt_relay_config(certs, tmp_path / "spool") + "  messages_per_connection: 1\n"
    dp = start_dataplane(extra=config)
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key")
    try:
        send_one(dp, b"Subject: one\r\n\r\nbefore the reload\r\n")
        assert len(hop.wait(1)) == 1, dp.stdout()[-2000:]
        # versions changed: STARTTLS to the hop still works, verified, with the new context
        reload_with(dp, "  handshake_timeout_ms:",
                    "  min_version: TLSv1.3\n  handshake_timeout_ms:")
        send_one(dp, b"Subject: two\r\n\r\nafter a tls reload\r\n")
        got = hop.wait(2)
        assert len(got) == 2 and all(m["tls"] for m in got), dp.stdout()[-2000:]
        assert dp.wait_counter("relay_messages_delivered", 2) == 2
        assert dp.counter("tls_fail_verify") == 0
        # a CA file that does not vouch for the hop: the relay really took the new context
        reload_with(dp, f"  ca_file: {certs}/ca.pem", f"  ca_file: {hop_certs}/rogue.pem")
        send_one(dp, b"Subject: three\r\n\r\nnot under a CA that does not know the hop\r\n")
        assert dp.wait_counter("tls_fail_verify", 1, timeout=10) >= 1, dp.stdout()[-2000:]
        assert len(hop.messages()) == 2
    finally:
        hop.stop()
