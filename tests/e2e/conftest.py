# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end harness: mxgate-dp on a net_tap port inside a network namespace
made for one test, with the kernel as its neighbour on the other end of the tap.

    dataplane namespace mxt<pid><n>
      kernel: tap <iface> 198.51.100.1/24  <-- net_tap -->  mxgate-dp 198.51.100.2/24

Every test gets its own namespace, tap name and DPDK file prefix, so nothing
it does reaches the host's interfaces or another run. Teardown stops the
process by its PID, fails the test on any ASan/UBSan report, and removes the
namespace whatever happened.
"""

import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from mxtel import RUNTIME_DIR, Telemetry

TOP = Path(__file__).resolve().parents[2]
MXGATE_DP = Path(os.environ.get("MXGATE_DP", TOP / "build-test/dataplane/mxgate-dp"))

DP_ADDR = "198.51.100.2"
KERNEL_ADDR = "198.51.100.1"
# net_tap gives the kernel's end of the tap the port's own MAC; the kernel gets
# one of its own, or neither side's ARP would show who is who.
KERNEL_MAC = "02:6b:65:72:6e:01"
PREFIX_LEN = 24
READY_LINE = "mxgate-dp: ready"
READY_TIMEOUT_S = 15.0  # ASan builds start slower
STOP_TIMEOUT_S = 5.0

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:print_summary=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZED_ENV = dict(os.environ, **SANITIZER_ENV)
SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: \w+Sanitizer"
)

_seq = itertools.count(1)


def is_root():
    return os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    if is_root():
        return
    skip = pytest.mark.skip(reason="needs root: creates network namespaces and a DPDK tap")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


def run(args, timeout=30, check=True, **kw):
    """Runs a command with a bound on time; returns CompletedProcess (text). With
    CHECK, a non-zero exit raises with the command's stderr in the message."""
    args = [str(a) for a in args]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}\n{r.stderr}{r.stdout}")
    return r


def sanitizer_report(text):
    """The first lines of an ASan/UBSan/LSan report in TEXT, or None."""
    m = SANITIZER_REPORT.search(text)
    if not m:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    return text[start : start + 4000]


# --- network namespaces ---------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def in_netns(ns):
    """Runs the block in network namespace NS (this thread only). Sockets made
    inside stay in NS after the block, so a test can use them directly."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, _CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns({ns}): {os.strerror(e)}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:
                # Staying in the test's namespace would make every later step lie.
                os.write(2, b"conftest: cannot return to the original network namespace\n")
                os._exit(70)
    finally:
        os.close(own)


class Netns:
    """A network namespace that this process made; delete() is idempotent."""

    def __init__(self, name):
        self.name = name
        run(["ip", "netns", "del", name], check=False)  # a stale one from a killed run
        run(["ip", "netns", "add", name])
        self.alive = True
        try:
            self.ip("link", "set", "lo", "up")
            # No IPv6 chatter (router solicitations, MLD, DAD) on the tap: counters stay readable.
            self.exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.exec("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        except BaseException:
            self.delete()
            raise

    def ip(self, *args, check=True, timeout=10):
        return run(["ip", "-n", self.name, *args], check=check, timeout=timeout)

    def exec(self, *args, check=True, timeout=30, **kw):
        return run(["ip", "netns", "exec", self.name, *args], check=check, timeout=timeout, **kw)

    def has_link(self, iface):
        return self.ip("link", "show", "dev", iface, check=False).returncode == 0

    def link_mac(self, iface):
        out = self.ip("-o", "link", "show", "dev", iface).stdout
        return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)

    def delete(self):
        if self.alive:
            self.alive = False
            run(["ip", "netns", "del", self.name], check=False)


# --- the dataplane --------------------------------------------------------


def config_text(iface, file_prefix, worker_cores=(1,), mtu=1500, tcp=None, extra=""):
    """A config for one net_tap port at DP_ADDR, the kernel's end as its default route.
    TCP, a dict, becomes the keys under dataplane.tcp (e.g. {"echo_port": 7}); EXTRA is
    YAML appended at the top level (e.g. "listeners:" and "policy:")."""
    cores = ", ".join(str(c) for c in worker_cores)
    tcp_section = "".join(f"    {key}: {value}\n" for key, value in (tcp or {}).items())
    if tcp_section:
        tcp_section = "  tcp:\n" + tcp_section
    return f"""\
# written by tests/e2e/conftest.py
dataplane:
  main_core: 0
  worker_cores: [{cores}]
  idle_sleep_us: 20
  memory:
    mode: hugepages
    in_memory: true
    file_prefix: {file_prefix}
  ports:
    - name: tap0
      device: net_tap0,iface={iface}
      mtu: {mtu}
      addresses: [{DP_ADDR}/{PREFIX_LEN}]
  routes:
    - dst: 0.0.0.0/0
      via: {KERNEL_ADDR}
{tcp_section}{extra}"""


class Dataplane:
    """One mxgate-dp process in its own namespace. Use through the fixtures."""

    def __init__(self, tmp_path, worker_cores=(1,), tcp=None, extra=""):
        n = next(_seq)
        pid = os.getpid()
        self.name = f"mxt{pid}{n}"
        self.iface = f"tap{pid}_{n}"[:15]
        self.file_prefix = f"mxt{pid}_{n}"
        self.worker_cores = tuple(worker_cores)
        self.dir = tmp_path / self.name
        self.dir.mkdir()
        self.config = self.dir / "mxgate.yaml"
        self.config.write_text(config_text(self.iface, self.file_prefix, self.worker_cores,
                                            tcp=tcp, extra=extra))
        self.stdout_path = self.dir / "stdout"
        self.stderr_path = self.dir / "stderr"
        self.ns = None
        self.proc = None
        self.signalled = False  # the harness or the test sent SIGTERM
        self._tel = None

    # lifecycle

    def start(self):
        if not MXGATE_DP.is_file():
            pytest.fail(f"{MXGATE_DP} is not built: run scripts/build test (or set MXGATE_DP)")
        self.ns = Netns(self.name)
        return self._launch()

    def restart(self, kill=False):
        """Stops mxgate-dp (SIGKILL when KILL, else SIGTERM) and starts it again in the
        same namespace with the same config: what was running there (next hops) stays."""
        if kill:
            self.proc.kill()
            self.proc.wait(timeout=10)
        else:
            rc, took = self.terminate()
            assert rc == 0, f"mxgate-dp exited with {rc} on SIGTERM\n{self.logs()}"
        self.signalled = False
        if self._tel is not None:
            self._tel.close()
            self._tel = None
        previous = self.dir / f"stdout.{time.monotonic_ns()}"
        if self.stdout_path.exists():
            self.stdout_path.rename(previous)
        # the dataplane's tap went with the process; its runtime dir may linger
        shutil.rmtree(os.path.join(RUNTIME_DIR, self.file_prefix), ignore_errors=True)
        return self._launch()

    def _launch(self):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "ab") as err:
            # ip netns exec execs the program: self.proc.pid is mxgate-dp's own PID.
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.name, str(MXGATE_DP), "-c", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=SANITIZED_ENV,
            )
        self._wait_ready()
        self.ns.ip("link", "set", "dev", self.iface, "address", KERNEL_MAC)
        self.ns.ip("addr", "add", f"{KERNEL_ADDR}/{PREFIX_LEN}", "dev", self.iface)
        self.ns.ip("link", "set", "dev", self.iface, "up")
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while READY_LINE not in self.stdout():
            if self.proc.poll() is not None:
                pytest.fail(f"mxgate-dp exited with {self.proc.returncode} before "
                            f"'{READY_LINE}'\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no '{READY_LINE}' within {READY_TIMEOUT_S} s\n{self.logs()}")
            time.sleep(0.05)
        if not self.ns.has_link(self.iface):
            pytest.fail(f"ready, but no tap {self.iface} in namespace {self.name}\n{self.logs()}")

    def terminate(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM to our PID and wait; returns (exit status, seconds it took)."""
        if self.proc is None:
            return None, 0.0
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.hang_report()  # where it is stuck, for the logs, before SIGKILL
                self.proc.kill()
                self.proc.wait(timeout=10)
            took = time.monotonic() - t0
        else:
            took = 0.0
        return self.proc.returncode, took

    def hang_report(self):
        """Every thread's stack of our mxgate-dp (gdb -batch), appended to its stderr file."""
        if shutil.which("gdb") is None:
            return
        try:
            r = subprocess.run(["gdb", "-batch", "-p", str(self.proc.pid),
                                "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=30)
            out = r.stdout + r.stderr
        except subprocess.TimeoutExpired:
            out = "gdb did not finish within 30 s\n"
        with open(self.stderr_path, "a") as f:
            f.write("\n--- mxgate-dp did not stop on SIGTERM: its threads ---\n" + out)

    def teardown(self):
        """Stops the process, cleans up, and returns a list of problems found."""
        problems = []
        if self._tel is not None:
            self._tel.close()
            self._tel = None
        if self.proc is not None:
            if self.proc.poll() is not None and not self.signalled:
                problems.append(f"mxgate-dp died during the test: exit {self.proc.returncode}")
            elif not self.signalled:
                rc, took = self.terminate()
                if rc != 0:
                    problems.append(f"mxgate-dp exited with {rc} on SIGTERM (after {took:.1f} s)")
            report = sanitizer_report(self.stderr())
            if report:
                problems.append(f"sanitizer report from mxgate-dp:\n{report}")
        if self.ns is not None:
            self.ns.delete()
        # --in-memory leaves no shared files, but EAL may still make the runtime dir.
        shutil.rmtree(os.path.join(RUNTIME_DIR, self.file_prefix), ignore_errors=True)
        return problems

    # output

    def stdout(self):
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def logs(self):
        return (f"--- mxgate-dp {self.name} stdout ---\n{self.stdout()}"
                f"--- mxgate-dp {self.name} stderr ---\n{self.stderr()}")

    # telemetry

    @property
    def tel(self):
        if self._tel is None:
            self._tel = Telemetry(self.file_prefix)
        return self._tel

    def cmd(self, command):
        return self.tel.cmd(command)

    def stats(self, worker="total"):
        # one row per request: /mxgate/stats,N or ,total always fits DPDK's 16 KiB reply
        return self.tel.stats_row(worker)

    def counter(self, name, worker="total"):
        return self.stats(worker)[name]

    def port(self, n=0):
        return self.cmd("/mxgate/ports")[f"port{n}"]

    def mac(self):
        return self.port()["mac"].lower()

    def wait_counter(self, name, at_least, timeout=3.0, worker="total"):
        """Polls until counter NAME reaches AT_LEAST; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.counter(name, worker)
            if value >= at_least or time.monotonic() > deadline:
                return value
            time.sleep(0.02)

    # the kernel's side

    def kernel_mac(self):
        return self.ns.link_mac(self.iface)

    def netns(self):
        """Context manager: the block runs in the test's namespace (sockets stay there)."""
        return in_netns(self.name)


# --- fixtures -------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for dp in getattr(item, "_mxgate_dps", []):
            rep.sections.append((f"mxgate-dp {dp.name} stdout", dp.stdout()))
            rep.sections.append((f"mxgate-dp {dp.name} stderr", dp.stderr()))


@pytest.fixture
def start_dataplane(request, tmp_path):
    """Returns start(worker_cores=(1,), tcp=None, extra="") -> a running Dataplane (TCP: a
    dict of keys under dataplane.tcp; EXTRA: top-level YAML); all are stopped after the test."""
    started = []
    request.node._mxgate_dps = started

    def start(worker_cores=(1,), tcp=None, extra=""):
        dp = Dataplane(tmp_path, worker_cores, tcp, extra)
        started.append(dp)
        return dp.start()

    yield start

    problems = []
    for dp in started:
        found = dp.teardown()
        if found:
            problems += found
            problems.append(dp.logs())
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def dp(start_dataplane):
    """A fresh dataplane with one worker, its tap up and addressed on the kernel's side."""
    return start_dataplane()
