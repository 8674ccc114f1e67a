# SPDX-License-Identifier: BSD-3-Clause
"""mxgatectl sessions and queue against real daemons: mxgate-dp on net_tap in a
namespace, mxgate-control in that namespace, mxgatectl on the host, a next hop
(tests/e2e/nexthop.py) in the namespace.

With a next hop that answers 451 the messages sit in the queue: `queue list`
and `queue show` say so in both output forms; a held message is not delivered
by a flush once the hop recovers while the others are, and it stays held
across a restart of mxgate-dp until released; a deleted message is never
delivered, never bounced, and still gone after the restart. `sessions` lists
two smtplib sessions in known states with their client address and port.
Then the bad input: missing, malformed and unknown ids, unknown subcommands,
a dataplane without a queue."""

import json
import re
import smtplib
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR
from mxctl import Control, control_yaml
from test_relay import HOP_PORT, NextHop, next_hops, store_config  # noqa: F401 (a fixture)

netns = pytest.mark.netns

QID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{20}$")


def queue_config(spool):
    """Store mode; every domain goes to the kernel's address (the smarthost), retried only
    after 300 s, so a deferred message stays queued for the whole test unless flushed."""
    return store_config(spool, extra=f"""\
routes:
  smarthost:
    - {{address: {KERNEL_ADDR}, port: {HOP_PORT}}}
relay:
  helo_name: mx.example.com
  retry_first_s: 300
  retry_max_s: 600
""")


@pytest.fixture
def queue_env(start_dataplane, tmp_path, next_hops):  # noqa: F811 (the imported fixture)
    """(dp, ctl, start_hop): a store-mode dataplane, mxgate-control connected to it, and
    start_hop(tempfail) -> a next hop on the smarthost's address (stopped with the test)."""
    dp = start_dataplane(extra=control_yaml(tmp_path) + queue_config(tmp_path / "spool"))
    ctl = Control(dp, tmp_path)
    ctl.start()
    runs = []

    def start_hop(tempfail):
        runs.append(len(runs))
        args = ["--tempfail-until", str(time.time() + 3600)] if tempfail else []
        h = NextHop(dp, KERNEL_ADDR, HOP_PORT, tmp_path / f"hop{len(runs)}", *args)
        next_hops.append(h)
        return h

    yield dp, ctl, start_hop
    problems = ctl.teardown()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def send_each(dp, subjects, sender="sender@example.org", rcpt="alice@example.com"):
    """One message per subject over one session; returns their queue ids."""
    ids = []
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    try:
        smtp.ehlo("client.example.org")
        for s in subjects:
            smtp.mail(sender)
            assert smtp.rcpt(rcpt)[0] == 250
            code, text = smtp.data(f"Subject: {s}\r\n\r\nbody of {s}\r\n".encode())
            assert code == 250, (code, text)
            ids.append(re.search(rb"queued as (\S+)", text).group(1).decode())
    finally:
        smtp.quit()
    return ids


def subjects_at(hop):
    return sorted(m["data"].split("Subject: ")[1].split("\r\n")[0] for m in hop.messages())


def queue_json(ctl):
    return ctl.ctl_json("queue", "list")


def wait_queue(ctl, pred, timeout=15.0):
    """Polls `queue list --json` until PRED(result) holds (the dataplane may be restarting)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = ctl.ctl("--json", "queue", "list")
        if r.returncode == 0:
            last = json.loads(r.stdout)
            if pred(last):
                return last
        else:
            last = r.stdout + r.stderr
        time.sleep(0.2)
    pytest.fail(f"the queue did not get there in {timeout} s: {last}\n{ctl.logs()}")


@netns
def test_queue_list_show_hold_flush_release_delete_across_a_restart(queue_env):
    dp, ctl, start_hop = queue_env
    hop = start_hop(tempfail=True)
    subjects = ["held one", "second", "third", "deleted one"]
    ids = send_each(dp, subjects)
    held, second, third, deleted = ids
    assert all(QID.match(i) for i in ids), ids
    assert dp.wait_counter("relay_rcpts_deferred", 4, timeout=15) >= 4

    # list: every message, deferred, with what the next hop said
    q = wait_queue(ctl, lambda q: q["count"] == 4 and
                   all(m["state"] == "deferred" for m in q["messages"]))
    assert q["truncated"] is False
    by_id = {m["id"]: m for m in q["messages"]}
    assert sorted(by_id) == sorted(ids)
    for m in by_id.values():
        assert m["worker"] == 0
        assert m["sender"] == "sender@example.org" and m["envelope_known"] == 1
        assert (m["rcpts"], m["pending"], m["held"]) == (1, 1, 0)
        assert m["last_reply"].startswith("451 4.3.0"), m
        assert 240 <= m["next_in_s"] <= 360, m  # 300 s, with the retry jitter
        assert m["size"] > 0
    r = ctl.ctl("queue", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "W", "STATE"], r.stdout
    for i in ids:
        line = next(ln for ln in lines if ln.startswith(i))
        assert " deferred " in line and "<sender@example.org>" in line and "451 4.3.0" in line
    assert "4 messages" in lines[-1]

    # show: the envelope and the recipient's state
    s = ctl.ctl_json("queue", "show", second)
    assert s["message"]["id"] == second and s["message"]["state"] == "deferred"
    assert [(x["addr"], x["state"], x["code"]) for x in s["recipients"]] == \
        [("alice@example.com", "deferred", 451)]
    r = ctl.ctl("queue", "show", second.lower())  # ids are read in any case
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^id\s+{second}$", r.stdout, re.M), r.stdout
    assert re.search(r"^sender\s+<sender@example.org>$", r.stdout, re.M), r.stdout
    assert re.search(r"^0\s+alice@example.com\s+deferred\s+451 4\.3\.0", r.stdout, re.M)

    # hold one, delete one
    assert ctl.ctl_json("queue", "hold", held) == {"id": held, "worker": 0, "done": "held"}
    r = ctl.ctl("queue", "delete", deleted)
    assert r.returncode == 0 and r.stdout == f"{deleted}: deleted\n", (r.stdout, r.stderr)
    q = queue_json(ctl)
    assert {m["id"]: m["state"] for m in q["messages"]} == \
        {held: "held", second: "deferred", third: "deferred"}

    # a restart: the hold and the delete are in the spool
    dp.restart()
    q = wait_queue(ctl, lambda q: q["count"] == 3)
    assert {m["id"]: m["state"] for m in q["messages"]} == \
        {held: "held", second: "deferred", third: "deferred"}, q
    assert all(m["envelope_known"] == 0 for m in q["messages"])  # not read since the start
    s = ctl.ctl_json("queue", "show", second)  # reads the envelope back: no attempt
    assert (s["message"]["envelope_known"], s["message"]["sender"]) == (1, "sender@example.org")
    assert [(x["addr"], x["state"]) for x in s["recipients"]] == [("alice@example.com", "pending")]
    known = {m["id"]: m["envelope_known"] for m in queue_json(ctl)["messages"]}
    assert known == {held: 0, second: 1, third: 0}, known
    r = ctl.ctl("queue", "show", deleted)
    assert r.returncode == 1 and "no message" in r.stderr, (r.stdout, r.stderr)

    # the hop recovers; a flush sends the deferred ones now, not the held one
    hop.stop()
    hop = start_hop(tempfail=False)
    f = ctl.ctl_json("queue", "flush")
    assert f == {"flushed": 2, "by_worker": {"0": 2}}, f
    got = hop.wait(2, timeout=20)
    assert sorted(m["data"].split("Subject: ")[1].split("\r\n")[0] for m in got) == \
        ["second", "third"]
    time.sleep(2)
    assert subjects_at(hop) == ["second", "third"], "the held message was not delivered"
    q = wait_queue(ctl, lambda q: q["count"] == 1)
    assert q["messages"][0]["id"] == held and q["messages"][0]["state"] == "held"
    r = ctl.ctl("queue", "hold", held)
    assert r.returncode == 1 and "held already" in r.stderr, r.stderr

    # release: delivered at once
    r = ctl.ctl("queue", "release", held)
    assert r.returncode == 0 and r.stdout == f"{held}: released\n", (r.stdout, r.stderr)
    hop.wait(3, timeout=20)
    assert subjects_at(hop) == ["held one", "second", "third"]
    wait_queue(ctl, lambda q: q["count"] == 0)
    r = ctl.ctl("queue", "list")
    assert r.returncode == 0 and r.stdout == "the queue is empty\n", r.stdout

    # the deleted message never went anywhere, and nothing bounced
    time.sleep(1)
    assert "deleted one" not in subjects_at(hop)
    assert all(m["mail_from"] != "" for m in hop.messages()), "a bounce was sent"
    assert dp.counter("relay_dsn_bounces") == 0
    logs = "".join(p.read_text(errors="replace") for p in dp.dir.glob("std*"))
    assert f"qid={deleted} status=deleted by=operator nrcpt=1 dsn=none" in logs, logs[-3000:]
    assert f"qid={held} status=held by=operator" in logs


@netns
def test_a_queue_longer_than_one_telemetry_page_is_listed_whole(queue_env):
    """A worker fills 32 rows a page (telemetry would cut a page sooner by size: rows of
    127-character senders still fit 32 to a reply): 40 messages are two pages, each naming
    where the next starts, and mxgate-control walks them and lists all 40."""
    dp, ctl, start_hop = queue_env
    start_hop(tempfail=True)
    sender = "a" * 64 + "@" + "d" * 50 + ".example.org"  # 127: a local part holds 64
    ids = send_each(dp, [f"m{i}" for i in range(40)], sender=sender)
    assert dp.wait_counter("relay_rcpts_deferred", 40, timeout=30) >= 40
    seen, cursor, pages = [], None, []
    while True:
        page = dp.cmd("/mxgate/queue,0,list" + ("" if cursor is None else f",{cursor}"))
        pages.append(page["rows"])
        seen += [page[f"row{i}"]["id"] for i in range(page["rows"])]
        if "next" not in page:
            break
        cursor = page["next"]
    assert sorted(seen) == sorted(ids), pages
    assert pages == [32, 8], pages
    assert all(page[f"row{i}"]["sender"] == sender for i in range(page["rows"]))
    q = wait_queue(ctl, lambda q: q["count"] == 40 and
                   all(m["state"] == "deferred" for m in q["messages"]))
    assert sorted(m["id"] for m in q["messages"]) == sorted(ids)
    assert q["truncated"] is False
    r = ctl.ctl("queue", "list")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("40 messages"), r.stdout
    assert sum(1 for ln in r.stdout.splitlines() if QID.match(ln.split()[0])) == 40


@netns
def test_sessions_lists_each_client_with_its_state(queue_env):
    dp, ctl, _ = queue_env
    with dp.netns():
        s1 = smtplib.SMTP(DP_ADDR, 25, timeout=10)
        s2 = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    try:
        s2.ehlo("client2.example.org")
        assert s2.mail("someone@example.org")[0] == 250
        p1 = s1.sock.getsockname()[1]
        p2 = s2.sock.getsockname()[1]
        r = ctl.ctl_json("sessions")
        assert r["count"] == 2 and r["truncated"] is False, r
        by_client = {x["client"]: x for x in r["sessions"]}
        a = by_client[f"{KERNEL_ADDR}:{p1}"]
        b = by_client[f"{KERNEL_ADDR}:{p2}"]
        assert (a["state"], a["helo"], a["listener"], a["port"]) == ("CONNECTED", "", "mx", 25)
        assert (b["state"], b["helo"]) == ("MAIL", "client2.example.org")
        assert a["bytes_in"] == 0 and b["bytes_in"] > 0, (a, b)
        assert b["bytes_out"] > a["bytes_out"] > 0, (a, b)
        assert a["worker"] == b["worker"] == 0
        assert a["messages"] == b["messages"] == 0

        h = ctl.ctl("sessions")
        assert h.returncode == 0, h.stderr
        lines = h.stdout.splitlines()
        assert lines[0].split()[:4] == ["W", "ID", "CLIENT", "LISTENER"], h.stdout
        row = next(ln for ln in lines if f"{KERNEL_ADDR}:{p2} " in ln)
        assert " MAIL " in row and row.rstrip().endswith("client2.example.org"), row
        assert any(f"{KERNEL_ADDR}:{p1} " in ln and " CONNECTED " in ln for ln in lines)
        assert lines[-1] == "2 sessions"
    finally:
        s1.close()
        s2.close()
    deadline = time.monotonic() + 5
    while ctl.ctl_json("sessions")["count"] != 0:
        assert time.monotonic() < deadline, "closed sessions are still listed"
        time.sleep(0.1)
    assert ctl.ctl("sessions").stdout == "no SMTP sessions open\n"


@netns
def test_queue_commands_refuse_bad_input_clearly(queue_env):
    dp, ctl, _ = queue_env
    cases = [
        # (args, exit status, words the message holds)
        (["queue", "show"], 2, "queue show needs a message ID"),
        (["queue", "hold"], 2, "queue hold needs a message ID"),
        (["queue", "show", "not-an-id"], 2, "'not-an-id' is not a message ID"),
        (["queue", "delete", "0123456789ABCDEFGHJKU"], 2, "is not a message ID"),
        (["queue", "frob"], 2, "unknown queue command 'frob'"),
        (["queue", "list", "extra"], 2, "unexpected argument 'extra'"),
        (["sessions", "now"], 2, "unexpected argument 'now'"),
        (["queue", "show", "00000000000000000000"], 1,
         "no message 00000000000000000000 in this worker's queue"),
        (["queue", "release", "00000000000000000000"], 1, "no message"),
        (["queue", "hold", "ZZZZZZZZZZZZZZZZZZZZ"], 1, "names worker 2047, and mxgate-dp runs 1"),
    ]
    for args, status, words in cases:
        r = ctl.ctl(*args)
        assert r.returncode == status, (args, r.returncode, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
        if status == 1:  # one line, no usage text
            assert len(r.stderr.splitlines()) == 1, r.stderr
        else:
            assert "usage: mxgatectl" in r.stderr
        j = ctl.ctl("--json", *args)
        assert j.returncode == status
        err = json.loads(j.stdout.splitlines()[0])
        assert err["ok"] is False and words in err["error"]["message"], err
    j = json.loads(ctl.ctl("--json", "queue", "show", "00000000000000000000").stdout)
    assert j["error"]["code"] == "not_found"
    # the daemon checks what it is sent, too
    with ctl.raw() as s:
        s.sendall(b'{"cmd": "queue.show", "args": {"id": "nope"}}\n'
                  b'{"cmd": "queue.hold"}\n')
        f = s.makefile("rb")
        a, b = json.loads(f.readline()), json.loads(f.readline())
    assert a["ok"] is False and a["error"]["code"] == "bad_request", a
    assert "queue ID" in a["error"]["message"]
    assert b["ok"] is False and "needs \"id\"" in b["error"]["message"], b


@netns
def test_a_dataplane_without_a_spool_says_it_has_no_queue(start_dataplane, tmp_path):
    dp = start_dataplane(extra=control_yaml(tmp_path) + """\
listeners:
  - name: mx
    port: 25
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
""")
    ctl = Control(dp, tmp_path)
    try:
        ctl.start()
        r = ctl.ctl("queue", "list")
        assert r.returncode == 1 and "no delivery queue" in r.stderr, r.stderr
        assert ctl.ctl_json("sessions") == {"count": 0, "truncated": False, "limit": 5000,
                                            "sessions": []}
    finally:
        problems = ctl.teardown()
    assert not problems, problems
