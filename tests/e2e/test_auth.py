# SPDX-License-Identifier: BSD-3-Clause
"""Authenticated submission on the wire (RFC 4954, RFC 6409): AUTH PLAIN and
LOGIN over STARTTLS (587) and implicit TLS (465), checked against a password
file of yescrypt/sha512-crypt/bcrypt hashes by the authentication thread, with
swaks and Python's smtplib as clients. Bad input: AUTH in the clear (538),
MAIL before AUTH on submission (530), "*", bad base64, an over-long line, AUTH
before EHLO, AUTH twice. A client that keeps guessing is locked out (421) and
refused at the greeting until the lockout ends. An authenticated client may
relay anywhere and its mail says ESMTPSA in our Received: header; a user added
with mxgatectl user add can log in after a config reload."""

import base64
import re
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import DP_ADDR
from mxctl import MXGATECTL, Control, control_yaml
from test_relay import HOP_A, HOP_PORT, NextHop
from test_tls import HOSTNAME, certs, tls_section  # noqa: F401 (certs is a fixture)

netns = pytest.mark.netns

SUB_PORT = 587
SMTPS_PORT = 465
MAX_FAILURES = 5
LOCKOUT_S = 3

USERS = {"alice": ("s3cret-alice", "yescrypt"), "bob": ("s3cret-bob", "sha512"),
         "carol": ("s3cret-carol", "bcrypt")}


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


def password_file(path):
    """USERS, one per crypt(3) scheme we promise, made by mxgatectl user add as an operator
    would (it hashes with libxcrypt; Python's crypt module cannot make yescrypt)."""
    path.write_text("# e2e users\n")
    for user, (pw, scheme) in USERS.items():
        r = subprocess.run([str(MXGATECTL), "user", "add", user, "--file", str(path),
                            "--password-stdin", "--scheme", scheme], input=pw + "\n",
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    text = path.read_text()
    for user, (_, scheme) in USERS.items():
        prefix = {"yescrypt": "$y$", "sha512": "$6$", "bcrypt": "$2b$"}[scheme]
        assert f"\n{user}:{prefix}" in text, text
    return path


def auth_config(certs, users, ack="sink", extra="", relay_networks=False):
    nets = "  relay_networks: [198.51.100.0/24]\n" if relay_networks else ""
    return tls_section(certs) + f"""\
auth:
  password_file: {users}
  max_failures: {MAX_FAILURES}
  lockout_s: {LOCKOUT_S}
listeners:
  - name: submission
    port: {SUB_PORT}
    mode: submission
    ack: {ack}
    hostname: {HOSTNAME}
  - name: submissions
    port: {SMTPS_PORT}
    mode: submission
    ack: {ack}
    hostname: {HOSTNAME}
    tls: implicit
  - name: mx
    port: 25
    hostname: {HOSTNAME}
policy:
  relay_domains: [example.com]
{nets}{extra}"""


@pytest.fixture
def users(tmp_path):
    return password_file(tmp_path / "users")


@pytest.fixture
def auth_dp(start_dataplane, certs, users):
    return start_dataplane(extra=auth_config(certs, users))


def ctx(certs):
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


def submission(dp, certs, port=SUB_PORT):
    """smtplib over STARTTLS (587) or implicit TLS (465), EHLO done."""
    with dp.netns():
        if port == SMTPS_PORT:
            s = smtplib.SMTP_SSL(DP_ADDR, port, timeout=15, context=ctx(certs))
        else:
            s = smtplib.SMTP(DP_ADDR, port, timeout=15)
    s.ehlo("client.example.org")
    if port != SMTPS_PORT:
        code, _ = s.starttls(context=ctx(certs))
        assert code == 220
        s.ehlo("client.example.org")
    return s


def login(s, user, pw, mech="PLAIN"):
    """One AUTH attempt (smtplib's login() would try the next mechanism after a 535,
    which counts twice toward the lockout). Returns the code; raises on 535."""
    s.user, s.password = user, pw
    return s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)[0]


def swaks(dp, certs, *args):
    need("swaks")
    r = dp.ns.exec("swaks", "--server", DP_ADDR, "--to", "someone@elsewhere.example.org",
                   "--from", "alice@example.com", "--helo", "client.example.org",
                   "--tls-ca-path", str(certs / "ca.pem"), "--timeout", "20", *args,
                   check=False, timeout=60)
    return r.returncode, r.stdout + r.stderr


# --- clients ----------------------------------------------------------------


@netns
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_tls_auth_right_and_wrong_password(auth_dp, certs, mech):
    for user, (pw, _) in USERS.items():
        rc, out = swaks(auth_dp, certs, "--port", str(SUB_PORT), "--tls", "--auth", mech,
                        "--auth-user", user, "--auth-password", pw)
        assert rc == 0, out
        assert "235 2.7.0 Authentication successful" in out, out
        assert re.search(r"<~\s+250 2\.0\.0 Ok: queued as", out), out
    rc, out = swaks(auth_dp, certs, "--port", str(SUB_PORT), "--tls", "--auth", mech,
                    "--auth-user", "bob", "--auth-password", "wrong", "--quit-after", "AUTH")
    assert rc != 0 and "535 5.7.8 Error: authentication failed" in out, out
    assert auth_dp.wait_counter("smtp_auth_success", 3) == 3
    assert auth_dp.wait_counter("smtp_auth_failure", 1) == 1


@netns
def test_swaks_tls_on_connect_on_465(auth_dp, certs):
    rc, out = swaks(auth_dp, certs, "--port", str(SMTPS_PORT), "--tls-on-connect", "--auth",
                    "PLAIN", "--auth-user", "carol", "--auth-password", USERS["carol"][0])
    assert rc == 0, out
    assert "235 2.7.0 Authentication successful" in out, out


@netns
def test_smtplib_starttls_then_login(auth_dp, certs):
    s = submission(auth_dp, certs)
    assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        login(s, "alice", "not her password", "LOGIN")
    assert e.value.smtp_code == 535
    code, _ = s.login("alice", USERS["alice"][0])
    assert code == 235
    s.sendmail("alice@example.com", ["friend@elsewhere.example.org"], b"Subject: hi\r\n\r\nhi\r\n")
    s.quit()
    # an unknown user gets the very same answer as a wrong password
    s = submission(auth_dp, certs)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        login(s, "mallory", USERS["alice"][0])
    assert e.value.smtp_code == 535
    s.quit()


# --- policy -----------------------------------------------------------------


@netns
def test_auth_in_the_clear_is_538_and_not_offered(auth_dp):
    with auth_dp.netns():
        s = smtplib.SMTP(DP_ADDR, SUB_PORT, timeout=15)
    s.ehlo("client.example.org")
    assert s.has_extn("starttls") and not s.has_extn("auth")
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0x").decode())
    assert (code, msg[:6]) == (538, b"5.7.11"), msg
    s.quit()
    assert auth_dp.wait_counter("smtp_auth_needs_tls", 1) == 1


@netns
def test_submission_refuses_mail_before_auth_with_530(auth_dp, certs):
    s = submission(auth_dp, certs)
    code, msg = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert (code, msg) == (530, b"5.7.0 Authentication required")
    s.login("bob", USERS["bob"][0])
    code, _ = s.docmd("MAIL", "FROM:<bob@example.com>")
    assert code == 250
    s.quit()
    assert auth_dp.wait_counter("smtp_auth_required", 1) == 1
    # the relay port offers STARTTLS but no AUTH (not configured there)
    s = submission(auth_dp, certs, port=25)
    assert not s.has_extn("auth")
    s.quit()


@netns
def test_bad_input_gets_the_rfc_4954_replies(auth_dp, certs):
    with auth_dp.netns():
        s = smtplib.SMTP(DP_ADDR, SUB_PORT, timeout=15)
    s.starttls(context=ctx(certs))
    assert s.docmd("AUTH", "PLAIN")[0] == 503  # before EHLO
    s.ehlo("client.example.org")
    assert s.docmd("AUTH", "LOGIN") == (334, b"VXNlcm5hbWU6")
    assert s.docmd("*") == (501, b"5.0.0 Authentication aborted")
    assert s.docmd("AUTH", "PLAIN") == (334, b"")
    assert s.docmd("not-base64!") == (501, b"5.5.2 Error: cannot decode the response (base64)")
    assert s.docmd("AUTH", "PLAIN") == (334, b"")
    code, msg = s.docmd("A" * 13000)
    assert (code, msg[:5]) == (500, b"5.5.6"), msg
    assert s.docmd("AUTH", "CRAM-MD5")[0] == 504
    s.login("alice", USERS["alice"][0])
    assert s.docmd("AUTH", "PLAIN")[:1] == (503,)  # twice
    s.quit()
    assert auth_dp.wait_counter("smtp_auth_cancelled", 1) == 1
    assert auth_dp.wait_counter("smtp_auth_bad_base64", 1) == 1
    assert auth_dp.wait_counter("smtp_auth_line_too_long", 1) == 1


@netns
def test_lockout_after_n_failures_and_its_end(auth_dp, certs):
    s = submission(auth_dp, certs)
    for i in range(MAX_FAILURES - 1):
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            login(s, "bob", f"guess{i}", "LOGIN" if i % 2 else "PLAIN")
        assert e.value.smtp_code == 535
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0bob\0guess-last").decode())
    while code == 334:  # never: PLAIN with an initial response answers at once
        code, msg = s.docmd("*")
    assert code == 421 and b"4.7.0" in msg, (code, msg)
    assert auth_dp.wait_counter("smtp_auth_lockouts", 1) == 1
    # refused at the greeting, even with the right password in hand
    with auth_dp.netns():
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP(DP_ADDR, SUB_PORT, timeout=15)
    assert e.value.smtp_code == 421
    assert auth_dp.wait_counter("smtp_auth_locked_out", 1) >= 1
    time.sleep(LOCKOUT_S + 0.5)
    s = submission(auth_dp, certs)
    assert s.login("bob", USERS["bob"][0])[0] == 235
    s.quit()


# --- relaying ---------------------------------------------------------------


@netns
def test_authenticated_mail_is_relayed_anywhere_and_says_esmtpsa(start_dataplane, certs,
                                                                 users, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    extra = f"""\
spool:
  directory: {spool}
routes:
  smarthost:
    - {{address: {HOP_A}, port: {HOP_PORT}}}
relay:
  helo_name: {HOSTNAME}
  retry_first_s: 1
"""
    dp = start_dataplane(extra=auth_config(certs, users, ack="store", extra=extra))
    hop_dir = tmp_path / "hop"
    hop_dir.mkdir()
    hop = NextHop(dp, HOP_A, HOP_PORT, hop_dir)
    try:
        s = submission(dp, certs)
        s.login("carol", USERS["carol"][0])
        s.sendmail("carol@example.com", ["someone@elsewhere.example.org"],
                   b"Subject: relayed\r\n\r\nfrom an authenticated client\r\n")
        s.quit()
        got = hop.wait(1)
        assert len(got) == 1, got
        m = got[0]
        assert m["rcpt_tos"] == ["someone@elsewhere.example.org"]
        received = m["data"].split("\r\n\r\n", 1)[0]
        assert re.search(r"Received: from client\.example\.org \(\[198\.51\.100\.1\]\)"
                         r"\s+by mx\.example\.com \(mxgate\) with ESMTPSA id", received), received
    finally:
        hop.stop()


# --- mxgatectl user add, then reload ----------------------------------------


@netns
def test_user_added_with_mxgatectl_logs_in_after_a_reload(start_dataplane, certs, users,
                                                          tmp_path):
    dp = start_dataplane(extra=control_yaml(tmp_path) + auth_config(certs, users))
    ctl = Control(dp, tmp_path)
    ctl.start()
    try:
        r = subprocess.run([str(MXGATECTL), "user", "add", "dave", "--file", str(users),
                            "--password-stdin"], input="dave-pw\n", capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        s = submission(dp, certs)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            login(s, "dave", "dave-pw")  # not before the reload
        s.quit()
        r = ctl.ctl("config", "reload")
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.monotonic() + 5
        while "reloaded 4 users" not in dp.stdout():
            assert time.monotonic() < deadline, dp.stdout()
            time.sleep(0.1)
        s = submission(dp, certs)
        assert s.login("dave", "dave-pw")[0] == 235
        s.quit()
        assert re.search(r"auth: user=dave client=198\.51\.100\.1 worker=0 ok", dp.stdout())
    finally:
        problems = ctl.teardown()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


# --- long AUTH lines: buffers lent from a worker's pool ---------------------------------


@netns
def test_a_long_auth_line_borrows_the_workers_buffer_and_a_second_at_once_gets_454(
        start_dataplane, certs, users):
    """auth.queue_depth 1: one buffer for AUTH lines longer than a command line (RFC
    4954 §4 allows 12288 octets); sessions themselves reserve only 512. While session A
    holds it, B's long AUTH line gets 454 4.7.0 (RFC 4954 §6); afterwards B's goes through."""
    config = auth_config(certs, users).replace(f"  lockout_s: {LOCKOUT_S}\n",
                                               f"  lockout_s: {LOCKOUT_S}\n  queue_depth: 1\n")
    dp = start_dataplane(extra=config)
    assert "auth: 1 buffers of 12290 octets for long AUTH lines" in dp.stdout()
    line = b"AUTH PLAIN " + b"A" * 12276  # 12287 octets before the CRLF
    a, b = submission(dp, certs), submission(dp, certs)
    a.sock.sendall(line[:6000])  # A is halfway through its line
    time.sleep(0.2)
    code, msg = None, None
    for _ in range(3):  # fewer than MAX_FAILURES: a 535 here must not lock B's address out
        code, msg = b.docmd(line.decode())
        if code == 454:
            break
        time.sleep(0.3)  # A's octets were not in yet: B took the buffer and gave it back
    assert (code, msg) == (454, b"4.7.0 Temporary authentication failure"), (code, msg)
    assert dp.wait_counter("smtp_auth_no_line_buffer", 1) == 1
    assert b.docmd("NOOP")[0] == 250  # the rest of B's line was dropped unread
    a.sock.sendall(line[6000:] + b"\r\n")
    code, msg = a.getreply()
    assert (code, msg) == (535, b"5.7.8 Error: authentication failed"), (code, msg)
    # the buffer is back: B's long line is read (a malformed PLAIN message: 535, not 454)
    assert b.docmd(line.decode())[0] == 535
    assert login(b, "alice", USERS["alice"][0]) == 235
    assert dp.counter("smtp_auth_no_line_buffer") == 1
    for s in (a, b):
        s.quit()
