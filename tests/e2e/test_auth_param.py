# SPDX-License-Identifier: BSD-3-Clause
"""The MAIL AUTH= parameter end to end (RFC 4954 §5): a message submitted by an
authenticated client is spooled with its submitter and relayed in store mode
with AUTH=<mailbox> to a next hop that offers AUTH; a message nobody vouches for
goes with no AUTH= (AUTH=<> is owed only to a hop we authenticated to, and we
never do), and a hop that does not offer AUTH never sees AUTH=. The
identity is on disk: it survives a kill -9 of mxgate-dp while the hop is down.
Where AUTH is not offered (port 25 here) AUTH= is 555 like any unknown
parameter; malformed xtext is 501 5.5.4. The relay's log names the submitter."""

import re
import smtplib
import time

import pytest

from conftest import DP_ADDR
from test_auth import SUB_PORT, USERS, password_file, submission
from test_relay import HOP_A, HOP_PORT, NextHop, next_hops, recovery_line  # noqa: F401
from test_tls import HOSTNAME, certs, tls_section  # noqa: F401 (certs is a fixture)

netns = pytest.mark.netns

TO = "someone@elsewhere.example.org"


CUT_SUB_PORT = 2525


def config(certs, users, spool):
    """Submission (587, AUTH under TLS, our network may submit without it) and port 25
    (no AUTH), both store mode, and submission in cut-through mode on 2525; everything
    goes to the next hop at HOP_A."""
    return tls_section(certs) + f"""\
auth:
  password_file: {users}
listeners:
  - name: submission
    port: {SUB_PORT}
    mode: submission
    ack: store
    hostname: {HOSTNAME}
  - name: mx
    port: 25
    ack: store
    hostname: {HOSTNAME}
  - name: submission-cut
    port: {CUT_SUB_PORT}
    mode: submission
    ack: cut-through
    hostname: {HOSTNAME}
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
spool:
  directory: {spool}
routes:
  smarthost:
    - {{address: {HOP_A}, port: {HOP_PORT}}}
relay:
  helo_name: {HOSTNAME}
  retry_first_s: 1
"""


@pytest.fixture
def auth_store(start_dataplane, certs, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    users = password_file(tmp_path / "users")
    return start_dataplane(extra=config(certs, users, spool))


def send_authenticated(dp, certs, user, subject, mail_options=(), port=SUB_PORT):
    s = submission(dp, certs, port)
    s.login(user, USERS[user][0])
    s.sendmail(f"{user}@example.com", [TO], f"Subject: {subject}\r\n\r\nbody\r\n".encode(),
               mail_options=list(mail_options))
    s.quit()


def by_subject(msgs):
    return {re.search(r"Subject: (.*)\r\n", m["data"]).group(1): m for m in msgs}


def wait_log(dp, pattern, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not re.search(pattern, dp.stdout()):
        assert time.monotonic() < deadline, f"no /{pattern}/ in the log:\n{dp.stdout()[-3000:]}"
        time.sleep(0.1)


@netns
def test_the_submitter_reaches_a_hop_offering_auth_and_nobody_goes_without_auth(
        auth_store, certs, tmp_path, next_hops):
    dp = auth_store
    hop = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "hop", "--offer-auth", "--log-reads")
    next_hops.append(hop)

    # authenticated, no AUTH=: we vouch for the user (RFC 4954 §5, "MAY supply")
    send_authenticated(dp, certs, "carol", "carol plain")
    # authenticated, AUTH= naming the user's own mailbox: kept
    send_authenticated(dp, certs, "bob", "bob own", [f"AUTH=bob@{HOSTNAME}"])
    # authenticated, AUTH=<>: the submitter is unknown; AUTH= naming someone else: a claim
    # we do not trust. Neither is vouched for: no AUTH= at all
    send_authenticated(dp, certs, "alice", "alice empty", ["AUTH=<>"])
    send_authenticated(dp, certs, "alice", "alice claims", ["AUTH=carol+40elsewhere.example"])
    # not authenticated (our network may submit): AUTH= says nothing then
    s = submission(dp, certs)
    s.sendmail("dave@example.com", [TO], b"Subject: unauth claim\r\n\r\nbody\r\n",
               mail_options=[f"AUTH=carol@{HOSTNAME}"])
    s.quit()
    # port 25, no AUTH offered: plain relay mail
    with dp.netns():
        s = smtplib.SMTP(DP_ADDR, 25, timeout=15)
    s.ehlo("client.example.org")
    s.sendmail("eve@example.org", ["user@example.com"], b"Subject: mx plain\r\n\r\nbody\r\n")
    s.quit()

    got = by_subject(hop.wait(6))
    assert len(got) == 6, got.keys()
    want = {"carol plain": f"carol@{HOSTNAME}", "bob own": f"bob@{HOSTNAME}",
            "alice empty": None, "alice claims": None, "unauth claim": None, "mx plain": None}
    for subject, auth in want.items():
        assert got[subject]["mail_auth"] == auth, (subject, got[subject]["mail_auth"])
    # the MAIL line as the hop read it
    reads = "".join(got["carol plain"]["reads"])
    assert re.search(rf"MAIL FROM:<carol@example\.com>[^\r]* AUTH=carol@{re.escape(HOSTNAME)}"
                     r"\r\n", reads), reads
    # the delivery log names the submitter, and only where there is one
    wait_log(dp, rf"status=delivered from=<carol@example\.com> auth=<carol@{re.escape(HOSTNAME)}>"
                 rf" to=<{re.escape(TO)}>")
    assert re.search(r"status=delivered from=<eve@example\.org> to=", dp.stdout())
    assert not re.search(r"from=<alice@example\.com> auth=", dp.stdout())


@netns
def test_cut_through_passes_the_submitter_on_as_the_relay_does(auth_store, certs, tmp_path,
                                                                next_hops):
    dp = auth_store
    hop = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "hop", "--offer-auth", "--log-reads")
    next_hops.append(hop)
    send_authenticated(dp, certs, "carol", "cut carol", port=CUT_SUB_PORT)
    send_authenticated(dp, certs, "alice", "cut alice claims",
                       ["AUTH=carol+40elsewhere.example"], port=CUT_SUB_PORT)
    got = by_subject(hop.wait(2))
    assert got["cut carol"]["mail_auth"] == f"carol@{HOSTNAME}"
    assert got["cut alice claims"]["mail_auth"] is None
    assert re.search(rf"MAIL FROM:<carol@example\.com>[^\r]* AUTH=carol@{re.escape(HOSTNAME)}"
                     r"\r\n", "".join(got["cut carol"]["reads"]))
    assert dp.wait_counter("smtp_messages_accepted", 2) == 2
    assert dp.counter("spool_messages") == 0  # the hop's 250, nothing spooled


@netns
def test_a_hop_not_offering_auth_sees_no_auth_parameter(auth_store, certs, tmp_path,
                                                        next_hops):
    dp = auth_store
    hop = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "hop", "--log-reads")
    next_hops.append(hop)
    send_authenticated(dp, certs, "carol", "to a plain hop")
    got = hop.wait(1)
    assert len(got) == 1, got
    assert got[0]["mail_auth"] is None
    assert not any(o.upper().startswith("AUTH=") for o in got[0]["mail_options"])
    assert "AUTH=" not in "".join(got[0]["reads"]).upper()
    wait_log(dp, rf"status=delivered from=<carol@example\.com> auth=<carol@{re.escape(HOSTNAME)}>")


@netns
def test_auth_parameter_errors_on_the_wire(auth_store, certs):
    dp = auth_store
    # port 25 does not offer AUTH: AUTH= is an unknown parameter (RFC 5321 §4.1.1.11)
    with dp.netns():
        s = smtplib.SMTP(DP_ADDR, 25, timeout=15)
    s.ehlo("client.example.org")
    assert "auth" not in s.esmtp_features
    assert s.docmd("MAIL FROM:<eve@example.org> AUTH=<>") == \
        (555, b"5.5.4 Unsupported option: AUTH")
    s.quit()
    # where it is offered, the value must be xtext (RFC 3461 §4) or <>
    s = submission(dp, certs)
    assert "auth" in s.esmtp_features
    s.login("carol", USERS["carol"][0])
    assert s.docmd(f"MAIL FROM:<carol@example.com> AUTH=carol+4{HOSTNAME}") == \
        (501, b"5.5.4 Bad AUTH parameter value")
    assert s.docmd("MAIL FROM:<carol@example.com> AUTH=<>")[0] == 250
    s.quit()


@netns
def test_the_submitter_survives_a_kill_9_while_the_hop_is_down(auth_store, certs, tmp_path):
    dp = auth_store
    # no next hop yet: the relay finds nobody at HOP_A and keeps the message
    send_authenticated(dp, certs, "carol", "across a restart")
    wait_log(dp, r"status=queued from=<carol@example\.com>")
    dp.restart(kill=True)
    _, messages, requeued = recovery_line(dp)
    assert messages == 1 and requeued == 1, (messages, requeued)
    hop = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "hop", "--offer-auth")
    try:
        got = hop.wait(1, timeout=60)
        assert len(got) == 1, got
        assert got[0]["mail_auth"] == f"carol@{HOSTNAME}"
        assert "Subject: across a restart" in got[0]["data"]
        # this process read the identity back from the spool, and logs it
        wait_log(dp, rf"status=delivered from=<carol@example\.com> "
                     rf"auth=<carol@{re.escape(HOSTNAME)}>")
    finally:
        hop.stop()
