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


def netns(ns, args):
    """ARGS run in network namespace NS (ip netns exec execs them: the PID is theirs)."""
    return ["ip", "netns", "exec", ns, *args] if ns else list(args)


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


def listens(pid, port):
    """PID's network namespace has a TCP socket listening on PORT (/proc/PID/net/tcp)."""
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    return False


def wait_listening(port, proc=None, timeout=10.0, ns_pid=None):
    """Until 127.0.0.1:PORT takes a connection, or (NS_PID) a socket of NS_PID's
    namespace listens on PORT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if ns_pid is not None:
            if listens(ns_pid, port):
                return True
            time.sleep(0.05)
            continue
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Sink:
    """smtp-sink -c on loopback; a thread reads its running message count."""

    def __init__(self, port, cpu, backlog=1024, ns=None):
        self.count = 0
        self.times = []  # (monotonic time, count) as the count moves
        self.lock = threading.Lock()
        # smtp-sink buffers its counter unless stdout is a terminal: give it a pty
        self.fd, slave = pty.openpty()
        self.p = subprocess.Popen(netns(ns, prio(["taskset", "-c", str(cpu), "smtp-sink", "-c",
                                                  "-u", "nobody", f"127.0.0.1:{port}",
                                                  str(backlog)])),
                                  stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                                  start_new_session=True)
        os.close(slave)
        autogroup(self.p.pid)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not wait_listening(port, self.p, ns_pid=self.p.pid if ns else None):
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

# With TLS (relay-tls): Postfix in a network namespace of its own, its smtpd on every
# address there (the kernel's end of mxgate-gen's tap, which appears only once the
# generator runs), STARTTLS offered with the same ECDSA P-256 certificate mxgate-dp
# has (TLS 1.2+, Postfix's defaults otherwise, as mxgate's); the relayhost leg in
# the clear on the namespace's loopback, as mxgate's store listener's is.
MAIN_CF_TLS = """\
inet_interfaces = all
mynetworks = 127.0.0.0/8, {gen_net}
smtpd_tls_security_level = may
smtpd_tls_chain_files = {key}, {cert}
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 0
"""


def master_cf(port, addr="127.0.0.1"):
    """Debian's master.cf, chroot off, with our smtpd on ADDR:PORT (ADDR None: every
    address) and postlogd enabled."""
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
                    cols[0] = f"{addr}:{port}" if addr else str(port)
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

    def __init__(self, port, sink_port, cpu, ns=None, tls=None):
        """NS: a network namespace to run in; TLS: (cert, key, generator's network)."""
        self.port, self.cpu, self.ns = port, cpu, ns
        self.dir = tempfile.mkdtemp(prefix="mxgate-bench-postfix-")
        os.chmod(self.dir, 0o755)
        self.cfg = os.path.join(self.dir, "etc")
        os.mkdir(self.cfg)
        os.makedirs(os.path.join(self.dir, "queue"))
        os.makedirs(os.path.join(self.dir, "data"))
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        with open(os.path.join(self.cfg, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(d=self.dir, libexec=POSTFIX_LIBEXEC, sink_port=sink_port))
            if tls:  # later lines win in main.cf
                f.write(MAIN_CF_TLS.format(cert=tls[0], key=tls[1], gen_net=tls[2]))
        with open(os.path.join(self.cfg, "master.cf"), "w") as f:
            f.write(master_cf(port, None if ns else "127.0.0.1"))
        self.master = None

    def log(self, lines=30):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def postfix(self, *args, timeout=60):
        # set-permissions, check and start talk to a terminal or the maillog only
        r = subprocess.run(netns(self.ns, prio(["taskset", "-c", str(self.cpu), "postfix", "-c",
                                                self.cfg, *args])),
                           capture_output=True, text=True, timeout=timeout)
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
        if not wait_listening(self.port, ns_pid=self.master if self.ns else None):
            raise BenchError(f"Postfix does not listen on port {self.port}\n{self.log()}")

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


def measure(name, size, per_conn, sessions, seconds, sink, relay, pf_cpu, check):
    """The window: smtp-sink's count and the instance's CPU over SECONDS. CHECK() raises
    when the client stopped meanwhile. Returns the scenario's figures."""
    load = os.getloadavg()[0]
    t0, n0 = time.monotonic(), sink.count
    ticks0, _ = tree_cpu_ticks(relay.master)
    time.sleep(seconds)
    t1, n1 = time.monotonic(), sink.count
    ticks1, by_name = tree_cpu_ticks(relay.master)
    check()
    relayed = n1 - n0
    if relayed <= 0:
        raise BenchError(f"Postfix relayed nothing in {seconds} s ({relay.deferred()} "
                         f"deferred)\n{relay.log()}")
    return {
        "scenario": name, "messages": relayed, "size": size, "per_connection": per_conn,
        "sessions": sessions, "seconds": t1 - t0, "msgs_per_s": relayed / (t1 - t0),
        "server_cpu_s": (ticks1 - ticks0) / CLK_TCK, "cpu_ticks_live_by_process": by_name,
        "clk_tck": CLK_TCK, "deferred_at_end": relay.deferred(), "load_avg": load,
        "cpu": pf_cpu, "nice": NICE,
    }


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
        def check():
            if src.poll() is not None:
                raise BenchError(f"smtp-source exited ({src.returncode}) during the run: "
                                 f"{src.stderr.read().decode(errors='replace')}\n{relay.log()}")

        res = measure(name, size, per_conn, sessions, seconds, sink, relay, pf_cpu, check)
        res["method"] = ("messages smtp-sink received over the window, smtp-source sending "
                         "throughout; CPU: utime+stime of the master and all its processes")
        return res
    finally:
        if src is not None:
            stop_pid(src)
        if relay is not None:
            relay.stop()
        sink.stop()


# relay-tls: mxgate-gen on a net_tap port in the namespace is the client (smtp-source has
# no TLS); the kernel's end of its tap is Postfix's address.
TLS_KERNEL_ADDR = "203.0.113.101"
TLS_GEN_ADDR = "203.0.113.102"
GEN_START_S = 6  # what the generator's run gives its start (EAL, link, first mail)

GEN_TAP_YAML = """\
# mxgate-gen for scripts/bench's Postfix-with-TLS rows: one worker on CPU {cpu},
# a net_tap port whose kernel end is Postfix's smtpd (namespace {ns}). It naps when
# idle: smtp-sink shares its CPU, and a generator polling flat out starves it.
dataplane:
  main_core: {cpu}
  worker_cores: [{cpu}]
  memory: {{mode: hugepages, in_memory: true, file_prefix: {prefix}}}
  idle_sleep_us: 20
  ports:
    - name: tap0
      device: net_tap0,iface={iface}
      addresses: [{gen_addr}/24]
"""


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise BenchError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def run_relay_tls(name, size, per_conn, sessions, seconds, base_port, pf_cpu, client_cpu,
                  gen_bin, cert, key, warmup=2.0):
    """One scenario with STARTTLS: a namespace, a fresh instance offering STARTTLS, and
    mxgate-gen --tls starttls on a tap into it for WARMUP + SECONDS; the relayed rate and
    Postfix's CPU over SECONDS. Everything stopped and removed after."""
    tag = f"{os.getpid()}"
    ns, iface = f"mxbpf{tag}"[:15], f"mxbpf{tag}"[:15]
    prefix = f"mxgate-bench-pfgen-{tag}"
    port = free_port_pair(base_port)
    ip("netns", "del", ns, check=False)  # what a killed run of this PID left
    ip("netns", "add", ns)
    sink = relay = gen = None
    cfg_dir = tempfile.mkdtemp(prefix="mxgate-bench-pfgen-")
    try:
        # The generator's tap made beforehand, with Postfix's address on the kernel's end:
        # net_tap attaches to an existing (persistent, multi-queue) tap of its name.
        ip("-n", ns, "link", "set", "dev", "lo", "up")
        ip("-n", ns, "tuntap", "add", "dev", iface, "mode", "tap", "multi_queue")
        ip("-n", ns, "addr", "add", f"{TLS_KERNEL_ADDR}/24", "dev", iface)
        ip("-n", ns, "link", "set", "dev", iface, "up")
        sink = Sink(port + 1, client_cpu, ns=ns)
        relay = Relay(port, port + 1, pf_cpu, ns=ns, tls=(cert, key, f"{TLS_GEN_ADDR}/32"))
        relay.start()
        gen_yaml = os.path.join(cfg_dir, "gen.yaml")
        with open(gen_yaml, "w") as f:
            f.write(GEN_TAP_YAML.format(cpu=client_cpu, ns=ns, prefix=prefix, iface=iface,
                                        gen_addr=TLS_GEN_ADDR))
        gen_out = os.path.join(cfg_dir, "gen.out")

        def gen_log(lines=20):
            try:
                with open(gen_out, errors="replace") as f:
                    return "".join(f.readlines()[-lines:])
            except OSError:
                return "(no output)"

        # long enough for its start, the warm-up and the window; it ends by itself, with
        # its report (handshakes, latencies), after the window
        gen_secs = int(GEN_START_S + warmup + seconds + 1.999)
        started = time.monotonic()
        with open(gen_out, "w") as out:
            gen = subprocess.Popen(
                netns(ns, prio([gen_bin, "-c", gen_yaml, "--mode", "smtp", "--dst",
                                TLS_KERNEL_ADDR, "--port", str(port), "--tls", "starttls",
                                "--size", str(size), "--per-session", str(per_conn),
                                "--concurrency", str(sessions), "--seconds", str(gen_secs),
                                "--retries", "20", "--backoff-ms", "1-500"])),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        autogroup(gen.pid)

        # the window starts once mail flows and the warm-up has passed
        if sink.wait_for(1, 30) is None:
            raise BenchError(f"no message reached smtp-sink in 30 s\n"
                             f"mxgate-gen:\n{gen_log()}\nPostfix:\n{relay.log()}")
        time.sleep(warmup)

        def check():
            if gen.poll() is not None:
                raise BenchError(f"mxgate-gen exited ({gen.returncode}) during the window:\n"
                                 f"{gen_log()}")

        res = measure(name, size, per_conn, sessions, seconds, sink, relay, pf_cpu, check)
        try:
            gen.wait(timeout=started + gen_secs + 60 - time.monotonic())
        except subprocess.TimeoutExpired:
            raise BenchError(f"mxgate-gen did not end:\n{gen_log()}")
        g = None
        with open(gen_out, errors="replace") as f:
            for line in f:
                if line.startswith("{"):
                    g = json.loads(line)
        tls = (g or {}).get("tls") or {}
        if not tls.get("handshakes") or tls.get("failures"):
            raise BenchError(f"mxgate-gen's TLS: {tls or 'no report'}\n{gen_log()}")
        res["tls"] = {"handshakes": tls["handshakes"], "versions": tls.get("versions"),
                      "ciphers": tls.get("ciphers"),
                      "what": "STARTTLS, ECDSA P-256, a full handshake per connection"}
        res["gen"] = g
        res["method"] = ("messages smtp-sink received over the window, mxgate-gen --tls "
                         "starttls on a net_tap port sending throughout; CPU: utime+stime of "
                         "the master and all its processes")
        return res
    finally:
        if gen is not None:
            stop_pid(gen)
        if relay is not None:
            relay.stop()
        if sink is not None:
            sink.stop()
        ip("netns", "del", ns, check=False)
        shutil.rmtree(cfg_dir, ignore_errors=True)
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def main():
    if len(sys.argv) == 13 and sys.argv[1] == "relay-tls":
        _, _, outdir, name, size, per, sess, secs, pf_cpu, cl_cpu, gen_bin, cert, key = sys.argv
        base = 30000 + os.getpid() % 15000
        try:
            res = run_relay_tls(name, int(size), int(per), int(sess), float(secs), base, pf_cpu,
                                cl_cpu, gen_bin, cert, key)
        except BenchError as e:
            sys.exit(f"bench: Postfix relay with TLS {name}: {e}")
        with open(os.path.join(outdir, f"postfix-relay-tls-{name}.json"), "w") as f:
            json.dump(res, f, indent=1)
        print(f"Postfix relay, STARTTLS, {name}: {res['msgs_per_s']:,.0f} msg/s relayed "
              f"({res['messages']} in {res['seconds']:.1f} s), Postfix CPU "
              f"{res['server_cpu_s']:.2f} s, load average {res['load_avg']:.2f}; "
              f"{res['tls']['handshakes']} handshakes {res['tls']['versions']}", flush=True)
        return
    if len(sys.argv) != 10 or sys.argv[1] != "relay":
        sys.exit("usage: bench_postfix.py relay OUTDIR NAME SIZE PER-CONN SESSIONS SECONDS "
                 "POSTFIX-CPU CLIENT-CPU\n"
                 "       bench_postfix.py relay-tls OUTDIR NAME SIZE PER-CONN SESSIONS SECONDS "
                 "POSTFIX-CPU CLIENT-CPU MXGATE-GEN CERT KEY")
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
