# SPDX-License-Identifier: BSD-3-Clause
"""Hitless config reload and run-time log levels, against real daemons: mxgate-dp
on a tap in a namespace of its own, mxgate-control beside it, mxgatectl on the host.

A reload swaps in a new config snapshot (dataplane/core/snap.h): an SMTP session
opened before it finishes under the settings it started with while a new one
sees the new ones, no connection drops while reloads come and go, a broken file
changes nothing and says why, and a file that changes what only a restart can
(lcores, ports, listener ports, control.socket) is refused as a whole, naming
every such key. Routes reload too: the relay and cut-through send new mail by the
new next hops while nothing already under way moves."""

import json
import re
import threading
import time

import pytest

from conftest import KERNEL_ADDR
from mxctl import Control, control_yaml
from test_relay import HOP_A, HOP_B, HOP_PORT, NextHop, next_hops  # noqa: F401
from test_smtp import Client

netns = pytest.mark.netns

PORT = 25


def smtp_yaml(max_rcpts=3, hostname="old.example.com", workers_extra=""):
    return f"""\
listeners:
  - name: mx
    port: {PORT}
    ack: sink
    hostname: {hostname}
    limits:
      max_recipients: {max_rcpts}
policy:
  relay_networks: [198.51.100.0/24]
{workers_extra}"""


@pytest.fixture
def reload_env(request, start_dataplane, tmp_path):
    """Returns start(worker_cores=(1,), text=None) -> (dp, ctl, write): a dataplane with
    one SMTP listener (smtp_yaml(), or TEXT) and a connected mxgate-control. write(text, name=None) replaces the running
    config file (or writes NAME beside it) with the dataplane's own first part plus TEXT,
    and returns its path."""
    started = []

    def start(worker_cores=(1,), text=None):
        dp = start_dataplane(worker_cores=worker_cores, extra=control_yaml(tmp_path) +
                             (smtp_yaml() if text is None else text))
        ctl = Control(dp, tmp_path)
        started.append(ctl)
        ctl.start()
        head = dp.config.read_text().split("control:\n", 1)[0]

        def write(text, name=None, base=head, control=control_yaml(tmp_path)):
            path = dp.config if name is None else dp.dir / name
            path.write_text(base + control + text)
            return path

        return dp, ctl, write

    yield start
    problems = []
    for ctl in started:
        problems += ctl.teardown()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def info(dp):
    return dp.cmd("/mxgate/info")


def session(dp):
    c = Client(dp, port=PORT)
    return c


def rcpts(c, n, first_refused=None):
    """RCPT for N recipients; the one numbered FIRST_REFUSED (1-based) and later get 452."""
    for i in range(1, n + 1):
        if first_refused is not None and i >= first_refused:
            c.cmd(f"RCPT TO:<r{i}@example.com>", 452, "4.5.3")
        else:
            c.cmd(f"RCPT TO:<r{i}@example.com>", 250)


def send_message(c):
    c.cmd("DATA", 354)
    c.send("Subject: reload\r\n\r\nbody\r\n.\r\n")
    c.expect(250)


def wait_info(dp, key, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = info(dp)[key]
        if v == want or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


@netns
def test_a_session_open_across_a_reload_keeps_the_old_limits_a_new_one_gets_the_new(
        reload_env):
    dp, ctl, write = reload_env()
    old = session(dp)
    old.cmd("EHLO client.example.org", 250, "old.example.com")
    old.cmd("MAIL FROM:<a@example.org>", 250)

    write(smtp_yaml(max_rcpts=2, hostname="new.example.com"))
    r = ctl.ctl("config", "reload")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "applied (generation 2)" in r.stdout
    i = info(dp)
    assert i["config_generation"] == 2 and i["reloads_applied"] == 1
    assert i["snapshots_retired"] == 1 and i["sessions_on_retired"] == 1
    ctl.wait_sample_after(time.monotonic())
    st = ctl.ctl("status")
    assert "(generation 2; 1 older in use by 1 session)" in st.stdout, st.stdout
    st = ctl.ctl_json("status")["dataplane"]
    assert st["config_generation"] == 2 and st["config"] == str(dp.config)

    new = session(dp)  # its greeting already names the new host
    new.cmd("EHLO client.example.org", 250, "new.example.com")
    new.cmd("MAIL FROM:<b@example.org>", 250)
    rcpts(new, 3, first_refused=3)
    send_message(new)
    new.cmd("QUIT", 221)

    # the first session goes on under the old settings: three recipients, then 452
    rcpts(old, 4, first_refused=4)
    send_message(old)
    old.cmd("MAIL FROM:<a@example.org>", 250)
    rcpts(old, 3)
    old.cmd("RSET", 250)
    old.cmd("QUIT", 221)
    assert old.closed() and new.closed()
    old.close()
    new.close()
    # nobody holds the old snapshot now: the main lcore frees it
    assert wait_info(dp, "snapshots_retired", 0) == 0
    i = info(dp)
    assert i["snapshots_freed"] == 1 and i["sessions_on_retired"] == 0
    assert dp.counter("smtp_sessions_aborted") == 0
    log = ctl.log()
    assert re.search(r"prog=mxgate-dp event=config_reload msg=\".*applied as generation 2",
                     log), log
    ctl.wait_sample_after(time.monotonic())
    m = ctl.metrics()
    assert m[("mxgate_dataplane_config_generation", ())] == 2
    assert m[("mxgate_dataplane_config_reloads_total", (("outcome", "applied"),))] == 1
    assert m[("mxgate_dataplane_config_reloads_total", (("outcome", "restart_needed"),))] == 0
    assert m[("mxgate_dataplane_config_snapshots_retired", ())] == 0


@netns
def test_reloads_under_a_load_loop_drop_no_connection(reload_env):
    dp, ctl, write = reload_env(worker_cores=(0, 1))
    # lower and back: more recipients than at start would outgrow the session memory
    files = [write(smtp_yaml(max_rcpts=n), name=f"r{n}.yaml") for n in (2, 3)]
    stop = threading.Event()
    done, failures = [], []

    def load():
        while not stop.is_set():
            try:
                c = session(dp)
                c.cmd("EHLO client.example.org", 250)
                c.cmd("MAIL FROM:<a@example.org>", 250)
                rcpts(c, 2)
                send_message(c)
                c.cmd("QUIT", 221)
                assert c.closed()
                c.close()
                done.append(1)
            except Exception as e:  # every failure is reported below, none swallowed
                failures.append(repr(e))
                return

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    reloads = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and not failures:
        r = ctl.ctl("--json", "config", "reload", str(files[reloads % 2]))
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["status"] == "applied"
        reloads += 1
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures
    assert reloads >= 5 and len(done) >= 10, (reloads, len(done))
    assert info(dp)["config_generation"] == 1 + reloads
    assert dp.counter("smtp_sessions_aborted") == 0
    assert wait_info(dp, "snapshots_retired", 0) == 0
    assert info(dp)["snapshots_freed"] == reloads


@netns
def test_a_broken_file_changes_nothing_and_mxgatectl_shows_why(reload_env):
    dp, ctl, write = reload_env()
    bad = write(smtp_yaml().replace(f"port: {PORT}", "port: 70000")
                .replace("max_recipients: 3", "max_recipients: 1"), name="bad.yaml")
    r = ctl.ctl("config", "reload", str(bad))
    assert r.returncode == 1
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: listeners\[0\]\.port: 70000 ", r.stderr,
                     re.M), r.stderr
    assert "not valid (1 error, found by mxgate-control); nothing changed" in r.stdout

    r = ctl.ctl("--json", "config", "reload", str(bad))
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["status"] == "invalid" and out["applied"] is False
    assert [e["path"] for e in out["errors"]] == ["listeners[0].port"]
    assert out["errors"][0]["file"] == str(bad) and out["errors"][0]["line"] > 0

    # the dataplane checks too, whoever asks it
    reply = dp.cmd(f"/mxgate/reload,{bad}")
    assert reply["status"] == "invalid" and reply["error_count"] == 1
    assert re.match(r"\d+:\d+: listeners\[0\]\.port: 70000", reply["errors"][0])
    # an unreadable file is an error too
    r = ctl.ctl("config", "reload", str(dp.dir / "missing.yaml"))
    assert r.returncode == 1 and "missing.yaml" in r.stderr

    i = info(dp)
    assert i["config_generation"] == 1 and i["reloads_applied"] == 0
    assert i["reloads_invalid"] == 1  # the control plane kept the others from it
    c = session(dp)  # the old limit is still in force
    c.cmd("EHLO client.example.org", 250)
    c.cmd("MAIL FROM:<a@example.org>", 250)
    rcpts(c, 4, first_refused=4)
    c.cmd("QUIT", 221)
    c.close()


@netns
def test_lcores_ports_and_listener_ports_are_reported_as_needing_a_restart(reload_env):
    dp, ctl, write = reload_env()
    head = dp.config.read_text().split("control:\n", 1)[0]
    moved = (head.replace("worker_cores: [1]", "worker_cores: [1, 0]")
             .replace("addresses: [198.51.100.2/24]", "addresses: [198.51.100.3/24]"))
    path = write(smtp_yaml(max_rcpts=1).replace(f"port: {PORT}", "port: 2525"),
                 name="moved.yaml", base=moved)
    r = ctl.ctl("config", "reload", str(path))
    assert r.returncode == 1, r.stdout
    assert "only a restart of mxgate-dp applies; nothing changed" in r.stdout
    for line in ("dataplane.worker_cores", "1 -> 1,0",
                 "dataplane.ports[0].addresses", "198.51.100.2/24 -> 198.51.100.3/24",
                 "listeners[0].port", "25 -> 2525"):
        assert line in r.stdout, r.stdout
    r = ctl.ctl("--json", "config", "reload", str(path))
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["status"] == "restart_needed"
    keys = {k["key"]: k for k in out["restart"]}
    assert set(keys) == {"dataplane.worker_cores", "dataplane.ports[0].addresses",
                         "listeners[0].port"}
    assert keys["listeners[0].port"]["old"] == "25" and keys["listeners[0].port"]["new"] == "2525"
    assert all(k["component"] == "mxgate-dp" and k["why"] for k in out["restart"])
    i = info(dp)
    assert i["config_generation"] == 1 and i["reloads_refused"] == 2
    # all or nothing: the limit that came with it is not in force either
    c = session(dp)
    c.cmd("EHLO client.example.org", 250)
    c.cmd("MAIL FROM:<a@example.org>", 250)
    rcpts(c, 3)
    c.cmd("QUIT", 221)
    c.close()

    # more recipients than the session memory reserved at start can hold
    path = write(smtp_yaml(max_rcpts=1000), name="big.yaml")
    out = json.loads(ctl.ctl("--json", "config", "reload", str(path)).stdout)
    assert out["status"] == "restart_needed"
    assert [k["key"] for k in out["restart"]] == ["listeners[0].limits"]
    assert "reserved at start" in out["restart"][0]["text"]
    r = ctl.ctl("config", "reload", str(path))
    assert r.returncode == 1 and "max_recipients 1000" in r.stdout, r.stdout

    # mxgate-control's own socket is its to bind at start
    path = write(smtp_yaml(), name="sock.yaml",
                 control=control_yaml(ctl.workdir).replace(f"socket: {ctl.socket}",
                                                           "socket: /tmp/elsewhere.sock"))
    r = ctl.ctl("--json", "config", "reload", str(path))
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["status"] == "restart_needed"
    assert {k["component"] for k in out["restart"]} == {"mxgate-control"}
    assert "control.socket" in {k["key"] for k in out["restart"]}


@netns
def test_config_reload_without_a_file_rereads_the_one_in_force_both_forms(reload_env):
    dp, ctl, write = reload_env()
    r = ctl.ctl("--json", "config", "reload")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"ok": True, "applied": True, "status": "applied", "file": str(dp.config),
                   "generation": 2, "retired": out["retired"]}
    write(smtp_yaml(hostname="again.example.com"))
    r = ctl.ctl("config", "reload")
    assert r.returncode == 0 and "applied (generation 3)" in r.stdout
    # mxgate-control keeps what it applied: config show has the new file
    shown = json.loads(ctl.ctl("--json", "config", "show").stdout)
    assert "again.example.com" in shown["text"]
    # wrong arguments are usage errors
    r = ctl.ctl("config", "reload", "a.yaml", "b.yaml")
    assert r.returncode == 2 and "unexpected argument 'b.yaml'" in r.stderr


def log_lines(ctl, prog, event):
    return [ln for ln in ctl.log().splitlines()
            if f"prog={prog} " in ln and f"event={event} " in ln]


@netns
def test_log_level_changes_at_run_time_in_both_daemons(reload_env):
    dp, ctl, write = reload_env()
    bad = write("listeners: [oops\n", name="bad.yaml")
    r = ctl.ctl("log", "level", "error")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mxgate-control  error (was debug)" in r.stdout
    assert "mxgate-dp       error (was debug)" in r.stdout
    assert dp.cmd("/mxgate/log_level") == {"level": "error"}
    assert info(dp)["log_level"] == "error"

    # a warning is not written at "error": from either daemon
    before = (len(log_lines(ctl, "mxgate-control", "config_reload")),
              len(log_lines(ctl, "mxgate-dp", "config_reload")))
    assert ctl.ctl("config", "reload", str(bad)).returncode == 1
    assert dp.cmd(f"/mxgate/reload,{bad}")["status"] == "invalid"
    time.sleep(0.2)
    assert (len(log_lines(ctl, "mxgate-control", "config_reload")),
            len(log_lines(ctl, "mxgate-dp", "config_reload"))) == before

    r = ctl.ctl("--json", "log", "level", "warning")
    assert r.returncode == 0
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["level"] == "warning"
    assert out["control"] == {"level": "warning", "previous": "error"}
    assert out["dataplane"] == {"level": "warning", "previous": "error"}
    assert ctl.ctl("config", "reload", str(bad)).returncode == 1
    assert dp.cmd(f"/mxgate/reload,{bad}")["status"] == "invalid"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        now = (len(log_lines(ctl, "mxgate-control", "config_reload")),
               len(log_lines(ctl, "mxgate-dp", "config_reload")))
        if now[0] > before[0] and now[1] > before[1]:
            break
        time.sleep(0.05)
    assert now[0] == before[0] + 1 and now[1] == before[1] + 1, ctl.log()
    assert log_lines(ctl, "mxgate-dp", "log_level")[-1].find("log level warning (was error)") > 0

    for args in (("log", "level", "loud"), ("log", "level"), ("log", "level", "info", "x")):
        r = ctl.ctl(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "usage: mxgatectl" in r.stderr
    assert dp.cmd("/mxgate/log_level,loud")["error"].startswith("'loud' is not a log level")
    assert dp.cmd("/mxgate/log_level") == {"level": "warning"}


@netns
def test_the_dataplanes_log_is_rate_limited_under_a_flood(reload_env):
    """400 broken reloads as fast as telemetry takes them: each is counted, but the log
    holds at most the burst (200) plus the refill (100 a second), then one line saying
    how many were left out."""
    dp, ctl, write = reload_env()
    bad = write("listeners: [oops\n", name="bad.yaml")
    t0 = time.monotonic()
    for _ in range(400):
        assert dp.cmd(f"/mxgate/reload,{bad}")["status"] == "invalid"
    took = time.monotonic() - t0
    assert info(dp)["reloads_invalid"] == 400
    written = len(log_lines(ctl, "mxgate-dp", "config_reload"))
    assert written <= 200 + 100 * took + 1, (written, took)
    if written < 400:  # the limit bit: the next line that gets through says so
        time.sleep(1.1)
        dp.cmd(f"/mxgate/reload,{bad}")
        suppressed = log_lines(ctl, "mxgate-dp", "log_suppressed")
        assert suppressed, ctl.log()[-2000:]
        counts = [int(re.search(r"count=(\d+)", ln).group(1)) for ln in suppressed]
        assert sum(counts) == 400 - written, (suppressed, written)


# ---- routes: hitless (relay_sched_set_routes(), the session's snapshot for cut-through) ----

def routes_yaml(ack, hop, spool=None, extra_domain=""):
    """One listener in ACK mode; example.org routed to HOP (HOP_PORT), no smarthost."""
    spool_part = f"spool:\n  directory: {spool}\n  segment_mb: 32\n  staging_mb: 16\n" \
        if spool else ""
    return f"""\
listeners:
  - name: mx
    port: {PORT}
    ack: {ack}
    hostname: mx.example.com
policy:
  relay_networks: [198.51.100.0/24]
{spool_part}routes:
  domains:
    - domain: example.org
      next_hops: [{{address: {hop}, port: {HOP_PORT}}}]
{extra_domain}relay:
  helo_name: mx.example.com
  retry_first_s: 1
  retry_max_s: 2
  idle_timeout_s: 30
  connect_timeout_s: 3
"""


def mail(c, rcpt, subject):
    c.cmd("MAIL FROM:<sender@example.com>", 250)
    c.cmd(f"RCPT TO:<{rcpt}>", 250)
    c.cmd("DATA", 354)
    c.send(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n")
    c.expect(250)


def subjects(hop):
    return [re.search(r"Subject: (\S+)", m["data"]).group(1) for m in hop.messages()]


@netns
@pytest.mark.parametrize("ack", ["store", "cut-through"])
def test_routes_reload_hitlessly_new_mail_goes_to_the_new_next_hop(reload_env, tmp_path,
                                                                   next_hops, ack):
    """example.org -> A; a message; reload with example.org -> B (and example.net added);
    a message on the session opened before the reload and one on a new session: both
    arrive at B, none at A after the reload, and no connection is dropped."""
    spool = tmp_path / "spool" if ack == "store" else None
    dp, ctl, write = reload_env(text=routes_yaml(ack, HOP_A, spool))
    a = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "a", name="hop-a")
    next_hops.append(a)
    b = NextHop(dp, HOP_B, HOP_PORT, tmp_path / "b", name="hop-b")
    next_hops.append(b)

    old = session(dp)
    old.cmd("EHLO client.example.org", 250)
    mail(old, "alice@example.org", "before")
    assert [m["rcpt_tos"] for m in a.wait(1)] == [["alice@example.org"]]
    # example.net has no route yet (no smarthost either): 550 5.4.4 at RCPT
    old.cmd("MAIL FROM:<sender@example.com>", 250)
    old.cmd("RCPT TO:<carol@example.net>", 550, "5.4.4")
    old.cmd("RSET", 250)

    net = f"    - domain: example.net\n      next_hops: [{{address: {HOP_B}, port: {HOP_PORT}}}]\n"
    write(routes_yaml(ack, HOP_B, spool, extra_domain=net))
    r = ctl.ctl("config", "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "applied (generation 2)" in r.stdout, r.stdout

    new = session(dp)
    new.cmd("EHLO client.example.org", 250)
    mail(new, "bob@example.org", "after-new")
    new.cmd("MAIL FROM:<sender@example.com>", 250)
    new.cmd("RCPT TO:<carol@example.net>", 250)  # the new route, on the new session
    new.cmd("RSET", 250)
    if ack == "store":
        # the relay routes by the new table from its next poll: mail the session from
        # before the reload spooled goes there too; its RCPT check stays the old one's
        mail(old, "dave@example.org", "after-old")
        old.cmd("MAIL FROM:<sender@example.com>", 250)
        old.cmd("RCPT TO:<carol@example.net>", 550, "5.4.4")
        old.cmd("RSET", 250)
        want = {"after-new", "after-old"}
    else:
        # cut-through: the old session routes by its snapshot to the end -- to A
        mail(old, "dave@example.org", "after-old")
        assert set(subjects(a)) == {"before", "after-old"}, subjects(a)
        want = {"after-new"}
    got = b.wait(len(want))
    assert set(subjects(b)) == want, subjects(b)
    assert all(rt == ["bob@example.org"] or rt == ["dave@example.org"]
               for rt in (m["rcpt_tos"] for m in got))
    old.cmd("QUIT", 221)
    new.cmd("QUIT", 221)
    assert old.closed() and new.closed()
    old.close()
    new.close()
    time.sleep(0.5)  # nothing more arrives at A
    assert len(a.messages()) == (1 if ack == "store" else 2), subjects(a)
    assert dp.counter("smtp_sessions_aborted") == 0
    # the relay let go of the old snapshot once it had the new routes; the old session too
    assert wait_info(dp, "snapshots_retired", 0) == 0
    assert info(dp)["snapshots_freed"] == 1
    if ack == "store":
        assert dp.wait_counter("relay_rcpts_delivered", 3) == 3
        assert dp.counter("relay_rcpts_deferred") == 0


# --- the auth: section (control/config/restart.c classifies it) ---------------------------


def auth_yaml(users, max_failures=5, lockout_s=60, queue_depth=8):
    """A submission listener taking AUTH in the clear (auth_plaintext: no TLS to set up)."""
    return f"""\
auth:
  password_file: {users}
  max_failures: {max_failures}
  lockout_s: {lockout_s}
  queue_depth: {queue_depth}
listeners:
  - name: sub
    port: 587
    mode: submission
    ack: sink
    auth_plaintext: true
"""


@netns
def test_auth_lockout_settings_reload_hitlessly_but_queue_depth_only_goes_down(
        reload_env, tmp_path):
    import base64
    from test_auth import password_file
    users = password_file(tmp_path / "users")
    dp, ctl, write = reload_env(text=auth_yaml(users))
    wrong = "AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode()

    c = Client(dp, port=587)
    c.cmd("EHLO client.example.org", 250)
    c.cmd(wrong, 535, "5.7.8")  # one failure of five
    # fewer failures allowed, and a lower depth: applied by a reload
    write(auth_yaml(users, max_failures=2, queue_depth=4))
    r = ctl.ctl("config", "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_info(dp, "config_generation", 2) == 2
    c2 = Client(dp, port=587)
    c2.cmd("EHLO client.example.org", 250)
    # the second failure of the address is now the last one allowed: 421 and locked out
    c2.cmd(wrong, 421, "4.7.0")
    assert dp.wait_counter("smtp_auth_lockouts", 1) == 1
    assert c2.closed()
    c.close()
    # a deeper queue than the rings made at start: named, nothing changed
    path = write(auth_yaml(users, max_failures=2, queue_depth=64), name="deeper.yaml")
    out = json.loads(ctl.ctl("--json", "config", "reload", str(path)).stdout)
    assert out["status"] == "restart_needed", out
    keys = {k["key"]: k for k in out["restart"]}
    assert set(keys) == {"auth.queue_depth"}, out
    # compared with the start's depth, which sized the rings: back up to 8 would be fine
    assert (keys["auth.queue_depth"]["old"], keys["auth.queue_depth"]["new"]) == ("8", "64")
    assert "queues are sized at start" in keys["auth.queue_depth"]["why"]
    assert info(dp)["config_generation"] == 2
