# SPDX-License-Identifier: BSD-3-Clause
"""SMTP on the wire, in sink mode, as mail clients meet it: swaks (plain,
pipelined, several recipients, an 8-bit body), Python's smtplib (EHLO
keywords, SMTPUTF8 addresses), BDAT over a raw socket, Postfix's smtp-source
sending 10,000 messages over 20 sessions, and the refusals: relaying from
outside relay_networks (554 5.7.1), unknown recipients (550 5.1.1), a client
that talks before the greeting (554), 10 MB without CRLF (500 then 421 and
close, while another session goes on) and a message over SIZE (552).

The kernel's end of the tap is 198.51.100.1, inside relay_networks; for an
outsider it also gets 203.0.113.10, which the dataplane reaches through its
default route."""

import shutil
import smtplib
import socket
import subprocess
import threading
import time
from email.message import EmailMessage

import pytest

from conftest import DP_ADDR

netns = pytest.mark.netns

RELAY_PORT = 25
SUBMISSION_PORT = 587
SUBMISSION_ALT_PORT = 2525
PAUSE_PORT = 2526  # a relay listener with a greeting pause, for early talkers
NORMALIZE_PORT = 2527  # a relay listener that rewrites bare CR/LF in content
MAX_SIZE = 1048576
OUTSIDER = "203.0.113.10"  # not in relay_networks

SMTP_CONFIG = f"""\
listeners:
  - name: mx
    port: {RELAY_PORT}
    mode: relay
    hostname: mx.example.com
    limits:
      max_message_size: {MAX_SIZE}
  - name: submission
    port: {SUBMISSION_PORT}
    mode: submission
  - name: submission-alt
    port: {SUBMISSION_ALT_PORT}
    mode: submission
  - name: pause
    port: {PAUSE_PORT}
    greeting_pause_ms: 1000
  - name: normalize
    port: {NORMALIZE_PORT}
    normalize_bare_eol: true
policy:
  relay_domains: [example.com, "*.example.net"]
  relay_networks: [198.51.100.0/24]
  recipients:
    - domain: example.com
      local_parts: [alice, bob]
    - domain: "*.example.net"
      local_parts: ["*"]
"""


@pytest.fixture
def smtp_dp(start_dataplane):
    return start_dataplane(extra=SMTP_CONFIG)


# --- helpers ------------------------------------------------------------------


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


class Client:
    """A line-level SMTP client over a socket in the test's namespace."""

    def __init__(self, dp, port=RELAY_PORT, source=None, timeout=10.0, greet=True):
        with dp.netns():
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if source:
            self.s.bind((source, 0))
        self.s.connect((DP_ADDR, port))
        self.buf = b""
        if greet:
            self.expect(220)

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One whole reply: (code, [lines]); (None, []) when the connection closed."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return None, lines
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def expect(self, code, contains=None):
        got, lines = self.reply()
        assert got == code, f"expected {code}, got {got}: {lines}"
        if contains:
            assert any(contains in ln for ln in lines), f"{contains!r} not in {lines}"
        return lines

    def cmd(self, line, code, contains=None):
        self.send(line + "\r\n")
        return self.expect(code, contains)

    def closed(self, timeout=5.0):
        """True when the server closes (FIN or RST) within TIMEOUT."""
        self.s.settimeout(timeout)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def swaks(dp, *args, port=RELAY_PORT):
    return dp.ns.exec("swaks", "--server", f"{DP_ADDR}:{port}", "--helo", "client.example.org",
                      "--from", "sender@example.org", *args, check=False, timeout=60)


# --- mail gets in ---------------------------------------------------------------


@netns
def test_swaks_plain_message_is_queued(smtp_dp):
    need("swaks")
    r = swaks(smtp_dp, "--to", "alice@example.com")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert smtp_dp.wait_counter("smtp_messages_accepted", 1) == 1


@netns
def test_swaks_pipelined_to_several_recipients_with_an_8bit_body(smtp_dp):
    need("swaks")
    body = "Grüße aus Köln, ça va? 日本語\r\n".encode() * 20
    r = smtp_dp.ns.exec("swaks", "--server", f"{DP_ADDR}:{RELAY_PORT}", "--pipeline",
                        "--from", "sender@example.org",
                        "--to", "alice@example.com,bob@example.com,carol@sub.example.net",
                        "--add-header", "Content-Type: text/plain; charset=utf-8",
                        "--body", "-", input=body.decode(), check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PIPELINING" in r.stdout
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert smtp_dp.wait_counter("smtp_rcpts_accepted", 3) == 3
    assert smtp_dp.wait_counter("smtp_messages_accepted", 1) == 1


@netns
def test_smtplib_sees_every_ehlo_keyword_and_sends_smtputf8(smtp_dp):
    with smtp_dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, RELAY_PORT, timeout=10)
    try:
        code, _ = smtp.ehlo("client.example.org")
        assert code == 250
        for kw in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8",
                   "chunking", "dsn"):
            assert smtp.has_extn(kw), f"{kw} missing from {smtp.esmtp_features}"
        assert smtp.esmtp_features["size"] == str(MAX_SIZE)
        msg = EmailMessage()
        msg["From"] = "josé@example.org"
        msg["To"] = "δοκιμή@mail.example.net"
        msg["Subject"] = "SMTPUTF8 über alles"
        msg.set_content("Ünïcödé body\n")
        refused = smtp.send_message(msg)  # adds SMTPUTF8 itself for these addresses
        assert refused == {}
        code, _ = smtp.noop()
        assert code == 250
    finally:
        smtp.quit()
    assert smtp_dp.wait_counter("smtp_messages_accepted", 1) == 1


@netns
def test_bdat_chunks_over_a_raw_socket_are_queued(smtp_dp):
    c = Client(smtp_dp)
    c.cmd("EHLO client.example.org", 250, "CHUNKING")
    c.cmd("MAIL FROM:<sender@example.org> BODY=8BITMIME", 250)
    c.cmd("RCPT TO:<alice@example.com>", 250)
    first = b"Subject: chunked\r\n\r\nfirst part, "
    c.send(b"BDAT %d\r\n" % len(first) + first)
    c.expect(250)
    last = b"and the last part.\r\n.\r\n"  # a dot line inside BDAT is just content
    c.send(b"BDAT %d LAST\r\n" % len(last) + last)
    c.expect(250, "queued as")
    c.cmd("MAIL FROM:<> ", 250)
    c.cmd("RCPT TO:<bob@example.com>", 250)
    c.send(b"BDAT 0 LAST\r\n")
    c.expect(250, "queued as")
    c.cmd("QUIT", 221)
    assert c.closed()
    c.close()
    assert smtp_dp.wait_counter("smtp_messages_accepted", 2) == 2


@netns
def test_smtp_source_10000_messages_over_20_sessions_all_get_250(smtp_dp):
    need("smtp-source")
    r = smtp_dp.ns.exec("smtp-source", "-s", "20", "-m", "10000", "-d", "-c",
                        "-f", "sender@example.org", "-t", "alice@example.com",
                        f"{DP_ADDR}:{RELAY_PORT}", check=False, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in r.stderr.lower(), r.stderr
    assert smtp_dp.wait_counter("smtp_messages_accepted", 10000, timeout=5) == 10000
    assert smtp_dp.counter("smtp_replies_5xx") == 0
    assert smtp_dp.counter("smtp_replies_4xx") == 0


# --- policy ---------------------------------------------------------------------


@pytest.fixture
def outsider(smtp_dp):
    """The kernel gets 203.0.113.10 too: a client outside relay_networks."""
    smtp_dp.ns.ip("addr", "add", f"{OUTSIDER}/32", "dev", smtp_dp.iface)
    return OUTSIDER


@netns
def test_relaying_from_outside_relay_networks_is_denied(smtp_dp, outsider):
    c = Client(smtp_dp, source=outsider)
    c.cmd("EHLO outside.example.org", 250)
    c.cmd("MAIL FROM:<someone@example.org>", 250)
    c.cmd("RCPT TO:<victim@elsewhere.example>", 554, "5.7.1")
    c.cmd("RCPT TO:<victim@example.net>", 554, "5.7.1")  # "*.example.net" is not example.net
    c.cmd("RCPT TO:<alice@example.com>", 250)  # our own domain: from anyone
    c.cmd("RCPT TO:<nobody@example.com>", 550, "5.1.1")
    c.cmd("RCPT TO:<anyone@deep.sub.example.net>", 250)
    c.cmd("RCPT TO:<postmaster@example.com>", 250)
    c.cmd("QUIT", 221)
    c.close()
    assert smtp_dp.wait_counter("smtp_relay_denied", 2) == 2
    assert smtp_dp.wait_counter("smtp_rcpt_unknown", 1) == 1


@netns
def test_relay_network_may_send_anywhere(smtp_dp):
    c = Client(smtp_dp)
    c.cmd("EHLO inside.example.org", 250)
    c.cmd("MAIL FROM:<someone@example.org>", 250)
    c.cmd("RCPT TO:<friend@elsewhere.example>", 250)
    c.cmd("DATA", 354)
    c.send("Subject: out\r\n\r\nhello\r\n.\r\n")
    c.expect(250, "queued as")
    c.cmd("QUIT", 221)
    c.close()


@netns
@pytest.mark.parametrize("port", [SUBMISSION_PORT, SUBMISSION_ALT_PORT])
def test_submission_takes_only_relay_networks_until_auth(smtp_dp, outsider, port):
    c = Client(smtp_dp, port=port, source=outsider)
    c.cmd("EHLO outside.example.org", 250)
    c.cmd("MAIL FROM:<someone@example.org>", 250)
    c.cmd("RCPT TO:<alice@example.com>", 554, "5.7.1")
    c.cmd("QUIT", 221)
    c.close()
    c = Client(smtp_dp, port=port)
    c.cmd("EHLO inside.example.org", 250)
    c.cmd("MAIL FROM:<user@example.com>", 250)
    c.cmd("RCPT TO:<friend@elsewhere.example>", 250)
    c.cmd("QUIT", 221)
    c.close()


# --- limits -----------------------------------------------------------------------


@netns
def test_client_talking_before_the_greeting_gets_554(smtp_dp):
    c = Client(smtp_dp, port=PAUSE_PORT, greet=False)
    c.send("EHLO early.example.org\r\n")
    c.expect(554, "5.7.0")
    assert c.closed()
    c.close()
    assert smtp_dp.wait_counter("smtp_early_talkers", 1) == 1
    patient = Client(smtp_dp, port=PAUSE_PORT)  # waits for the 220: served
    patient.cmd("EHLO patient.example.org", 250)
    patient.cmd("QUIT", 221)
    patient.close()


@netns
def test_10mb_without_crlf_gets_500_then_421_while_another_session_goes_on(smtp_dp):
    other = Client(smtp_dp)
    other.cmd("EHLO other.example.org", 250)
    other.cmd("MAIL FROM:<sender@example.org>", 250)

    flood = Client(smtp_dp)
    # A command line over 512 octets that does end: 500, and the session goes on...
    flood.cmd("NOOP " + "x" * 2000, 500, "5.5.2")
    flood.cmd("NOOP", 250)
    # ...but input that never ends a line is cut off at the hard cap: 421 and close.
    junk = b"x" * 65536
    errors = []

    def pour():
        try:
            for _ in range(160):  # 10 MiB
                flood.s.sendall(junk)
        except OSError as e:  # the server closed on us: expected
            errors.append(e)

    t = threading.Thread(target=pour)
    t.start()
    # 500 as soon as the line passes 512 octets, then 421 at the hard cap.
    flood.expect(500, "5.5.2")
    flood.expect(421, "4.7.0")
    assert flood.closed()
    t.join(timeout=60)
    assert not t.is_alive()
    flood.close()

    other.cmd("RCPT TO:<bob@example.com>", 250)
    other.cmd("DATA", 354)
    other.send("Subject: still here\r\n\r\nfine\r\n.\r\n")
    other.expect(250, "queued as")
    other.cmd("QUIT", 221)
    other.close()
    assert smtp_dp.wait_counter("smtp_input_no_crlf", 1) == 1


@netns
def test_message_larger_than_size_gets_552(smtp_dp):
    c = Client(smtp_dp)
    c.cmd("EHLO client.example.org", 250, f"SIZE {MAX_SIZE}")
    c.cmd(f"MAIL FROM:<sender@example.org> SIZE={MAX_SIZE + 1}", 552, "5.3.4")
    c.cmd("MAIL FROM:<sender@example.org>", 250)
    c.cmd("RCPT TO:<alice@example.com>", 250)
    c.cmd("DATA", 354)
    line = b"y" * 998 + b"\r\n"
    c.send(b"Subject: big\r\n\r\n" + line * (MAX_SIZE // len(line) + 10) + b".\r\n")
    c.expect(552, "5.3.4")
    c.cmd("QUIT", 221)
    c.close()
    assert smtp_dp.wait_counter("smtp_size_exceeded", 1) == 1


@netns
def test_bare_lf_in_content_is_refused_554_or_normalised_where_configured(smtp_dp):
    body = "Subject: bare\r\n\r\nline one\nline two\r\n.\r\n"
    for port, code, text in ((RELAY_PORT, 554, "5.6.0"), (NORMALIZE_PORT, 250, "queued as")):
        c = Client(smtp_dp, port=port)
        c.cmd("EHLO client.example.org", 250)
        c.cmd("MAIL FROM:<sender@example.org>", 250)
        c.cmd("RCPT TO:<alice@example.com>", 250)
        c.cmd("DATA", 354)
        c.send(body)
        c.expect(code, text)
        c.cmd("QUIT", 221)
        c.close()
    assert smtp_dp.wait_counter("smtp_data_normalized", 1) == 1
    assert smtp_dp.counter("smtp_messages_accepted") == 1
