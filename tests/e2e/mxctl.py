# SPDX-License-Identifier: BSD-3-Clause
"""mxgate-control and mxgatectl for the end-to-end tests.

mxgate-control runs inside the dataplane's namespace (so /metrics binds that
namespace's 127.0.0.1:9464 and nothing on the host), reads the dataplane's
telemetry socket by its path (reachable from any namespace), and answers on a
unix socket under the test's tmp_path. mxgatectl runs on the host against
that socket. Both are the ASan/UBSan builds next to MXGATE_DP; any sanitizer
report from either fails the test.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import (KERNEL_ADDR, KERNEL_MAC, MXGATE_DP, PREFIX_LEN, SANITIZED_ENV, in_netns,
                      sanitizer_report)

BUILD = MXGATE_DP.parent.parent
MXGATE_CONTROL = Path(os.environ.get("MXGATE_CONTROL", BUILD / "control/daemon/mxgate-control"))
MXGATECTL = Path(os.environ.get("MXGATECTL", BUILD / "control/ctl/mxgatectl"))
METRICS_PORT = 9464
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


def control_yaml(workdir, sample_ms=250, history_s=60, metrics=f"127.0.0.1:{METRICS_PORT}",
                 level="debug"):
    """The control: and logging: sections, appended to the dataplane's config (both daemons
    read the one file). Samples every 250 ms so the tests need not wait long."""
    return f"""\
control:
  socket: {workdir}/control.sock
  metrics_listen: {metrics}
  sample_interval_ms: {sample_ms}
  history_s: {history_s}
logging:
  level: {level}
  destination: {workdir}/control.log
"""


def need_binaries():
    for b in (MXGATE_CONTROL, MXGATECTL):
        if not b.is_file():
            pytest.fail(f"{b} is not built: build the tree (or set MXGATE_CONTROL/MXGATECTL)")


def ctl_run(socket_path, *args, timeout=20, stdin=subprocess.DEVNULL):
    """Runs mxgatectl -s SOCKET ARGS; returns the CompletedProcess. Fails the test on a
    sanitizer report (a leak in mxgatectl counts)."""
    cmd = [str(MXGATECTL)] + (["-s", str(socket_path)] if socket_path else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=SANITIZED_ENV,
                       stdin=stdin)
    report = sanitizer_report(r.stderr)
    assert report is None, f"sanitizer report from {' '.join(cmd)}:\n{report}"
    return r


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of a Prometheus text page."""
    out = {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(label.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Control:
    """One mxgate-control in the dataplane's namespace; use through the fixture."""

    def __init__(self, dp, workdir):
        self.dp = dp
        self.workdir = Path(workdir)
        self.socket = self.workdir / "control.sock"
        self.log_path = self.workdir / "control.log"
        self.proc = None
        self.runs = 0
        self.expected_exit = False  # the test killed or stopped it on purpose

    def _out(self, kind):
        return self.workdir / f"control.{self.runs}.{kind}"

    def start(self, wait_connected=True):
        need_binaries()
        self.runs += 1
        self.expected_exit = False
        with open(self._out("stdout"), "wb") as out, open(self._out("stderr"), "wb") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.dp.name, str(MXGATE_CONTROL), "-c",
                 str(self.dp.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=SANITIZED_ENV)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mxgate-control exited with {self.proc.returncode} at start\n"
                            f"{self.logs()}")
            if self.answers():
                break
            if time.monotonic() > deadline:
                pytest.fail(f"mxgate-control did not answer on {self.socket}\n{self.logs()}")
            time.sleep(0.05)
        if wait_connected:
            self.wait_dataplane(True)
        return self

    def answers(self):
        """True when something accepts connections on the control socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.socket))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def status(self):
        r = self.ctl("--json", "status")
        assert r.returncode in (0, 1), r.stderr
        return json.loads(r.stdout)

    def wait_dataplane(self, connected, timeout=10.0):
        """Waits until status says the dataplane is (not) connected; returns that status."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["dataplane"]["connected"] == connected:
                return st
            if time.monotonic() > deadline:
                pytest.fail(f"dataplane.connected is not {connected} after {timeout} s: "
                            f"{st['dataplane']}\n{self.logs()}")
            time.sleep(0.1)

    def wait_sample_after(self, t_mono, timeout=5.0):
        """Waits until the latest sample was taken after monotonic time T_MONO."""
        deadline = time.monotonic() + timeout
        while True:
            # the daemon's clock read the age after `before`: the sample began after
            # before - age at the earliest (both clocks are CLOCK_MONOTONIC)
            before = time.monotonic()
            st = self.status()["dataplane"]
            if st.get("sample_age_ms") is not None and \
                    before - st["sample_age_ms"] / 1000.0 > t_mono:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"no sample after the mark within {timeout} s: {st}")
            time.sleep(0.1)

    def ctl(self, *args, **kw):
        return ctl_run(self.socket, *args, **kw)

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        assert r.returncode == 0, f"mxgatectl {' '.join(args)}: exit {r.returncode}\n{r.stderr}"
        return json.loads(r.stdout)

    def scrape(self, path="/metrics"):
        """GET http://127.0.0.1:9464PATH inside the namespace; returns (status, type, body)."""
        with in_netns(self.dp.name):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}{path}",
                                            timeout=5) as r:
                    return r.status, r.headers.get("Content-Type"), r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.headers.get("Content-Type"), e.read().decode()

    def metrics(self):
        status, _, body = self.scrape()
        assert status == 200
        return parse_metrics(body)

    def raw(self):
        """A raw connection to the control socket (the caller closes it)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(str(self.socket))
        return s

    def signal(self, sig):
        self.expected_exit = True
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self):
        """SIGTERM; returns the exit status."""
        return self.signal(signal.SIGTERM)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logs(self):
        parts = [f"--- mxgate-control log ---\n{self.log()}"]
        for n in range(1, self.runs + 1):
            for kind in ("stdout", "stderr"):
                p = self.workdir / f"control.{n}.{kind}"
                if p.exists():
                    parts.append(f"--- mxgate-control run {n} {kind} ---\n"
                                 f"{p.read_text(errors='replace')}")
        return "\n".join(parts)

    def teardown(self):
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                rc = self.stop()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                rc = "killed after SIGTERM timed out"
            if rc != 0:
                problems.append(f"mxgate-control exited with {rc} on SIGTERM")
        elif self.proc is not None and not self.expected_exit:
            problems.append(f"mxgate-control died during the test: exit {self.proc.returncode}")
        for n in range(1, self.runs + 1):
            p = self.workdir / f"control.{n}.stderr"
            report = sanitizer_report(p.read_text(errors="replace")) if p.exists() else None
            if report:
                problems.append(f"sanitizer report from mxgate-control run {n}:\n{report}")
        if problems:
            problems.append(self.logs())
        return problems


def restart_dataplane(dp):
    """Stops mxgate-dp with SIGTERM and starts it again in the same namespace, with the same
    config and file prefix (so the same telemetry socket path): what a service manager's
    restart does. The tap comes back with the process; the kernel's side is set up again."""
    rc, _ = dp.terminate()
    assert rc == 0, f"mxgate-dp exited with {rc} on SIGTERM\n{dp.logs()}"
    report = sanitizer_report(dp.stderr())
    assert report is None, f"sanitizer report from mxgate-dp's first run:\n{report}"
    if dp._tel is not None:
        dp._tel.close()
        dp._tel = None
    dp.signalled = False
    with open(dp.stdout_path, "wb") as out, open(dp.stderr_path, "wb") as err:
        dp.proc = subprocess.Popen(
            ["ip", "netns", "exec", dp.name, str(MXGATE_DP), "-c", str(dp.config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=SANITIZED_ENV)
    dp._wait_ready()
    dp.ns.ip("link", "set", "dev", dp.iface, "address", KERNEL_MAC)
    dp.ns.ip("addr", "add", f"{KERNEL_ADDR}/{PREFIX_LEN}", "dev", dp.iface)
    dp.ns.ip("link", "set", "dev", dp.iface, "up")
