# SPDX-License-Identifier: BSD-3-Clause
"""Limits on the wire: per-client-address connections, connection rate and
message rate (policy.client_limits, answered 421 4.7.0 and counted across all
workers, as Postfix's anvil does), and a listener whose sessions are all taken
(421 4.3.2 instead of a reset). Clients bind fixed source ports so that which
worker owns each connection is the same on every run."""

import socket
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR
from test_smtp import OUTSIDER, Client

netns = pytest.mark.netns

PORT = 25


def config(client_limits="", sessions=None):
    limits = f"    limits:\n      sessions: {sessions}\n" if sessions else ""
    return f"""\
listeners:
  - name: mx
    port: {PORT}
    mode: relay
    hostname: mx.example.com
{limits}policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
  client_limits:
    exempt_relay_networks: false
{client_limits}"""


def connect(dp, sport, greet=True):
    """A Client from KERNEL_ADDR:SPORT (fixed ports: the same worker owns it every run)."""
    c = Client.__new__(Client)
    with dp.netns():
        c.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.s.settimeout(10.0)
    c.s.bind((KERNEL_ADDR, sport))
    c.s.connect((DP_ADDR, PORT))
    c.buf = b""
    if greet:
        c.expect(220)
    return c


def per_worker(dp, name, workers):
    stats = dp.tel.stats()
    return {w: stats[w][name] for w in workers}


@netns
def test_connections_over_the_per_client_limit_get_421_counted_across_workers(start_dataplane):
    limit = 12
    dp = start_dataplane(worker_cores=(0, 1),
                         extra=config(f"    connections: {limit}\n"))
    clients = [connect(dp, 43000 + i) for i in range(limit)]
    for c in clients:
        c.cmd("NOOP", 250)
    deadline = time.monotonic() + 3  # the engine's counters reach telemetry every 100 ms
    while True:
        sessions = per_worker(dp, "smtp_sessions", ["worker0", "worker1"])
        if sum(sessions.values()) >= limit or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(sessions.values()) == limit
    # both workers hold some of this address's connections, yet the limit is one count
    assert min(sessions.values()) > 0, f"every connection landed on one worker: {sessions}"

    for extra in range(4):  # the next ones, on whichever worker, are refused
        c = connect(dp, 43100 + extra, greet=False)
        c.expect(421, "4.7.0")
        assert c.closed()
        c.close()
    assert dp.wait_counter("smtp_client_conn_limit", 4) == 4

    clients.pop().cmd("QUIT", 221)  # one leaves: its place is free again
    deadline = time.monotonic() + 3
    while True:
        c = connect(dp, 43200 + int((deadline - time.monotonic()) * 100) % 100, greet=False)
        code, lines = c.reply()
        if code == 220 or time.monotonic() > deadline:
            break
        c.close()  # the QUIT's close may not have reached its worker yet
        time.sleep(0.05)
    assert code == 220, lines
    c.cmd("EHLO client.example.org", 250)
    c.cmd("QUIT", 221)
    for c in clients:
        c.cmd("QUIT", 221)
        c.close()
    assert dp.counter("smtp_sessions_refused") == 0


@netns
def test_connection_rate_allows_the_burst_then_421(start_dataplane):
    dp = start_dataplane(extra=config("    connections: 0\n"
                                      "    connection_rate: 60\n"
                                      "    connection_burst: 3\n"))
    for i in range(3):
        c = connect(dp, 44000 + i)
        c.cmd("QUIT", 221)
        c.close()
    c = connect(dp, 44010, greet=False)
    c.expect(421, "slow down")
    assert c.closed()
    c.close()
    assert dp.wait_counter("smtp_client_conn_rate", 1) == 1


@netns
def test_message_rate_ends_the_session_with_421(start_dataplane):
    dp = start_dataplane(extra=config("    message_rate: 60\n"
                                      "    message_burst: 2\n"))
    c = connect(dp, 45000)
    c.cmd("EHLO client.example.org", 250)
    for _ in range(2):
        c.cmd("MAIL FROM:<sender@example.org>", 250)
        c.cmd("RSET", 250)
    c.cmd("MAIL FROM:<sender@example.org>", 421, "too much mail")
    assert c.closed()
    c.close()
    assert dp.wait_counter("smtp_client_msg_rate", 1) == 1
    # another address has its own bucket
    dp.ns.ip("addr", "add", f"{OUTSIDER}/32", "dev", dp.iface)
    other = Client(dp, port=PORT, source=OUTSIDER)
    other.cmd("EHLO other.example.org", 250)
    other.cmd("MAIL FROM:<sender@example.org>", 250)
    other.cmd("QUIT", 221)


@netns
def test_relay_networks_are_exempt_when_configured(start_dataplane):
    dp = start_dataplane(extra=config("    connections: 2\n").replace(
        "exempt_relay_networks: false", "exempt_relay_networks: true"))
    clients = [connect(dp, 46000 + i) for i in range(4)]  # 198.51.100.1: a relay network
    for c in clients:
        c.cmd("QUIT", 221)
        c.close()
    assert dp.counter("smtp_client_conn_limit") == 0


@netns
def test_no_free_session_gets_421_busy_and_others_go_on(start_dataplane):
    dp = start_dataplane(extra=config("    connections: 0\n", sessions=2))
    held = [connect(dp, 47000 + i) for i in range(2)]
    c = connect(dp, 47010, greet=False)
    c.expect(421, "4.3.2")
    assert c.closed()
    c.close()
    assert dp.wait_counter("smtp_sessions_refused", 1) == 1
    for h in held:  # the sessions that got in are untouched
        h.cmd("EHLO client.example.org", 250)
        h.cmd("QUIT", 221)
        h.close()
    deadline = time.monotonic() + 3
    while True:  # their memory is back: a new session gets its 220
        c = connect(dp, 47020 + int(time.monotonic() * 10) % 50, greet=False)
        code, lines = c.reply()
        if code == 220 or time.monotonic() > deadline:
            break
        c.close()
        time.sleep(0.05)
    assert code == 220, lines
    c.cmd("QUIT", 221)
