# SPDX-License-Identifier: BSD-3-Clause
"""The control plane against real daemons: mxgate-dp on net_tap in a namespace
(conftest's fixtures), mxgate-control started by the test in that namespace,
mxgatectl on the host.

Every implemented mxgatectl command is run in both output forms, and what it
says is checked against the dataplane's own telemetry after real traffic
(pings, SMTP). /metrics goes through `promtool check metrics`. With four
workers the counters outgrow one DPDK telemetry reply (16 KiB in 22.11): every
counter name of the dataplane's headers is still found in every row, from the
dataplane's pages up to mxgatectl and /metrics. Then the failure cases: mxgate-control killed and restarted while the dataplane carries
mail, the dataplane restarted under a running mxgate-control, malformed and
oversized requests on the control socket, wrong arguments, a bad config, no
daemon at all.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import DP_ADDR, TOP
from mxctl import (MXGATE_CONTROL, MXGATECTL, Control, ctl_run, control_yaml, need_binaries,
                   parse_metrics, restart_dataplane)

netns = pytest.mark.netns

SMTP_CONFIG = """\
listeners:
  - name: mx
    port: 25
    mode: relay
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
"""

BAD_CONFIG = """\
dataplane:
  ports:
    - device: net_tap0
      addresses: [198.51.100.2/24]
control:
  socket: control.sock
  metrics_listen: 127.0.0.1:70000
  sample_intervall_ms: 100
logging:
  level: chatty
"""

BAD_CONFIG_ERRORS = [
    "{f}:6:11: control.socket: 'control.sock' is not an absolute path; write one such as "
    "/run/mxgate/control.sock",
    "{f}:7:19: control.metrics_listen: '70000' is not a port number (1..65535)",
    "{f}:8:3: control.sample_intervall_ms: unknown key; did you mean 'sample_interval_ms'?",
    "{f}:10:10: logging.level: 'chatty' is not one of: error, warning, info, debug",
]


@pytest.fixture
def control(request, start_dataplane, tmp_path):
    """Returns start(workers=(1,), smtp=False) -> (dp, ctl): a dataplane with the control
    section in its config and a connected mxgate-control. Both are stopped after the test;
    a crash or a sanitizer report of mxgate-control fails it."""
    started = []

    def start(worker_cores=(1,), smtp=False):
        extra = control_yaml(tmp_path) + (SMTP_CONFIG if smtp else "")
        dp = start_dataplane(worker_cores=worker_cores, extra=extra)
        ctl = Control(dp, tmp_path)
        started.append(ctl)
        ctl.start()
        return dp, ctl

    yield start
    problems = []
    for ctl in started:
        problems += ctl.teardown()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def counter_names_from_source():
    """Every name a row of /mxgate/stats must hold, read from the X-macro tables in the
    dataplane's headers (DP_TRAFFIC_COUNTERS and DP_DROP_COUNTERS of core/counters.h and
    the tables they pull in), not from the dataplane, so a row it cut short shows."""
    macros = {}
    for header in sorted((TOP / "dataplane").rglob("*.h")):
        text = re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S).replace("\\\n", " ")
        for m in re.finditer(r"^[ \t]*#define[ \t]+(\w+)\(X\)(.*)$", text, re.M):
            macros[m.group(1)] = m.group(2)

    def expand(table):
        names = []
        for m in re.finditer(r'\bX\(\s*\w+\s*,\s*"([^"]+)"\s*\)|\b([A-Z0-9_]+)\(X\)',
                             macros[table]):
            names += [m.group(1)] if m.group(1) else expand(m.group(2))
        return names

    names = expand("DP_TRAFFIC_COUNTERS") + ["drop_" + n for n in expand("DP_DROP_COUNTERS")]
    assert len(names) == len(set(names)), "a counter name appears twice"
    return names


def ping(dp, count, interval="0.2"):
    r = dp.ns.exec("ping", "-c", str(count), "-i", interval, "-W", "2", DP_ADDR, timeout=30)
    assert f"{count} received" in r.stdout, r.stdout


def send_mail(dp, n=1):
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    try:
        for i in range(n):
            refused = smtp.sendmail("ops@example.org", ["alice@example.com"],
                                    f"Subject: control test {i}\r\n\r\nbody {i}\r\n")
            assert refused == {}
    finally:
        smtp.quit()


# --- no daemon needed ------------------------------------------------------------


def test_config_check_reports_every_error_with_its_position(tmp_path):
    need_binaries()
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    want = [line.format(f=bad) for line in BAD_CONFIG_ERRORS]

    r = ctl_run(None, "config", "check", str(bad))
    assert r.returncode == 1
    assert r.stderr.splitlines() == want
    assert r.stdout == ""

    r = ctl_run(None, "config", "check", str(bad), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False
    assert [e["text"] for e in out["errors"]] == want
    first = out["errors"][0]
    assert (first["file"], first["line"], first["column"], first["path"]) == \
        (str(bad), 6, 11, "control.socket")
    assert first["message"].startswith("'control.sock' is not an absolute path")

    # the daemon refuses the same file with the same lines, exit 2 like mxgate-dp
    r = subprocess.run([str(MXGATE_CONTROL), "-c", str(bad)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2
    assert r.stderr.splitlines() == want

    missing = tmp_path / "missing.yaml"
    r = ctl_run(None, "config", "check", str(missing), "--json")
    assert r.returncode == 1
    assert r.stderr.strip() == f"{missing}: cannot read: No such file or directory"
    assert json.loads(r.stdout)["errors"] == [
        {"file": str(missing), "text": f"{missing}: cannot read: No such file or directory"}]


def test_config_check_accepts_a_valid_file_with_one_line(tmp_path):
    need_binaries()
    good = tmp_path / "good.yaml"
    good.write_text("dataplane:\n  memory: {file_prefix: edge7}\n  ports:\n"
                    "    - device: net_tap0\n      addresses: [198.51.100.2/24]\n")
    r = ctl_run(None, "config", "check", str(good))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{good}: OK\n", "")

    out = json.loads(ctl_run(None, "--json", "config", "check", str(good)).stdout)
    assert out["ok"] is True
    # the defaults in force, the telemetry socket from the file prefix
    assert out["config"]["control"] == {
        "socket": "/run/mxgate/control.sock",
        "metrics_listen": "127.0.0.1:9464",
        "telemetry_socket": "/var/run/dpdk/edge7/dpdk_telemetry.v2",
        "sample_interval_ms": 1000,
        "history_s": 300,
    }
    assert out["config"]["logging"] == {"level": "info", "destination": "stdout"}
    assert out["config"]["dataplane"]["ports"][0]["addresses"] == ["198.51.100.2/24"]


@pytest.mark.parametrize("args, reason", [
    ([], "no command given"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["status", "--colour"], "unknown option '--colour'"),
    (["config", "check"], "config check needs a FILE"),
    (["status", "extra"], "unexpected argument 'extra'"),
    (["ports", "--watch"], "--watch goes with stats only"),
    (["top", "--count", "0"], "--count: '0' is not a number from 1 to 1000000"),
    (["log", "level", "loud"], "'loud' is not a log level (error, warning, info, debug)"),
    (["queue", "show"], "queue show needs a message ID"),
])
def test_wrong_arguments_print_usage_and_exit_2(args, reason):
    need_binaries()
    r = ctl_run("/nonexistent/control.sock", *args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"mxgatectl: {reason}\nusage: mxgatectl ")
    assert "exit status: 0 success, 1 failure, 2 usage" in r.stderr
    assert r.stdout == ""
    r = ctl_run("/nonexistent/control.sock", "--json", *args)
    assert r.returncode == 2
    assert json.loads(r.stdout) == {"ok": False, "error": {"code": "usage", "message": reason}}


def test_daemon_usage_errors_exit_2():
    need_binaries()
    r = subprocess.run([str(MXGATE_CONTROL), "--frob"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2
    assert r.stderr.startswith("mxgate-control: unknown argument '--frob'\nusage:")
    r = subprocess.run([str(MXGATE_CONTROL), "-c"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2


@pytest.mark.parametrize("cmd", [["status"], ["stats"], ["ports"], ["top", "--count", "1"],
                                 ["config", "show"], ["stats", "--watch", "--count", "2"]])
def test_no_daemon_is_one_clear_line(tmp_path, cmd):
    need_binaries()
    sock = tmp_path / "nobody.sock"
    r = ctl_run(sock, *cmd)
    assert r.returncode == 1
    assert r.stderr == f"mxgatectl: mxgate-control is not running (nothing answers on {sock})\n"
    r = ctl_run(sock, "--json", *cmd)
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"]["code"] == "not_running"
    # a stale socket file (a daemon killed with -9) reads the same
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    r = ctl_run(sock, *cmd)
    assert r.returncode == 1
    assert "mxgate-control is not running" in r.stderr


@pytest.mark.parametrize("cmd", [["config", "reload"], ["log", "level", "debug"]])
def test_reload_and_log_level_without_a_daemon_say_it_is_not_running(cmd):
    need_binaries()
    r = ctl_run("/nonexistent/control.sock", *cmd)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "mxgatectl: mxgate-control is not running (nothing answers on /nonexistent/control.sock)"]
    out = json.loads(ctl_run("/nonexistent/control.sock", "--json", *cmd).stdout)
    assert out["ok"] is False and out["error"]["code"] == "not_running"


def test_control_without_a_dataplane_says_so_and_a_second_daemon_is_refused(tmp_path):
    """No dataplane at all: mxgate-control starts, keeps retrying, and reports it; the
    control socket is single-owner."""
    need_binaries()
    cfg = tmp_path / "mxgate.yaml"
    cfg.write_text("dataplane:\n  memory: {file_prefix: mxt_nobody_%d}\n  ports:\n"
                   "    - device: net_tap0\n      addresses: [198.51.100.2/24]\n" % os.getpid()
                   + control_yaml(tmp_path, metrics="off"))
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([str(MXGATE_CONTROL), "-c", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=err, env=dict(os.environ))
    try:
        sock = tmp_path / "control.sock"
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        r = ctl_run(sock, "status")
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(r"mxgate-dp +NOT CONNECTED.*: no such socket \(is mxgate-dp running\?\)",
                         r.stdout), r.stdout
        r = ctl_run(sock, "stats")
        assert r.returncode == 1
        assert r.stderr.startswith("mxgatectl: mxgate-dp is not connected (no such socket")
        assert json.loads(ctl_run(sock, "--json", "ports").stdout)["error"]["code"] == \
            "dataplane_down"

        second = subprocess.run([str(MXGATE_CONTROL), "-c", str(cfg)], capture_output=True,
                                text=True, timeout=20)
        assert second.returncode == 1
        assert "another mxgate-control answers there" in (tmp_path / "control.log").read_text()
        assert proc.poll() is None
        # one warning for the outage, then quiet retries at debug level
        log = (tmp_path / "control.log").read_text()
        assert log.count("event=telemetry_unavailable") == 1
        assert log.count("event=telemetry_retry") >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert not (tmp_path / "control.sock").exists(), "the socket is removed on a clean stop"


def test_routes_show_the_mail_routes_of_the_loaded_config(tmp_path):
    """mxgatectl routes reads the daemon's config: no dataplane needed."""
    need_binaries()
    cfg = tmp_path / "mxgate.yaml"
    cfg.write_text("dataplane:\n  memory: {file_prefix: mxt_routes_%d}\n  ports:\n"
                   "    - device: net_tap0\n      addresses: [198.51.100.2/24]\n" % os.getpid()
                   + "routes:\n  domains:\n    - domain: example.com\n      next_hops:\n"
                   "        - {address: 198.51.100.21, port: 2525, priority: 20}\n"
                   "        - {address: 198.51.100.20, priority: 5, weight: 3}\n"
                   "  smarthost: [{address: 203.0.113.25}]\n"
                   + control_yaml(tmp_path, metrics="off"))
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([str(MXGATE_CONTROL), "-c", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=err, env=dict(os.environ))
    try:
        sock = tmp_path / "control.sock"
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = ctl_run(sock, "routes")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["DOMAIN", "NEXT", "HOPS,", "IN", "ORDER"]
        assert lines[1].split(None, 1) == [
            "example.com", "198.51.100.20:25 (priority 5, weight 3), "
                           "198.51.100.21:2525 (priority 20, weight 1)"]
        assert lines[2].split(None, 1) == ["(smarthost)",
                                           "203.0.113.25:25 (priority 10, weight 1)"]
        out = json.loads(ctl_run(sock, "--json", "routes").stdout)
        assert out["domains"][0]["domain"] == "example.com"
        assert [h["address"] for h in out["domains"][0]["next_hops"]] == \
            ["198.51.100.20", "198.51.100.21"]
        assert out["smarthost"] == [{"address": "203.0.113.25", "port": 25, "priority": 10,
                                     "weight": 1}]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# --- against a running dataplane -------------------------------------------------


@netns
def test_status_stats_and_ports_agree_with_the_dataplane(control):
    dp, ctl = control()
    info = dp.cmd("/mxgate/info")
    ping(dp, 5)
    mark = time.monotonic()
    ctl.wait_sample_after(mark)
    tel = dp.stats()

    # status, JSON
    st = ctl.ctl_json("status")
    d = st["dataplane"]
    assert d["connected"] is True
    assert (d["version"], d["workers"], d["config"]) == \
        (info["version"], info["workers"], info["config"])
    assert d["pid"] == dp.proc.pid
    assert abs(d["uptime_s"] - dp.cmd("/mxgate/info")["uptime_s"]) <= 2
    assert d["lcores_configured"] == {"main": 0, "workers": [1]}
    # the lcores it runs on: EAL's ids (main 0, workers from 1) and their CPUs
    assert (d["main_lcore"], d["main_cpu"], d["worker_lcores"], d["worker_cpus"]) == \
        (info["main_lcore"], info["main_cpu"], info["worker_lcores"], info["worker_cpus"]) == \
        (0, 0, [1], [1])
    assert [(p["name"], p["link_up"], p["addresses"]) for p in d["ports"]] == \
        [("tap0", True, f"{DP_ADDR}/24")]
    assert d["sessions"]["total"] == 0
    assert d["sessions"]["open"] == 0 and d["sessions"]["open_by_worker"] == {"worker0": 0}
    assert "open_note" not in d["sessions"]
    assert d["sample_errors"] == 0 and d["last_sample_error"] == ""
    assert st["control"]["pid"] == ctl.proc.pid
    assert st["control"]["socket"] == str(ctl.socket)
    assert st["control"]["metrics_listen"] == "127.0.0.1:9464"

    # status, human
    r = ctl.ctl("status")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^mxgate-dp +connected: version {re.escape(info['version'])}, up ",
                     r.stdout, re.M), r.stdout
    assert re.search(r"^  ports +tap0  link up .* 198\.51\.100\.2/24$", r.stdout, re.M), r.stdout
    assert re.search(r"^  workers +1 on lcores 1 \(cpus 1\); main lcore 0 \(cpu 0\)$", r.stdout,
                     re.M), r.stdout
    assert re.search(r"^  sessions +0 since start.*; 0 open now$", r.stdout, re.M), r.stdout
    assert re.search(r"^  queue +0 messages waiting, 0 deferred \(mxgatectl queue list\)$",
                     r.stdout, re.M), r.stdout

    # stats, JSON: the same counters the dataplane reports, for every worker and in total
    s = ctl.ctl_json("stats", "--span", "60")
    assert s["rows"] == ["worker0", "total"]
    for name in ("icmp_echo_in", "icmp_echo_replies_sent"):
        assert s["counters"]["total"][name] == tel[name] == 5
        assert s["counters"]["worker0"][name] == 5
    assert set(s["counters"]["total"]) == set(tel), "every dataplane counter is there"
    zero = {"smtp_sessions_open": 0, "tcp_conns": 0, "tcp_time_wait": 0}
    assert s["gauges"] == {"worker0": zero, "total": zero}
    # one worker's table fits one reply, so /mxgate/stats alone still gives all of it
    whole = dp.cmd("/mxgate/stats")
    assert set(whole) == {"worker0", "total"}
    assert whole["total"].keys() == tel.keys()
    # the window reaches back before the pings: rate x span gives back the 5 echoes
    assert s["span_s"] > 0
    assert abs(s["rates"]["total"]["icmp_echo_in"] * s["span_s"] - 5) < 0.01
    assert s["rates"]["total"]["drop_tcp_malformed"] == 0

    # stats, human: a row per counter with worker0, its rate, total, its rate
    r = ctl.ctl("stats")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^icmp_echo_in +5 +[0-9.]+ +5 +[0-9.]+$", r.stdout, re.M), r.stdout
    assert re.search(r"^icmp_echo_replies_sent +5 ", r.stdout, re.M)
    assert "drops by reason" in r.stdout
    assert "--all shows them" in r.stdout
    assert re.search(r"^tcp_retransmits ", r.stdout, re.M) is None, "zero rows are hidden"
    assert re.search(r"^gauges \(now\)\n  smtp_sessions_open +0 +0$", r.stdout, re.M), r.stdout
    r = ctl.ctl("stats", "--all")
    assert re.search(r"^tcp_retransmits +0 ", r.stdout, re.M), "--all shows the zeros"
    assert re.search(r"^  eth_runt +0 ", r.stdout, re.M)

    # ports, both forms
    p = ctl.ctl_json("ports")["ports"]["port0"]
    t = dp.port()
    for key in ("name", "device", "driver", "mac", "mtu", "queues", "addresses", "steering"):
        assert p[key] == t[key], key
    assert p["link_up"] == 1
    assert 5 <= p["ipackets"] <= t["ipackets"]
    assert p["rates"]["ipackets"] >= 0
    r = ctl.ctl("ports")
    assert r.returncode == 0
    assert re.search(r"^tap0 \(port0\): link up, \d+ Mb/s, mtu 1500, 1 queue, ", r.stdout,
                     re.M), r.stdout
    assert f"mac {t['mac']}" in r.stdout


@netns
def test_two_workers_are_shown_per_worker_everywhere(control):
    dp, ctl = control(worker_cores=(1, 1))
    ping(dp, 6, interval="0.1")
    ctl.wait_sample_after(time.monotonic())
    s = ctl.ctl_json("stats")
    assert s["rows"] == ["worker0", "worker1", "total"]
    for w in ("worker0", "worker1", "total"):
        assert s["counters"][w]["icmp_echo_in"] == dp.counter("icmp_echo_in", worker=w)
    assert s["counters"]["total"]["icmp_echo_in"] == 6
    m = ctl.metrics()
    assert m[("mxgate_icmp_echo_in_total", (("worker", "0"),))] + \
        m[("mxgate_icmp_echo_in_total", (("worker", "1"),))] == 6
    r = ctl.ctl("stats")
    assert re.search(r"^counter +worker0 +/s +worker1 +/s +total +/s$", r.stdout, re.M), r.stdout


@netns
def test_four_workers_lose_no_counter_from_the_dataplane_to_metrics(control):
    """Four workers' counters exceed one DPDK 22.11 telemetry reply (16 KiB): the dataplane
    says so instead of leaving rows out, and every row, read a page at a time, holds every
    counter name the headers define; so do mxgatectl's rows and /metrics."""
    names = counter_names_from_source()
    dp, ctl = control(worker_cores=(1, 1, 1, 1))
    rows = [f"worker{n}" for n in range(4)]
    ping(dp, 8, interval="0.1")

    raw = dp.tel.raw("/mxgate/stats")["/mxgate/stats"]
    if "error" in raw:
        # the explicit refusal, naming every page
        assert raw["error"] == ("4 workers' counters exceed one 16384-byte reply: read "
                                "/mxgate/stats,N (N = 0..3) and /mxgate/stats,total"), raw
        assert raw["workers"] == 4
        assert raw["pages"] == [f"/mxgate/stats,{n}" for n in range(4)] + ["/mxgate/stats,total"]
        pages = raw["pages"]
    else:
        # it fitted after all: then nothing may be missing from it
        assert list(raw) == rows + ["total"]
        assert all(list(raw[r]) == names for r in raw)
        pages = [f"/mxgate/stats,{n}" for n in range(4)] + ["/mxgate/stats,total"]

    tel = {}
    for page, row in zip(pages, rows + ["total"]):
        value = dp.cmd(page)
        assert list(value) == names, \
            f"{page}: missing {sorted(set(names) - set(value))}, extra " \
            f"{sorted(set(value) - set(names))}"
        assert all(isinstance(v, int) and v >= 0 for v in value.values()), page
        tel[row] = value
    assert sum(tel[r]["icmp_echo_in"] for r in rows) == 8
    assert tel["total"]["icmp_echo_in"] == 8

    ctl.wait_sample_after(time.monotonic())
    s = ctl.ctl_json("stats")
    assert s["rows"] == rows + ["total"]
    for row in rows + ["total"]:
        assert list(s["counters"][row]) == names, row
    assert s["counters"]["total"]["icmp_echo_in"] == 8
    for name in names:  # the control plane's total is the sum of the rows it read
        assert s["counters"]["total"][name] == sum(s["counters"][r][name] for r in rows), name
    assert set(s["gauges"]) == set(rows + ["total"])

    m = ctl.metrics()
    for n in range(4):
        w = (("worker", str(n)),)
        for name in names:
            key = (("mxgate_drops_total", (w[0], ("reason", name[5:])))
                   if name.startswith("drop_") else (f"mxgate_{name}_total", w))
            assert key in m, f"{key} missing from /metrics"
        assert (("mxgate_smtp_sessions_open", w)) in m
    assert sum(m[("mxgate_icmp_echo_in_total", (("worker", str(n)),))] for n in range(4)) == 8

    st = ctl.status()["dataplane"]
    assert st["workers"] == 4 and st["worker_lcores"] == [1, 2, 3, 4]
    assert st["sample_errors"] == 0, st["last_sample_error"]
    assert "event=sample_failed" not in ctl.log()


@netns
def test_stats_pages_that_do_not_exist_are_refused_with_a_reason(start_dataplane):
    dp = start_dataplane(worker_cores=(1, 1))
    why = "no such row: give a worker number from 0 to 1, or total"
    for bad in ("2", "-1", "x", "1,2", "total2", " 1", "1 ", "99999999999999999999", "0x1"):
        assert dp.cmd(f"/mxgate/stats,{bad}") == {"error": why}, bad
    assert dp.cmd("/mxgate/gauges,0") == {"error": "/mxgate/gauges takes no parameters"}
    # the good ones, for contrast: each a flat row of counters
    assert dp.cmd("/mxgate/stats,1")["rx_packets"] >= 0
    total = dp.cmd("/mxgate/stats,total")
    assert total.keys() == dp.cmd("/mxgate/stats,0").keys()
    # the harness reads a row the same way, and says which when the dataplane refuses
    with pytest.raises(RuntimeError, match=r"/mxgate/stats,7: .*no such row"):
        dp.stats("worker7")


@netns
def test_open_smtp_sessions_are_gauges_in_status_stats_and_metrics(control):
    dp, ctl = control(smtp=True)
    clients = []
    try:
        for _ in range(3):
            with dp.netns():
                c = smtplib.SMTP(DP_ADDR, 25, timeout=10)
            c.ehlo("client.example.org")
            clients.append(c)
        three = {"smtp_sessions_open": 3, "tcp_conns": 3, "tcp_time_wait": 0}
        assert dp.cmd("/mxgate/gauges") == {"worker0": three, "total": three}
        ctl.wait_sample_after(time.monotonic())
        ss = ctl.status()["dataplane"]["sessions"]
        assert (ss["open"], ss["open_by_worker"]) == (3, {"worker0": 3})
        r = ctl.ctl("status")
        assert re.search(r"^  sessions +3 since start.*; 3 open now$", r.stdout, re.M), r.stdout
        assert ctl.ctl_json("stats")["gauges"]["total"] == three
        m = ctl.metrics()
        assert m[("mxgate_smtp_sessions_open", (("worker", "0"),))] == 3
        assert m[("mxgate_tcp_conns", (("worker", "0"),))] == 3
        status, _, body = ctl.scrape()
        assert "# TYPE mxgate_smtp_sessions_open gauge\n" in body
    finally:
        for c in clients:
            c.quit()
    # a gauge goes down again
    deadline = time.monotonic() + 5
    while dp.cmd("/mxgate/gauges")["total"]["smtp_sessions_open"] != 0:
        assert time.monotonic() < deadline, "sessions still open after QUIT"
        time.sleep(0.05)
    ctl.wait_sample_after(time.monotonic())
    assert ctl.status()["dataplane"]["sessions"]["open"] == 0
    # the server closed first (QUIT): those connections wait in TIME_WAIT
    g = dp.cmd("/mxgate/gauges")["total"]
    assert g["tcp_time_wait"] == 3 and g["tcp_conns"] == 3, g
    assert ctl.metrics()[("mxgate_smtp_sessions_open", (("worker", "0"),))] == 0


@netns
def test_metrics_pass_promtool_and_match_the_telemetry(control):
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: scripts/setup installs Debian's prometheus package")
    dp, ctl = control(smtp=True)
    ping(dp, 3)
    send_mail(dp, 2)
    dp.wait_counter("smtp_messages_accepted", 2)
    ctl.wait_sample_after(time.monotonic())

    status, ctype, body = ctl.scrape()
    assert status == 200
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, f"promtool:\n{lint.stdout}{lint.stderr}\n--- page ---\n{body}"

    m = parse_metrics(body)
    tel = dp.stats("worker0")
    w0 = (("worker", "0"),)
    assert m[("mxgate_up", ())] == 1
    assert m[("mxgate_icmp_echo_in_total", w0)] == tel["icmp_echo_in"] == 3
    assert m[("mxgate_smtp_messages_accepted_total", w0)] == tel["smtp_messages_accepted"] == 2
    assert m[("mxgate_drops_total", (("worker", "0"), ("reason", "eth_runt")))] == \
        tel["drop_eth_runt"]
    info = dp.cmd("/mxgate/info")
    assert m[("mxgate_dataplane_info", (("version", info["version"]),))] == 1
    assert m[("mxgate_dataplane_workers", ())] == 1
    port = (("port", "tap0"),)
    assert m[("mxgate_port_up", port)] == 1
    assert m[("mxgate_port_mtu_bytes", port)] == 1500
    assert m[("mxgate_port_received_packets_total", port)] >= 3
    # every counter of the dataplane is a family of its own (drops are one, by reason)
    for name in tel:
        if name.startswith("drop_"):
            key = ("mxgate_drops_total", (("worker", "0"), ("reason", name[5:])))
        else:
            key = (f"mxgate_{name}_total", w0)
        assert key in m, f"{key} missing"
    assert "# TYPE mxgate_rx_packets_total counter" in body
    assert "# HELP mxgate_up " in body

    assert ctl.scrape("/")[0] == 200
    assert ctl.scrape("/nothing")[0] == 404
    assert ctl.status()["control"]["scrapes"] >= 1


@netns
def test_config_show_is_the_file_the_daemon_loaded(control):
    dp, ctl = control()
    text = dp.config.read_text()
    out = ctl.ctl_json("config", "show")
    assert out["path"] == str(dp.config)
    assert out["text"] == text
    eff = out["effective"]
    assert eff["control"]["socket"] == str(ctl.socket)
    assert eff["control"]["sample_interval_ms"] == 250
    assert eff["control"]["telemetry_socket"] == \
        f"/var/run/dpdk/{dp.file_prefix}/dpdk_telemetry.v2"
    assert eff["dataplane"]["memory"]["file_prefix"] == dp.file_prefix
    assert eff["logging"]["level"] == "debug"
    # mxgatectl finds the socket through the same file
    r = ctl_run(None, "-c", str(dp.config), "--json", "status")
    assert r.returncode == 0 and json.loads(r.stdout)["control"]["pid"] == ctl.proc.pid
    # a later edit of the file does not change what the daemon runs
    dp.config.write_text(text + "# edited after the start\n")
    r = ctl.ctl("config", "show")
    assert r.returncode == 0
    assert r.stdout.startswith(f"# the config mxgate-control runs, loaded from {dp.config} at ")
    assert r.stdout.split("\n", 1)[1] == text


@netns
def test_sighup_reopens_the_log_file_after_rotation(control):
    dp, ctl = control()
    rotated = ctl.log_path.with_suffix(".log.1")
    ctl.log_path.rename(rotated)
    ctl.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "event=log_reopen" not in ctl.log():
        assert time.monotonic() < deadline, "no new log file after SIGHUP"
        time.sleep(0.1)
    assert "event=telemetry_up" in rotated.read_text()
    assert ctl.proc.poll() is None
    # the daemon goes on, and logs into the new file
    r = ctl.ctl("status")
    assert r.returncode == 0
    assert ctl.stop() == 0
    assert "event=stopped" in ctl.log()


@netns
def test_stats_watch_and_top_redraw_and_stop(control):
    dp, ctl = control()
    r = ctl.ctl("--json", "stats", "--watch", "--count", "3")
    assert r.returncode == 0, r.stderr
    frames = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(frames) == 3
    assert all(f["rows"] == ["worker0", "total"] for f in frames)

    r = ctl.ctl("stats", "--watch", "--count", "2")
    assert r.returncode == 0
    assert r.stdout.count("drops by reason") == 2

    ping(dp, 4, interval="0.1")
    r = ctl.ctl("top", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("mxgate top   mxgate-dp ") == 2
    assert re.search(r"^worker0 +[0-9.]+ ", r.stdout, re.M), r.stdout
    assert re.search(r"^port tap0: link up", r.stdout, re.M)
    r = ctl.ctl("--json", "top", "--count", "2")
    frames = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(frames) == 2 and frames[0]["status"]["dataplane"]["connected"]
    assert frames[1]["stats"]["span_asked_s"] == 1


@netns
def test_top_on_a_terminal_quits_on_q_and_on_ctrl_c(control):
    dp, ctl = control()
    for key in (b"q", None):
        master, slave = pty.openpty()
        proc = subprocess.Popen([str(MXGATECTL), "-s", str(ctl.socket), "top"], stdin=slave,
                                stdout=slave, stderr=slave, close_fds=True,
                                start_new_session=True)
        os.close(slave)
        seen = b""
        try:
            deadline = time.monotonic() + 10
            while b"mxgate top" not in seen and time.monotonic() < deadline:
                if select.select([master], [], [], 0.2)[0]:
                    seen += os.read(master, 65536)
            assert b"mxgate top" in seen, seen
            assert b"\x1b[H\x1b[2J" in seen, "a terminal gets the screen redrawn"
            if key:
                os.write(master, key)
            else:
                proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)


@netns
def test_malformed_requests_get_error_replies_and_the_daemon_survives(control):
    dp, ctl = control()

    def exchange(conn, data):
        conn.sendall(data)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = conn.recv(65536)
            assert chunk, f"closed without a reply to {data[:60]!r}"
            buf += chunk
        return json.loads(buf)

    with ctl.raw() as c:
        # each error is answered, and the connection goes on
        r = exchange(c, b"hello\n")
        assert r["ok"] is False and r["error"]["code"] == "bad_json"
        assert exchange(c, b"[1, 2]\n")["error"]["code"] == "bad_request"
        r = exchange(c, b'{"cmd": "reboot", "id": 9}\n')
        assert r == {"ok": False, "id": 9,
                     "error": {"code": "unknown_command", "message": 'unknown command "reboot"'}}
        assert exchange(c, b"\x00\xff\xfe\x01junk\n")["error"]["code"] == "bad_json"
        assert exchange(c, b'{"cmd": "stats", "args": {"span_s": -1}}\n')["error"]["code"] == \
            "bad_request"
        r = exchange(c, b'{"cmd": "queue.list"}\n')  # a dataplane without listeners
        assert r["error"]["code"] == "not_available"
        assert r["error"]["message"] == "worker 0 runs no SMTP listeners"
        r = exchange(c, b'{"cmd": "status", "id": "after-errors"}\n')
        assert r["ok"] is True and r["id"] == "after-errors"
        assert r["result"]["dataplane"]["connected"] is True
        # a request split across writes, and three in one write, answered in order
        c.sendall(b'{"cmd":')
        time.sleep(0.2)
        assert exchange(c, b' "ports"}\r\n')["ok"] is True
        c.sendall(b'{"cmd":"status","id":1}\n{"cmd":"nope","id":2}\n{"cmd":"stats","id":3}\n')
        buf = b""
        while buf.count(b"\n") < 3:
            buf += c.recv(1 << 20)
        replies = [json.loads(line) for line in buf.splitlines()]
        assert [(x["id"], x["ok"]) for x in replies] == [(1, True), (2, False), (3, True)]

    # oversized: one too_large reply, then the connection is closed
    with ctl.raw() as c:
        c.sendall(b"{" + b" " * 5000)
        buf = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
        r = json.loads(buf)
        assert r["error"]["code"] == "too_large"
        assert r["error"]["message"] == \
            "request longer than 4096 bytes; closing the connection"

    # a last request without its newline, then end of input: still answered
    with ctl.raw() as c:
        c.sendall(b'{"cmd": "status"}')
        c.shutdown(socket.SHUT_WR)
        assert json.loads(c.makefile("rb").readline())["ok"] is True

    # clients that vanish mid-request, or at once
    for data in (b"", b'{"cmd": "sta', b'{"cmd": "stats"}\n' * 50):
        c = ctl.raw()
        if data:
            c.sendall(data)
        c.close()

    # more clients than it serves at once: the extra one is told, the others served
    deadline = time.monotonic() + 5
    while ctl.status()["control"]["clients"] > 1:  # 1: the status request itself
        assert time.monotonic() < deadline, "the vanished clients still hold their slots"
        time.sleep(0.1)
    held = [ctl.raw() for _ in range(16)]
    try:
        for c in held:
            assert exchange(c, b'{"cmd": "status"}\n')["ok"] is True
        extra = ctl.raw()
        r = json.loads(extra.makefile("rb").readline())
        assert r["error"] == {"code": "busy", "message": "too many clients at once; try again"}
        extra.close()
        assert exchange(held[0], b'{"cmd": "ports"}\n')["ok"] is True
    finally:
        for c in held:
            c.close()

    time.sleep(0.3)
    assert ctl.proc.poll() is None, "the daemon survived"
    st = ctl.ctl_json("status")
    assert st["dataplane"]["connected"] is True
    assert st["control"]["request_errors"] >= 7
    assert "event=clients_full" in ctl.log()


@netns
def test_killing_and_restarting_control_leaves_mail_flowing(control):
    dp, ctl = control(smtp=True)
    send_mail(dp)
    pid = dp.proc.pid

    # an SMTP session open across the kill completes normally
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=10)
    try:
        smtp.ehlo("client.example.org")
        assert ctl.signal(signal.SIGKILL) == -signal.SIGKILL
        assert ctl.socket.exists(), "SIGKILL leaves the socket file behind"
        assert smtp.sendmail("ops@example.org", ["alice@example.com"], "Subject: x\r\n\r\nx\r\n") \
            == {}
    finally:
        smtp.quit()
    send_mail(dp, 2)
    ping(dp, 2)
    assert dp.proc.poll() is None and dp.proc.pid == pid
    # the SMTP counters reach telemetry every 100 ms
    assert dp.wait_counter("smtp_messages_accepted", 4) == 4
    r = ctl.ctl("status")
    assert r.returncode == 1 and "mxgate-control is not running" in r.stderr

    # a new mxgate-control replaces the stale socket and picks up the same counters
    ctl.start()
    assert "removed " + str(ctl.socket) in ctl.log()
    ctl.wait_sample_after(time.monotonic())
    assert ctl.ctl_json("stats")["counters"]["total"]["smtp_messages_accepted"] == 4
    assert ctl.metrics()[("mxgate_up", ())] == 1
    send_mail(dp)
    assert dp.wait_counter("smtp_messages_accepted", 5) == 5
    ctl.wait_sample_after(time.monotonic())
    assert ctl.ctl_json("stats")["counters"]["total"]["smtp_messages_accepted"] == 5

    # SIGTERM: a clean stop that removes its socket
    assert ctl.stop() == 0
    assert not ctl.socket.exists()
    assert dp.proc.poll() is None


@netns
def test_dataplane_restart_is_noticed_and_the_control_plane_reconnects(control):
    dp, ctl = control()
    ping(dp, 3)
    ctl.wait_sample_after(time.monotonic())
    first_pid = dp.proc.pid
    assert ctl.metrics()[("mxgate_up", ())] == 1
    assert ctl.ctl_json("stats")["counters"]["total"]["icmp_echo_in"] == 3

    rc, _ = dp.terminate()
    assert rc == 0
    # mxgate_up goes to 0, and the dataplane's families disappear rather than go stale
    deadline = time.monotonic() + 5
    while ctl.metrics()[("mxgate_up", ())] != 0:
        assert time.monotonic() < deadline, "mxgate_up stayed 1 after the dataplane stopped"
        time.sleep(0.1)
    m = ctl.metrics()
    assert not any(name == "mxgate_icmp_echo_in_total" for name, _ in m)
    r = ctl.ctl("status")
    assert r.returncode == 1
    assert re.search(r"^mxgate-dp +NOT CONNECTED for [0-9.]+ s: ", r.stdout, re.M), r.stdout
    r = ctl.ctl("--json", "stats")
    assert r.returncode == 1
    assert json.loads(r.stdout)["error"]["code"] == "dataplane_down"

    restart_dataplane(dp)  # the same config and file prefix, in the same namespace
    st = ctl.wait_dataplane(True)
    assert st["dataplane"]["pid"] == dp.proc.pid != first_pid
    assert st["dataplane"]["connects"] == 2
    assert ctl.metrics()[("mxgate_up", ())] == 1
    # the new process counts from zero, and the window started over with it
    ping(dp, 2)
    ctl.wait_sample_after(time.monotonic())
    s = ctl.ctl_json("stats", "--span", "60")
    assert s["counters"]["total"]["icmp_echo_in"] == 2
    # every sample in the window is the new process's: rate x span gives back the 2 echoes
    assert abs(s["rates"]["total"]["icmp_echo_in"] * s["span_s"] - 2) < 0.01
    assert ctl.metrics()[("mxgate_control_telemetry_connects_total", ())] == 2

    log = ctl.log()
    assert log.count("event=telemetry_lost") == 1, log
    assert log.count("event=telemetry_up") == 2, log
    assert ctl.proc.poll() is None
