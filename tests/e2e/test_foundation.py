# SPDX-License-Identifier: BSD-3-Clause
"""The foundation as an operator meets it: mxgate-dp on a tap answers ARP and
ping, refuses closed TCP and UDP ports, stops cleanly, refuses a bad config,
counts every malformed packet it drops, and keeps each flow on one worker."""

import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR, MXGATE_DP, RUNTIME_DIR, SANITIZED_ENV, TOP, Netns
from conftest import config_text, run, sanitizer_report

netns = pytest.mark.netns


def ping(dp, *args, timeout=40):
    """Kernel ping from the test's namespace; returns (received, transmitted, output)."""
    out = dp.ns.exec("ping", *args, DP_ADDR, check=False, timeout=timeout).stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, f"no ping summary in:\n{out}"
    return int(m.group(2)), int(m.group(1)), out


# --- ARP and ICMP echo ------------------------------------------------------


@netns
def test_kernel_ping_gets_every_reply(dp):
    received, sent, out = ping(dp, "-c", "5", "-i", "0.2", "-W", "2")
    assert (sent, received) == (5, 5), out
    assert dp.wait_counter("icmp_echo_replies_sent", 5) >= 5


@netns
def test_flood_ping_loses_nothing(dp):
    received, sent, out = ping(dp, "-f", "-c", "1000", "-w", "30")
    assert sent == 1000 and received == 1000, out
    assert " 0% packet loss" in out, out


@netns
def test_kernel_learns_the_dataplane_mac_from_arp(dp):
    received, _, out = ping(dp, "-c", "1", "-W", "2")
    assert received == 1, out
    neigh = dp.ns.ip("neigh", "show", DP_ADDR, "dev", dp.iface).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", neigh)
    assert m, f"no ARP entry for {DP_ADDR}: {neigh!r}"
    assert m.group(1) == dp.mac()


@netns
def test_dataplane_resolves_the_kernel_mac_to_ping_it(dp):
    result = dp.cmd(f"/mxgate/ping,{KERNEL_ADDR},3")
    assert result["dst"] == KERNEL_ADDR
    assert (result["sent"], result["received"]) == (3, 3), result
    assert len(result["rtt_us"]) == 3, result
    assert dp.counter("arp_requests_sent") >= 1
    learned = arp_entries(dp.cmd("/mxgate/arp"))
    assert learned.get(KERNEL_ADDR) == dp.kernel_mac(), learned


def arp_entries(reply):
    """{ip: mac} from /mxgate/arp: {"worker0": ["IP MAC ...", ...], ...} (DPDK 22.11
    refuses dict keys with dots, so entries are strings)."""
    return {ip: mac.lower() for table in reply.values()
            for ip, mac, *_ in (entry.split() for entry in table)}


# --- closed ports -------------------------------------------------------------


@netns
def test_tcp_connect_to_closed_port_is_refused_at_once(dp):
    with dp.netns():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with s:
        s.settimeout(5)
        t0 = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            s.connect((DP_ADDR, 25))
        took = time.monotonic() - t0
    assert took < 0.5, f"refused only after {took:.3f} s"
    assert dp.wait_counter("tcp_rst_sent", 1) >= 1


@netns
def test_udp_to_closed_port_gets_port_unreachable(dp):
    with dp.netns():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.settimeout(2)
        s.connect((DP_ADDR, 9))
        s.send(b"anyone there?")
        with pytest.raises(ConnectionRefusedError):
            s.recv(512)
    assert dp.wait_counter("icmp_unreach_sent", 1) >= 1


# --- lifecycle and config -------------------------------------------------------


@netns
def test_sigterm_stops_cleanly_and_removes_the_tap(dp):
    rc, took = dp.terminate(timeout=5)
    assert rc == 0, f"exit status {rc}\n{dp.logs()}"
    assert took < 2.0, f"took {took:.2f} s to stop"
    deadline = time.monotonic() + 1.0
    while dp.ns.has_link(dp.iface) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not dp.ns.has_link(dp.iface), f"tap {dp.iface} still there after exit"


BAD_PREFIX = f"mxtbad{os.getpid()}"


def bad_mtu_config(tmp_path):
    """A config whose only fault is mtu 70000; returns (path, line of the mtu key)."""
    path = tmp_path / "bad-mtu.yaml"
    path.write_text(config_text("mxtbad0", BAD_PREFIX, mtu=70000))
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "mtu: 70000" in text)
    return path, line


def assert_names_the_mtu(stderr, path, line):
    want = re.compile(rf"^{re.escape(str(path))}:{line}:\d+: dataplane\.ports\[0\]\.mtu: .+",
                      re.MULTILINE)
    assert want.search(stderr), f"expected '{path}:{line}:COL: dataplane.ports[0].mtu: ...' " \
                                f"in stderr:\n{stderr}"


def test_check_refuses_an_invalid_mtu_naming_file_line_and_key(tmp_path):
    path, line = bad_mtu_config(tmp_path)
    r = run([MXGATE_DP, "-c", path, "--check"], check=False, env=SANITIZED_ENV)
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stderr}"
    assert_names_the_mtu(r.stderr, path, line)
    assert not sanitizer_report(r.stderr), r.stderr


@pytest.mark.parametrize("name", ["scripts/mxgate-tap.yaml", "mxgate.yaml.example"])
def test_check_accepts_the_shipped_configs(name):
    path = TOP / name
    if not path.exists():
        pytest.skip(f"{name} is not in the tree yet")
    r = run([MXGATE_DP, "-c", path, "--check"], check=False, env=SANITIZED_ENV)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stderr}"
    assert not sanitizer_report(r.stderr), r.stderr


@netns
def test_dataplane_refuses_to_start_with_an_invalid_config(tmp_path):
    path, line = bad_mtu_config(tmp_path)
    # In a namespace of its own: if the config were wrongly accepted, its tap lands there.
    ns = Netns(f"mxtbad{os.getpid()}")
    try:
        r = ns.exec(MXGATE_DP, "-c", path, check=False, timeout=15, env=SANITIZED_ENV)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"still running 15 s after starting with mtu 70000:\n{e.stdout}\n{e.stderr}")
    finally:
        ns.delete()
        shutil.rmtree(os.path.join(RUNTIME_DIR, BAD_PREFIX), ignore_errors=True)
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert_names_the_mtu(r.stderr, path, line)
    assert "mxgate-dp: ready" not in r.stdout
    assert not sanitizer_report(r.stderr), r.stderr


# --- malformed packets ----------------------------------------------------------

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def frames(dp):
    """Builds the malformed frames from the kernel's end of the tap, with scapy."""
    from scapy.layers.inet import ICMP, IP, IPOption_Router_Alert
    from scapy.layers.l2 import ARP, Ether

    eth = Ether(dst=dp.mac(), src=dp.kernel_mac())
    # Always name the source: scapy's default would be the host's own address.
    ip = dict(src=KERNEL_ADDR, dst=DP_ADDR)
    echo = eth / IP(**ip) / ICMP(id=0x4d58, seq=1) / (b"mxgate" * 8)

    bad_sum = bytearray(bytes(echo))
    bad_sum[14 + 10] ^= 0xFF  # the IPv4 header checksum's high byte
    return {
        "bad_ipv4_checksum": bytes(bad_sum),
        "fragment": bytes(eth / IP(flags="MF", id=77, **ip) / ICMP(id=0x4d58) / (b"x" * 64)),
        "truncated_ipv4_header": bytes(echo)[: 14 + 12],
        "arp_for_another_address": bytes(
            Ether(dst="ff:ff:ff:ff:ff:ff", src=dp.kernel_mac())
            / ARP(op=1, hwsrc=dp.kernel_mac(), psrc=KERNEL_ADDR, pdst="198.51.100.77")),
        "ip_options_echo": bytes(eth / IP(options=[IPOption_Router_Alert()], **ip)
                                 / ICMP(id=0x4d58, seq=2) / b"with options"),
    }


MALFORMED = [
    pytest.param("bad_ipv4_checksum", "drop_ipv4_bad_checksum", id="bad_ipv4_checksum"),
    pytest.param("fragment", "drop_ipv4_fragment", id="fragment"),
    pytest.param("truncated_ipv4_header", "drop_ipv4_truncated", id="truncated_ipv4_header"),
    pytest.param("arp_for_another_address", "drop_arp_not_for_us", id="arp_for_another_address"),
    pytest.param("runt", "drop_eth_runt", id="runt", marks=pytest.mark.skip(
        reason="a kernel tap sends no frame shorter than an Ethernet header (AF_PACKET "
               "refuses it with EINVAL), so a runt cannot reach net_tap from the kernel")),
]


def packet_socket(dp):
    with dp.netns():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dp.iface, 0))
    s.settimeout(0.2)
    return s


def recv_frame(s, match, timeout=3.0):
    """The first frame from the dataplane on packet socket S for which MATCH(scapy
    packet) is true, or None after TIMEOUT seconds."""
    from scapy.layers.l2 import Ether

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[2] != PACKET_OUTGOING and match(Ether(data)):
            return Ether(data)
    return None


@netns
@pytest.mark.parametrize("kind,counter", MALFORMED)
def test_malformed_packet_is_dropped_and_counted(dp, kind, counter):
    before = dp.stats()[counter]
    with packet_socket(dp) as s:
        s.send(frames(dp)[kind])
    after = dp.wait_counter(counter, before + 1)
    assert after == before + 1, f"{counter} went from {before} to {after}"
    received, _, out = ping(dp, "-c", "1", "-W", "2")
    assert received == 1, f"no echo reply after the {kind} frame:\n{out}"


@netns
def test_echo_with_ip_options_is_still_answered(dp):
    from scapy.layers.inet import ICMP

    before = dp.stats()
    with packet_socket(dp) as s:
        s.send(frames(dp)["ip_options_echo"])
        reply = recv_frame(s, lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == 0x4d58)
    assert reply is not None, "no echo reply to an echo request carrying IP options"
    assert dp.counter("ipv4_options_skipped") >= before["ipv4_options_skipped"] + 1
    assert dp.counter("icmp_echo_replies_sent") >= before["icmp_echo_replies_sent"] + 1


# --- two workers ----------------------------------------------------------------

FLOWS = 32
PACKETS_PER_FLOW = 20


@netns
def test_two_workers_each_flow_is_handled_by_one_worker(start_dataplane):
    """net_tap cannot steer by RSS, so the kernel's queue choice and the dataplane's
    flow hash disagree for some flows: software steering must bring every packet of
    a flow to the one worker that owns it."""
    dp = start_dataplane(worker_cores=(0, 1))
    workers = ["worker0", "worker1"]
    received, _, out = ping(dp, "-c", "1", "-W", "2")  # ARP resolved before the flows
    assert received == 1, out

    def udp_in():
        stats = dp.tel.stats()
        return {w: stats[w]["udp_in"] for w in workers}

    owners = []
    for i in range(FLOWS):
        with dp.netns():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.bind((KERNEL_ADDR, 41000 + i))
            before = udp_in()
            for _ in range(PACKETS_PER_FLOW):
                s.sendto(b"flow %d" % i, (DP_ADDR, 9))  # closed port: nobody listens
        deadline = time.monotonic() + 3
        while True:
            after = udp_in()
            delta = {w: after[w] - before[w] for w in workers}
            if sum(delta.values()) >= PACKETS_PER_FLOW or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert sorted(delta.values()) == [0, PACKETS_PER_FLOW], \
            f"flow {i} (source port {41000 + i}) split across workers: {delta}"
        owners.append(max(delta, key=delta.get))

    assert set(owners) == set(workers), f"one worker owned all {FLOWS} flows: {owners}"
    total = dp.stats()
    assert total["steered_out"] >= 1 and total["steered_in"] >= 1, \
        f"no flow arrived on the other worker's queue: steered_out={total['steered_out']} " \
        f"steered_in={total['steered_in']}"
