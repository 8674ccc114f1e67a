# SPDX-License-Identifier: BSD-3-Clause
"""Cut-through on the wire (DESIGN.md §3.4): listeners in `ack: cut-through`
keep no spool; at the first RCPT mxgate-dp opens a connection to the next hop
of the recipient's domain (tests/e2e/nexthop.py), repeats each RCPT and the
next hop's answer, streams the content, and gives the client the next hop's
final reply -- only once the next hop gave it."""

import smtplib
import threading
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR
from test_relay import HOP_A, HOP_B, HOP_PORT, NextHop, next_hops, wire_hash  # noqa: F401

netns = pytest.mark.netns


def cut_config(smarthost=True, extra_hops_a="", relay_extra=""):
    """Cut-through with routes: example.com -> HOP_A (then EXTRA_HOPS_A), example.net ->
    HOP_B, everything else -> the kernel's address (the smarthost)."""
    smart = (f"  smarthost:\n    - {{address: {KERNEL_ADDR}, port: {HOP_PORT}}}\n"
             if smarthost else "")
    return f"""\
listeners:
  - name: mx
    port: 25
    ack: cut-through
    hostname: mx.example.com
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
routes:
  domains:
    - domain: example.com
      next_hops: [{{address: {HOP_A}, port: {HOP_PORT}}}{extra_hops_a}]
    - domain: example.net
      next_hops: [{{address: {HOP_B}, port: {HOP_PORT}}}]
{smart}relay:
  helo_name: mx.example.com
  connect_timeout_s: 3
{relay_extra}"""


def connect(dp):
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=20)
    smtp.ehlo("client.example.org")
    return smtp


@netns
def test_a_message_arrives_identical_and_the_250_waits_for_the_next_hops(start_dataplane,
                                                                         tmp_path, next_hops):
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--data-delay", "1.5", name="hop-a")
    next_hops.append(a)
    body = (b"From: sender@example.org\r\nSubject: cut through\r\n\r\n"
            b".a line that starts with a dot\r\n..two dots\r\n8-bit: \xc3\xa9t\xc3\xa9\r\n"
            + b"z" * 900 + b"\r\n") * 200  # ~200 KB: many TCP windows' worth
    smtp = connect(dp)
    smtp.mail("sender@example.org", ["BODY=8BITMIME"])
    code, text = smtp.rcpt("alice@example.com")
    assert code == 250, (code, text)
    assert a.messages() == []
    t0 = time.monotonic()
    code, text = smtp.data(body)
    waited = time.monotonic() - t0
    assert code == 250, (code, text)
    assert b"queued as" in text and b"next hop: Ok: stored" in text, text
    assert waited >= 1.4, f"the 250 came after {waited:.2f} s, before the next hop's"
    got = a.wait(1, timeout=5)  # written before it answered: there at once
    assert len(got) == 1
    m = got[0]
    assert m["mail_from"] == "sender@example.org" and m["rcpt_tos"] == ["alice@example.com"]
    assert m["data"].startswith("Received: from client.example.org")
    assert m["sha256"] == wire_hash(body), "the content changed on the way"
    # a second message on the same session goes the same way
    code, text = smtp.sendmail("sender@example.org", ["bob@example.com"],
                               b"Subject: two\r\n\r\nsecond\r\n"), None
    assert code == {}
    smtp.quit()
    assert len(a.wait(2, timeout=10)) == 2
    assert dp.wait_counter("smtp_ct_messages_accepted", 2) == 2
    assert dp.counter("smtp_ct_rcpts_accepted") == 2
    assert dp.counter("smtp_ct_connects") == 1, "the second took the kept connection"
    assert dp.counter("smtp_ct_pool_reused") == 1
    assert dp.wait_counter("smtp_messages_accepted", 2) == 2
    assert dp.counter("spool_messages") == 0  # nothing was spooled


@netns
def test_a_recipient_the_next_hop_rejects_gets_its_550_at_rcpt(start_dataplane, tmp_path,
                                                               next_hops):
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--reject-rcpt", "bob@example.com")
    next_hops.append(a)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    code, text = smtp.rcpt("bob@example.com")
    assert code == 550, (code, text)
    assert text == b"5.1.1 <bob@example.com>: Recipient address rejected: User unknown", text
    assert smtp.rcpt("alice@example.com")[0] == 250
    # another domain, another next hop: not in this transaction
    code, text = smtp.rcpt("carol@example.net")
    assert code == 452 and text.startswith(b"4.5.3 "), (code, text)
    code, text = smtp.data(b"Subject: one of three\r\n\r\nhello\r\n")
    assert code == 250, (code, text)
    smtp.quit()
    got = a.wait(1)
    assert len(got) == 1 and got[0]["rcpt_tos"] == ["alice@example.com"]
    assert dp.wait_counter("smtp_ct_rcpts_refused", 1) == 1
    assert dp.counter("smtp_ct_rcpts_accepted") == 1
    assert dp.counter("smtp_ct_other_route") == 1


@netns
def test_a_next_hop_that_rejects_the_end_of_data_is_heard_by_the_client(start_dataplane,
                                                                        tmp_path, next_hops):
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--reject-data")
    next_hops.append(a)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    code, text = smtp.data(b"Subject: spam\r\n\r\nbuy now\r\n")
    assert code == 554, (code, text)
    assert text == b"5.7.1 Message refused by the test next hop: policy", text
    code, _ = smtp.noop()  # the session goes on
    assert code == 250
    smtp.quit()
    assert a.messages() == []
    assert dp.wait_counter("smtp_ct_messages_refused", 1) == 1
    assert dp.wait_counter("smtp_messages_rejected", 1) == 1


@netns
def test_an_unreachable_next_hop_is_451_4_4_1_and_a_second_hop_is_tried(start_dataplane,
                                                                         tmp_path, next_hops):
    # HOP_A has nobody listening (refused); example.com's second hop is HOP_B
    dp = start_dataplane(extra=cut_config(
        extra_hops_a=f", {{address: {HOP_B}, port: {HOP_PORT}, priority: 20}}"))
    dp.ns.ip("addr", "add", f"{HOP_A}/32", "dev", dp.iface)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    code, text = smtp.rcpt("carol@example.net")  # HOP_B: nothing there yet either
    assert code == 451 and text.startswith(b"4.4.1 "), (code, text)
    code, text = smtp.rcpt("carol@example.net")  # the transaction stays without a hop
    assert code == 451 and text.startswith(b"4.4.1 "), (code, text)
    smtp.rset()
    assert dp.wait_counter("smtp_ct_unreachable", 1) == 1

    b = NextHop(dp, HOP_B, HOP_PORT, tmp_path / "b", name="hop-b")
    next_hops.append(b)
    smtp.mail("sender@example.org")
    code, text = smtp.rcpt("alice@example.com")  # HOP_A refuses: HOP_B takes it
    assert code == 250, (code, text)
    code, text = smtp.data(b"Subject: second hop\r\n\r\nvia b\r\n")
    assert code == 250, (code, text)
    smtp.quit()
    got = b.wait(1)
    assert len(got) == 1 and got[0]["rcpt_tos"] == ["alice@example.com"]
    assert dp.wait_counter("smtp_ct_hop_failures", 2) >= 2
    assert dp.counter("smtp_ct_unreachable") == 1


@netns
def test_a_hop_whose_route_requires_tls_is_never_used_in_the_clear(start_dataplane, tmp_path,
                                                                  next_hops):
    """A next hop with `tls: encrypt` that offers no STARTTLS (RFC 3207 §4) is greeted,
    never sent MAIL, and counted; the route's next hop takes the message."""
    dp = start_dataplane(extra=cut_config(extra_hops_a=(
        f", {{address: {HOP_B}, port: {HOP_PORT}, priority: 20}}")).replace(
        f"next_hops: [{{address: {HOP_A}, port: {HOP_PORT}}}",
        f"next_hops: [{{address: {HOP_A}, port: {HOP_PORT}, tls: encrypt}}"))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", name="hop-a")
    b = NextHop(dp, HOP_B, HOP_PORT, tmp_path / "b", name="hop-b")
    next_hops.extend([a, b])
    smtp = connect(dp)
    smtp.sendmail("sender@example.org", ["alice@example.com"], b"Subject: tls\r\n\r\nx\r\n")
    smtp.quit()
    assert len(b.wait(1)) == 1
    assert a.messages() == []
    assert (tmp_path / "a" / "connections.log").exists(), "hop A was asked (EHLO) first"
    assert dp.counter("smtp_ct_tls_not_offered") == 1
    assert dp.counter("smtp_ct_hop_failures") == 1
    assert dp.counter("smtp_ct_connects") == 2, "hop A, then hop B"


@netns
def test_a_client_that_leaves_mid_data_aborts_the_next_hops_transaction(start_dataplane,
                                                                         tmp_path, next_hops):
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    code, _ = smtp.docmd("DATA")
    assert code == 354
    smtp.send(b"Subject: half\r\n\r\n" + b"partial line\r\n" * 100)
    time.sleep(0.3)
    smtp.close()  # gone without the end of data (socket and its file)
    n = dp.wait_counter("smtp_ct_aborted", 1, timeout=5)
    assert n == 1, str({k: v for k, v in dp.stats().items() if "ct_" in k or "session" in k})
    time.sleep(0.5)
    assert a.messages() == [], "the next hop must not keep a partial message"

    # RSET between RCPT and DATA aborts it too, and the session goes on
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    assert smtp.rset()[0] == 250
    assert dp.wait_counter("smtp_ct_aborted", 2, timeout=5) == 2
    assert smtp.sendmail("sender@example.org", ["alice@example.com"],
                         b"Subject: after rset\r\n\r\nok\r\n") == {}
    smtp.quit()
    got = a.wait(1)
    assert len(got) == 1 and "after rset" in got[0]["data"]


@netns
def test_a_message_larger_than_every_buffer_streams_through_intact(start_dataplane,
                                                                         tmp_path, next_hops):
    """4 MB through a stage of a few KB: the client's input is held while the next hop
    catches up (its TCP window closes), and nothing on the way grows."""
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    body = b"Subject: big\r\n\r\n" + (b"w" * 998 + b"\r\n") * 4000  # 4 MB
    smtp = connect(dp)
    result = {}

    def send():
        try:
            result["r"] = smtp.sendmail("sender@example.org", ["alice@example.com"], body)
        except Exception as e:  # noqa: BLE001 -- reported below
            result["e"] = e
    t = threading.Thread(target=send)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive() and result.get("r") == {}, result
    smtp.quit()
    got = a.wait(1)
    assert len(got) == 1 and got[0]["sha256"] == wire_hash(body)
    assert dp.counter("smtp_input_overflow") == 0


@netns
def test_a_next_hop_that_never_answers_the_end_of_data_gives_451_within_the_timeout(
        start_dataplane, tmp_path, next_hops):
    """RFC 5321 §4.5.3.2.6: the wait for the reply to the end of data is bounded
    (relay.data_end_timeout_s); the client hears 451 4.4.2 then, not silence."""
    dp = start_dataplane(extra=cut_config(relay_extra="  data_end_timeout_s: 3\n"))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--data-delay", "30")
    next_hops.append(a)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    t0 = time.monotonic()
    code, text = smtp.data(b"Subject: into the void\r\n\r\nhello\r\n")
    waited = time.monotonic() - t0
    assert code == 451 and text.startswith(b"4.4.2 "), (code, text)
    assert 2.5 <= waited <= 6, f"451 after {waited:.2f} s; data_end_timeout_s is 3"
    assert smtp.noop()[0] == 250  # the session goes on
    smtp.quit()
    assert dp.wait_counter("smtp_ct_timeouts", 1) == 1


@netns
def test_a_next_hop_whose_window_stays_shut_gives_451_within_the_timeout(
        start_dataplane, tmp_path, next_hops):
    """The next hop says 354, then reads nothing: its TCP window shuts, our send
    space runs out and the client is held. relay.data_block_timeout_s (RFC 5321
    §4.5.3.2.5) bounds that: the rest of the content is read and dropped and the
    client gets 451 4.4.2 right after its end of data."""
    dp = start_dataplane(extra=cut_config(relay_extra="  data_block_timeout_s: 3\n"))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--stall-content")
    next_hops.append(a)
    body = b"Subject: big\r\n\r\n" + (b"s" * 998 + b"\r\n") * 2000  # 2 MB
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    result = {}

    def send():
        t0 = time.monotonic()
        try:
            result["r"] = smtp.data(body)
        except Exception as e:  # noqa: BLE001 -- reported below
            result["e"] = e
        result["t"] = time.monotonic() - t0
    t = threading.Thread(target=send)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the client still waits"
    code, text = result.get("r", (None, result.get("e")))
    assert code == 451 and text.startswith(b"4.4.2 "), (code, text)
    assert 2.5 <= result["t"] <= 10, f"451 after {result['t']:.2f} s; data_block_timeout_s is 3"
    assert dp.counter("smtp_ct_stalls") > 0  # it was held, not refused
    assert dp.wait_counter("smtp_ct_timeouts", 1) == 1
    assert smtp.noop()[0] == 250
    smtp.quit()


def hop_connections(folder):
    """The connections a next hop accepted (nexthop.py's connections.log)."""
    try:
        with open(folder / "connections.log") as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def one_message(dp, i, rcpt="alice@example.com"):
    """One message over its own client session (the pool's worst case: nothing else
    keeps the next hop's connection busy)."""
    smtp = connect(dp)
    code, text = smtp.mail("sender@example.org")
    assert code == 250, (code, text)
    code, text = smtp.rcpt(rcpt)
    assert code == 250, (i, code, text)
    code, text = smtp.data(f"Subject: pooled {i}\r\n\r\nbody {i}\r\n".encode())
    assert code == 250, (i, code, text)
    smtp.quit()


@netns
def test_kept_connections_carry_many_messages_up_to_messages_per_connection(
        start_dataplane, tmp_path, next_hops):
    """Ten client sessions one after another, one message each: the next hop sees
    them over ceil(10 / messages_per_connection) connections, measured at its end
    (its connection log and the peer address of each message)."""
    dp = start_dataplane(extra=cut_config(relay_extra="  messages_per_connection: 4\n"))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    for i in range(10):
        one_message(dp, i)
    got = a.wait(10)
    assert sorted(m["data"].split("Subject: ")[1].split("\r\n")[0] for m in got) == \
        sorted(f"pooled {i}" for i in range(10))
    peers = {}
    for m in got:
        peers[m["peer"]] = peers.get(m["peer"], 0) + 1
    assert sorted(peers.values()) == [2, 4, 4], peers
    assert len(hop_connections(tmp_path / "a")) == 3
    assert dp.counter("smtp_ct_connects") == 3
    assert dp.counter("smtp_ct_pool_reused") == 7


@netns
def test_an_idle_kept_connection_closes_after_idle_timeout_s(start_dataplane, tmp_path,
                                                             next_hops):
    dp = start_dataplane(extra=cut_config(relay_extra="  idle_timeout_s: 1\n"))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    one_message(dp, 0)
    one_message(dp, 1)
    assert len(hop_connections(tmp_path / "a")) == 1, "kept for the second message"
    assert dp.wait_counter("smtp_ct_pool_closed", 1, timeout=5) == 1, "closed when idle 1 s"
    one_message(dp, 2)
    assert len(hop_connections(tmp_path / "a")) == 2, "a new one after the idle close"
    assert len(a.wait(3)) == 3


@netns
def test_a_transaction_the_client_resets_is_reset_at_the_hop_and_the_connection_kept(
        start_dataplane, tmp_path, next_hops):
    """RSET after RCPT: the hop's transaction gets RSET too (RFC 5321 §4.1.1.5) and
    the connection is kept; the next transaction on it carries only its own
    recipient."""
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    assert smtp.rcpt("alice@example.com")[0] == 250
    assert smtp.rset()[0] == 250
    assert dp.wait_counter("smtp_ct_pool_rsets", 1) == 1
    smtp.quit()
    one_message(dp, 0, rcpt="bob@example.com")
    got = a.wait(1)
    assert len(got) == 1 and got[0]["rcpt_tos"] == ["bob@example.com"], got
    assert len(hop_connections(tmp_path / "a")) == 1, "the reset connection was reused"
    assert dp.counter("smtp_ct_pool_reused") == 1


@netns
def test_a_kept_connection_that_died_while_idle_costs_the_client_nothing(
        start_dataplane, tmp_path, next_hops):
    """The hop resets every connection at its second MAIL: each reuse finds its
    connection dead before MAIL is answered, and a fresh one carries the message
    (no 451 to the client)."""
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--drop-reused")
    next_hops.append(a)
    for i in range(3):
        one_message(dp, i)
    assert len(a.wait(3)) == 3
    assert dp.counter("smtp_ct_pool_stale") == 2
    assert dp.counter("smtp_ct_connects") == 3


@netns
def test_a_kept_connection_the_hop_closes_while_idle_is_dropped_and_the_next_message_goes(
        start_dataplane, tmp_path, next_hops):
    """The next hop restarts between two messages: its FIN reaches the idle kept
    connection, which is closed at once; the next client transaction opens a new
    one and never hears of it."""
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a")
    next_hops.append(a)
    one_message(dp, 0)
    assert len(a.wait(1)) == 1
    a.stop()
    assert dp.wait_counter("smtp_ct_pool_closed", 1, timeout=5) == 1
    dp.ns.ip("addr", "del", f"{HOP_A}/32", "dev", dp.iface)  # NextHop adds it again
    a2 = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a2")
    next_hops.append(a2)
    one_message(dp, 1)
    assert len(a2.wait(1)) == 1
    assert dp.counter("smtp_ct_connects") == 2
    assert dp.counter("smtp_ct_pool_stale") == 0, "it was gone before anyone took it"


@netns
def test_with_pipelining_the_first_rcpt_goes_with_mail_and_its_reply_is_still_mirrored(
        start_dataplane, tmp_path, next_hops):
    """RFC 2920: to a next hop that offers PIPELINING, MAIL and the client's first
    RCPT leave as one group (the hop finds the RCPT already in its input when it
    handles MAIL); without it, the RCPT waits for MAIL's 250. The client still
    hears the hop's own RCPT reply, refusals included, in order."""
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--pipelining",
                "--reject-rcpt", "bob@example.com")
    b = NextHop(dp, HOP_B, HOP_PORT, tmp_path / "b", name="hop-b")  # no PIPELINING
    next_hops.extend([a, b])
    smtp = connect(dp)
    smtp.mail("sender@example.org")
    code, text = smtp.rcpt("bob@example.com")
    assert code == 550 and text.startswith(b"5.1.1 <bob@example.com>"), (code, text)
    assert smtp.rcpt("alice@example.com")[0] == 250
    assert smtp.data(b"Subject: piped\r\n\r\nx\r\n")[0] == 250
    smtp.mail("sender@example.org")
    assert smtp.rcpt("carol@example.net")[0] == 250
    assert smtp.data(b"Subject: not piped\r\n\r\ny\r\n")[0] == 250
    smtp.quit()
    got_a, got_b = a.wait(1), b.wait(1)
    assert len(got_a) == 1 and got_a[0]["rcpt_tos"] == ["alice@example.com"]
    assert got_a[0]["rcpt_with_mail"] is True, "MAIL and RCPT in one group"
    assert len(got_b) == 1 and got_b[0]["rcpt_with_mail"] is False, "one at a time"


def rcpt_group(c, rcpts):
    """MAIL and RCPTs as one write (RFC 2920 §3.1); the replies in order."""
    c.send("MAIL FROM:<sender@example.org>\r\n"
           + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
    return [c.reply() for _ in range(1 + len(rcpts))]


def reads_with(reads, needle):
    return [r for r in reads if needle in r]


@netns
def test_a_pipelined_rcpt_group_reaches_the_hop_in_one_read_and_its_replies_in_order(
        start_dataplane, tmp_path, next_hops):
    """The client's three pipelined RCPTs are all pending at once in the engine
    (rcpt_pending_max): the next hop gets them, with MAIL, in one read, and the
    client hears the hop's replies in its command order -- the 550 for the one in
    the middle included. The second transaction takes the kept connection and
    does the same without a new EHLO."""
    from test_smtp import Client
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--pipelining", "--log-reads",
                "--reject-rcpt", "bob@example.com")
    next_hops.append(a)
    c = Client(dp, port=25, timeout=20)
    c.cmd("EHLO client.example.org", 250, "PIPELINING")
    for i in range(2):
        got = rcpt_group(c, ["alice@example.com", "bob@example.com", "carol@example.com"])
        assert [code for code, _ in got] == [250, 250, 550, 250], got
        assert got[2][1] == ["550 5.1.1 <bob@example.com>: Recipient address rejected: "
                             "User unknown"], got
        c.cmd("DATA", 354)
        c.send(f"Subject: group {i}\r\n\r\nhello\r\n.\r\n")
        c.expect(250, "next hop: Ok: stored")
        m = a.wait(i + 1)[i]
        assert m["rcpt_tos"] == ["alice@example.com", "carol@example.com"], m
        rcpt_reads = reads_with(m["reads"], "RCPT TO:")
        assert len(rcpt_reads) == 1, f"the RCPTs came in {len(rcpt_reads)} reads: {m['reads']}"
        r = rcpt_reads[0]
        assert r.startswith("MAIL FROM:<sender@example.org>") and r.count("RCPT TO:") == 3, r
    c.cmd("QUIT", 221)
    assert dp.counter("smtp_ct_connects") == 1, "the second group took the kept connection"
    assert dp.counter("smtp_ct_rcpts_accepted") == 4
    assert dp.counter("smtp_ct_rcpts_refused") == 2


@netns
def test_a_pipelined_group_to_a_hop_without_pipelining_goes_one_by_one_replies_in_order(
        start_dataplane, tmp_path, next_hops):
    """Without PIPELINING at the hop the RCPTs wait for each reply there (RFC 2920
    is the hop's to offer); the client's pipelined group still gets every reply,
    in order, and DATA pipelined after the group waits for all of them."""
    from test_smtp import Client
    dp = start_dataplane(extra=cut_config())
    b = NextHop(dp, HOP_B, HOP_PORT, tmp_path / "b", "--log-reads",
                "--reject-rcpt", "dave@example.net", name="hop-b")
    next_hops.append(b)
    c = Client(dp, port=25, timeout=20)
    c.cmd("EHLO client.example.org", 250)
    c.send("MAIL FROM:<sender@example.org>\r\nRCPT TO:<dave@example.net>\r\n"
           "RCPT TO:<erin@example.net>\r\nRCPT TO:<frank@example.net>\r\nDATA\r\n")
    got = [c.reply() for _ in range(5)]
    assert [code for code, _ in got] == [250, 550, 250, 250, 354], got
    assert got[1][1][0].startswith("550 5.1.1 <dave@example.net>"), got
    c.send("Subject: one by one\r\n\r\nx\r\n.\r\n")
    c.expect(250, "next hop: Ok: stored")
    c.cmd("QUIT", 221)
    m = b.wait(1)[0]
    assert m["rcpt_tos"] == ["erin@example.net", "frank@example.net"], m
    assert all(r.count("RCPT TO:") <= 1 for r in m["reads"]), m["reads"]


@netns
def test_a_pipelined_group_whose_rcpts_all_fail_at_the_hop_gets_554_at_data(
        start_dataplane, tmp_path, next_hops):
    """RFC 5321 §3.3: DATA after a group the hop refused entirely: 554 5.5.1."""
    from test_smtp import Client
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--pipelining",
                "--reject-rcpt", "bob@example.com", "--reject-rcpt", "zed@example.com")
    next_hops.append(a)
    c = Client(dp, port=25, timeout=20)
    c.cmd("EHLO client.example.org", 250)
    c.send("MAIL FROM:<sender@example.org>\r\nRCPT TO:<bob@example.com>\r\n"
           "RCPT TO:<zed@example.com>\r\nDATA\r\n")
    got = [c.reply() for _ in range(4)]
    assert [code for code, _ in got] == [250, 550, 550, 554], got
    assert got[3][1] == ["554 5.5.1 Error: no valid recipients"], got
    c.cmd("QUIT", 221)
    assert a.messages() == []


@netns
def test_a_hop_that_refuses_mail_for_a_pipelined_group_leaves_its_kept_connection_in_step(
        start_dataplane, tmp_path, next_hops):
    """The hop refuses MAIL (550) for a group whose RCPTs went along with it, and
    writes its replies to them (503) in the same segment as the 550. They are the
    pool's to read before the connection may carry anything else: read there, the
    connection is idle at once (not waiting command_timeout_s for replies that
    already came), and the next transaction on the worker takes it and hears its
    own replies in its command order (RFC 2920 §3.1) -- not the late 503s, nor a
    250 the hop never gave -- and its message arrives exactly once."""
    from test_smtp import Client
    dp = start_dataplane(extra=cut_config())
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", "--pipelining", "--group-replies",
                "--log-reads", "--reject-mail-from", "refused@example.org",
                "--reject-rcpt", "bob@example.com")
    next_hops.append(a)
    c = Client(dp, port=25, timeout=20)
    c.cmd("EHLO client.example.org", 250, "PIPELINING")
    c.send("MAIL FROM:<refused@example.org>\r\nRCPT TO:<alice@example.com>\r\n"
           "RCPT TO:<carol@example.com>\r\n")
    got = [c.reply() for _ in range(3)]
    assert [code for code, _ in got] == [250, 550, 550], got
    refusal = ["550 5.7.1 <refused@example.org>: Sender address rejected: Access denied"]
    assert got[1][1] == refusal and got[2][1] == refusal, got
    c.cmd("RSET", 250)
    assert dp.wait_counter("smtp_ct_pool_kept", 1) == 1
    # the next transaction, on the same worker, while the hop's 503s are long read
    got = rcpt_group(c, ["alice@example.com", "bob@example.com", "carol@example.com"])
    assert [code for code, _ in got] == [250, 250, 550, 250], got
    assert got[2][1] == ["550 5.1.1 <bob@example.com>: Recipient address rejected: "
                         "User unknown"], got
    c.cmd("DATA", 354)
    c.send("Subject: after a refused sender\r\n\r\nonce\r\n.\r\n")
    c.expect(250, "next hop: Ok: stored")
    c.cmd("QUIT", 221)
    got = a.wait(1)
    time.sleep(1)  # a second copy would be there by now
    got = a.messages()
    assert len(got) == 1, got
    m = got[0]
    assert m["mail_from"] == "sender@example.org", m
    assert m["rcpt_tos"] == ["alice@example.com", "carol@example.com"], m
    assert "Subject: after a refused sender" in m["data"], m
    rcpt_reads = reads_with(m["reads"], "RCPT TO:")
    assert any(r.startswith("MAIL FROM:<sender@example.org>") for r in rcpt_reads), m["reads"]
    assert not reads_with(m["reads"], "RSET"), "nothing was left open at the hop to reset"
    assert len(hop_connections(tmp_path / "a")) == 1, "the refused group's connection was kept"
    assert dp.counter("smtp_ct_connects") == 1
    assert dp.counter("smtp_ct_pool_reused") == 1
    assert dp.counter("smtp_ct_pool_closed") == 0
    assert dp.counter("smtp_ct_rcpts_accepted") == 2
