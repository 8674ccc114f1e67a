# SPDX-License-Identifier: BSD-3-Clause
"""Postfix as a relay for scripts/bench (issues #5 and #8), on loopback only.

    smtp-source --> Postfix (a private instance) --> smtp-sink
                    127.0.0.1:PORT                   127.0.0.1:PORT+1 (its relayhost)

The instance is built under a temporary folder of its own: main.cf and
master.cf (`postfix -c DIR`), queue_directory and data_directory inside it,
`inet_interfaces = 127.0.0.1`, `mydestination` empty, no local delivery
(local_transport is the error transport), every message relayed to
`relayhost = [127.0.0.1]:SINK` with DNS off: nothing leaves loopback, and
neither /etc/postfix's instance nor port 25 is touched. Postfix logs only to
syslog by default and this machine has no /dev/log, so a failed start would
say nothing: the instance logs through postlogd to `maillog_file` in the
folder (Postfix 3.4+, MAILLOG_README), and every error quotes that log.

Figures, smtp-source sending all along (far more messages than the run
takes; stopped by PID after it), after a warm-up:
- messages/s: what smtp-sink received over the window (smtp-sink -c prints
  its count as it goes): messages relayed, not merely queued;
- CPU over the same window: utime+stime of the master and every process it started, live ones from
  /proc/PID/stat and the ones the master already reaped from its
  cutime+cstime, before and after: smtpd, cleanup, trivial-rewrite, qmgr,
  smtp, postlogd, anvil...; smtp-source and smtp-sink are not counted.

Postfix (every process) runs on one CPU (taskset; children inherit it),
smtp-source and smtp-sink on the other, as mxgate-dp and mxgate-gen do, and
at their priority (MXGATE_BENCH_NICE, default -20, in autogroups of their own).
Everything started here is stopped by PID and the folder is removed.
"""

import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

POSTFIX_LIBEXEC = "/usr/lib/postfix/sbin"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The priority scripts/bench gives mxgate-dp and mxgate-gen (nice, in a session and so an
# autogroup of their own), given to Postfix and its tools alike: on a busy machine the
# comparison is otherwise between a favoured mxgate and a starved Postfix.
NICE = int(os.environ.get("MXGATE_BENCH_NICE", "-20"))


def prio(args):
    """ARGS run at the benchmark's priority (popen with start_new_session, then autogroup())."""
    return ["nice", "-n", str(NICE), *args] if NICE else list(args)


def autogroup(pid):
    """Sets the nice of PID's session's autogroup, as scripts/bench does for mxgate."""
    if not NICE:
        return
    for _ in range(200):
        try:
            if int(stat_fields(pid)[3]) == pid:  # it leads its session
                with open(f"/proc/{pid}/autogroup", "w") as f:
                    f.write(str(NICE))
                return
        except (OSError, ValueError, IndexError):
            return
        time.sleep(0.01)


class BenchError(Exception):
    pass


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def children(pid):
    """Every live descendant of PID, by walking /proc once."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(stat_fields(d)[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p:
                out.append(c)
                todo.append(c)
    return out


def tree_cpu_ticks(master):
    """CPU ticks of MASTER and its processes: live ones' utime+stime, reaped ones' via cutime+cstime."""
    f = stat_fields(master)
    total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime of the master
    names = {}
    for c in children(master):
        try:
            cf = stat_fields(c)
            with open(f"/proc/{c}/comm") as fc:
                name = fc.read().strip()
        except OSError:
            continue  # exited meanwhile: the master's cutime has it once reaped
        t = int(cf[11]) + int(cf[12])
        total += t
        names[name] = names.get(name, 0) + t
    return total, names


def wait_listening(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Sink:
    """smtp-sink -c on loopback; a thread reads its running message count."""

    def __init__(self, port, cpu, backlog=1024):
        self.count = 0
        self.times = []  # (monotonic time, count) as the count moves
        self.lock = threading.Lock()
        # smtp-sink buffers its counter unless stdout is a terminal: give it a pty
        self.fd, slave = pty.openpty()
        self.p = subprocess.Popen(prio(["taskset", "-c", str(cpu), "smtp-sink", "-c", "-u",
                                        "nobody", f"127.0.0.1:{port}", str(backlog)]),
                                  stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                                  start_new_session=True)
        os.close(slave)
        autogroup(self.p.pid)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not wait_listening(port, self.p):
            self.stop()
            raise BenchError(f"smtp-sink on port {port} did not start: "
                             f"{self.p.stderr.read().decode(errors='replace')}")

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: smtp-sink is gone
                return
            if not chunk:
                return
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            for rec in done:
                m = re.search(rb"mesg=(\d+)", rec)
                if m:
                    with self.lock:
                        self.count = int(m.group(1))
                        self.times.append((time.monotonic(), self.count))

    def wait_for(self, n, timeout):
        """Monotonic time the count reached N, or None after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, c in self.times:
                    if c >= n:
                        return t
                self.times = self.times[-1:]
            if self.p.poll() is not None:
                return None
            time.sleep(0.01)
        return None

    def stop(self):
        stop_pid(self.p)
        self.t.join(timeout=2)
        os.close(self.fd)


def stop_pid(p, timeout=5):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port_pair(start):
    """Two consecutive free loopback ports from START on."""
    for port in range(start, start + 2000, 2):
        ok = True
        for q in (port, port + 1):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", q))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise BenchError(f"no two free loopback ports from {start}")


MAIN_CF = """\
# A private Postfix relay for scripts/bench: loopback only, no local delivery.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = {libexec}
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
myhostname = relay.bench.test
mydomain = bench.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_bind_address = 127.0.0.1
mydestination =
local_transport = error:5.1.1 no local delivery in the benchmark relay
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relay_domains = example.com
relayhost = [127.0.0.1]:{sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
smtputf8_enable = no
# smtp-source's 64 sessions at once, and the default process limit (100)
default_process_limit = 200
"""


def master_cf(port):
    """Debian's master.cf, chroot off, with our smtpd on 127.0.0.1:PORT and postlogd enabled."""
    out = []
    have_postlog = False
    with open("/etc/postfix/master.cf") as f:
        for line in f:
            if line.startswith("#") or not line.strip() or line[0] in " \t":
                out.append(line)
                continue
            cols = line.split()
            if len(cols) >= 8:
                if cols[0] == "smtp" and cols[1] == "inet":
                    cols[0] = f"127.0.0.1:{port}"
                if cols[0] in ("postlog",):
                    have_postlog = True
                cols[4] = "n"  # no chroot: the queue is in our folder
                line = "  ".join(cols[:8]) + (" " + " ".join(cols[8:]) if cols[8:] else "") + "\n"
            out.append(line)
    if not have_postlog:
        out.append("postlog   unix-dgram n  -       n       -       1       postlogd\n")
    return "".join(out)


class Relay:
    """The private instance: made, started, stopped and removed by PID and folder."""

    def __init__(self, port, sink_port, cpu):
        self.port, self.cpu = port, cpu
        self.dir = tempfile.mkdtemp(prefix="mxgate-bench-postfix-")
        os.chmod(self.dir, 0o755)
        self.cfg = os.path.join(self.dir, "etc")
        os.mkdir(self.cfg)
        os.makedirs(os.path.join(self.dir, "queue"))
        os.makedirs(os.path.join(self.dir, "data"))
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        with open(os.path.join(self.cfg, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(d=self.dir, libexec=POSTFIX_LIBEXEC, sink_port=sink_port))
        with open(os.path.join(self.cfg, "master.cf"), "w") as f:
            f.write(master_cf(port))
        self.master = None

    def log(self, lines=30):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def postfix(self, *args, timeout=60):
        # set-permissions, check and start talk to a terminal or the maillog only
        r = subprocess.run(prio(["taskset", "-c", str(self.cpu), "postfix", "-c", self.cfg,
                                 *args]), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def start(self):
        rc, out = self.postfix("check")
        if rc != 0:
            raise BenchError(f"postfix -c {self.cfg} check failed ({rc}): {out}\n{self.log()}")
        rc, out = self.postfix("start")
        pidfile = os.path.join(self.dir, "queue", "pid", "master.pid")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    pid = int(f.read().split()[0])
                os.kill(pid, 0)
                self.master = pid
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if self.master is None:
            raise BenchError(f"postfix -c {self.cfg} start ({rc}) left no master: {out}\n"
                             f"maillog:\n{self.log()}")
        autogroup(self.master)  # the master leads a session; its processes share it
        if not wait_listening(self.port):
            raise BenchError(f"Postfix does not listen on 127.0.0.1:{self.port}\n{self.log()}")

    def queue_empty(self):
        for q in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _root, _dirs, files in os.walk(os.path.join(self.dir, "queue", q)):
                if files:
                    return False
        return True

    def deferred(self):
        n = 0
        for _root, _dirs, files in os.walk(os.path.join(self.dir, "queue", "deferred")):
            n += len(files)
        return n

    def stop(self):
        if self.master is not None:
            procs = [self.master] + children(self.master)
            self.postfix("stop", timeout=30)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(alive(p) for p in procs):
                time.sleep(0.05)
            for p in procs:  # what did not go: by PID, ours only
                if alive(p):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            self.master = None
        shutil.rmtree(self.dir, ignore_errors=True)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_relay(name, size, per_conn, sessions, seconds, base_port, pf_cpu, client_cpu,
              warmup=1.5):
    """One scenario: a fresh instance, smtp-source sending without end, the relayed rate and
    Postfix's CPU over SECONDS after WARMUP; everything stopped and removed after."""
    port = free_port_pair(base_port)
    sink = Sink(port + 1, client_cpu)
    relay = src = None
    try:
        relay = Relay(port, port + 1, pf_cpu)
        relay.start()
        # smtp-source: more messages than the window can take, stopped by PID after it
        args = ["taskset", "-c", str(client_cpu), "smtp-source", "-s", str(sessions),
                "-m", "10000000", "-l", str(size), "-f", "gen@mxgate-gen.test",
                "-t", "alice@example.com"]
        if per_conn > 1:
            args.append("-d")
        src = subprocess.Popen(prio(args + [f"127.0.0.1:{port}"]), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
        autogroup(src.pid)
        time.sleep(warmup)
        if src.poll() is not None:
            raise BenchError(f"smtp-source exited ({src.returncode}): "
                             f"{src.stderr.read().decode(errors='replace')}\n{relay.log()}")
        load = os.getloadavg()[0]
        t0, n0 = time.monotonic(), sink.count
        ticks0, _ = tree_cpu_ticks(relay.master)
        time.sleep(seconds)
        t1, n1 = time.monotonic(), sink.count
        ticks1, by_name = tree_cpu_ticks(relay.master)
        if src.poll() is not None:
            raise BenchError(f"smtp-source exited ({src.returncode}) during the run: "
                             f"{src.stderr.read().decode(errors='replace')}\n{relay.log()}")
        relayed = n1 - n0
        if relayed <= 0:
            raise BenchError(f"Postfix relayed nothing in {seconds} s ({relay.deferred()} "
                             f"deferred)\n{relay.log()}")
        cpu_s = (ticks1 - ticks0) / CLK_TCK
        return {
            "scenario": name, "messages": relayed, "size": size, "per_connection": per_conn,
            "sessions": sessions, "seconds": t1 - t0, "msgs_per_s": relayed / (t1 - t0),
            "server_cpu_s": cpu_s, "cpu_ticks_live_by_process": by_name, "clk_tck": CLK_TCK,
            "deferred_at_end": relay.deferred(), "load_avg": load, "cpu": pf_cpu, "nice": NICE,
            "method": "messages smtp-sink received over the window, smtp-source sending "
                      "throughout; CPU: utime+stime of the master and all its processes",
        }
    finally:
        if src is not None:
            stop_pid(src)
        if relay is not None:
            relay.stop()
        sink.stop()


def main():
    if len(sys.argv) != 10 or sys.argv[1] != "relay":
        sys.exit("usage: bench_postfix.py relay OUTDIR NAME SIZE PER-CONN SESSIONS SECONDS "
                 "POSTFIX-CPU CLIENT-CPU")
    _, _, outdir, name, size, per, sess, secs, pf_cpu, cl_cpu = sys.argv
    base = 30000 + os.getpid() % 15000
    try:
        res = run_relay(name, int(size), int(per), int(sess), float(secs), base, pf_cpu, cl_cpu)
    except BenchError as e:
        sys.exit(f"bench: Postfix relay {name}: {e}")
    with open(os.path.join(outdir, f"postfix-relay-{name}.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"Postfix relay {name}: {res['msgs_per_s']:,.0f} msg/s relayed ({res['messages']} in "
          f"{res['seconds']:.1f} s), Postfix CPU {res['server_cpu_s']:.2f} s, "
          f"load average {res['load_avg']:.2f}", flush=True)


if __name__ == "__main__":
    main()
