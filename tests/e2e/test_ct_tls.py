# SPDX-License-Identifier: BSD-3-Clause
"""Cut-through to next hops over STARTTLS (RFC 3207, client side), by the route's
`tls:` policy, against an aiosmtpd next hop (test_tls.TlsHop) with a certificate from
the test CA, a self-signed ("rogue") one, TLS 1.0/1.1 only ("broken"), or no
STARTTLS at all ("plain"):

- encrypt: the message goes over TLS verified against tls.ca_file and tls_name, and
  the client gets the hop's own 250; a certificate that does not verify, or no
  STARTTLS, is 451 4.7.x to the client and nothing reaches the hop;
- may: a hop whose handshake fails gets the message in the clear, on a new
  connection, without the client seeing anything of it (counted);
- kept connections stay TLS (one handshake for two client sessions) and serve
  only a hop whose TLS policy they were set up under, across a reload."""

import smtplib
import time

import pytest

from conftest import DP_ADDR, KERNEL_ADDR
from test_relay import HOP_A, HOP_PORT, NextHop
from test_tls import HOP_NAME, TlsHop, certs, hop_certs, tls_section  # noqa: F401

netns = pytest.mark.netns

RCPT = "someone@elsewhere.example"  # routed to the smarthost: the TLS hop


def ct_tls_config(certs, policy, tls_name=HOP_NAME, relay_extra=""):
    name = f", tls_name: {tls_name}" if tls_name else ""
    return tls_section(certs) + f"""\
  ca_file: {certs}/ca.pem
listeners:
  - name: mx
    port: 25
    ack: cut-through
    hostname: mx.example.com
    tls: none
policy:
  relay_domains: [example.com]
  relay_networks: [198.51.100.0/24]
routes:
  smarthost:
    - {{address: {KERNEL_ADDR}, port: {HOP_PORT}, tls: {policy}{name}}}
relay:
  helo_name: mx.example.com
  connect_timeout_s: 3
{relay_extra}"""


def session(dp):
    with dp.netns():
        smtp = smtplib.SMTP(DP_ADDR, 25, timeout=20)
    smtp.ehlo("client.example.org")
    return smtp


def send(dp, body, rcpt=RCPT):
    """One transaction on a new session: (RCPT's reply, the final reply or None)."""
    smtp = session(dp)
    code, text = smtp.mail("sender@example.org")
    assert code == 250, (code, text)
    rcpt_reply = smtp.rcpt(rcpt)
    final = smtp.data(body) if rcpt_reply[0] == 250 else None
    smtp.quit()
    return rcpt_reply, final


@pytest.fixture
def tls_hops():
    started = []
    yield started
    for h in started:
        h.stop()


@netns
def test_encrypt_delivers_over_verified_starttls_and_mirrors_the_hops_250(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: ct over tls\r\n\r\nsecret through\r\n")
    assert rcpt[0] == 250, rcpt
    assert final[0] == 250 and b"Ok: kept" in final[1], final  # the hop's own words
    got = hop.wait(1)
    assert len(got) == 1, dp.stdout()[-2000:]
    assert got[0]["tls"], "the hop took it under TLS"
    assert "secret through" in got[0]["data"]
    assert dp.wait_counter("smtp_ct_tls_ok", 1) == 1
    assert dp.counter("smtp_ct_starttls") == 1
    assert dp.wait_counter("tls_handshakes_client", 1) == 1  # synced every 100 ms
    assert dp.counter("smtp_ct_tls_failed") == 0
    assert dp.counter("smtp_ct_messages_accepted") == 1


@netns
def test_encrypt_with_a_certificate_that_does_not_verify_is_451_and_the_hop_gets_nothing(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "rogue.pem", hop_certs / "rogue.key")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: not to a stranger\r\n\r\nkeep me\r\n")
    assert rcpt[0] == 451 and rcpt[1].startswith(b"4.7.5"), rcpt
    assert b"TLS handshake failed" in rcpt[1], rcpt
    assert final is None
    assert dp.wait_counter("tls_fail_verify", 1) == 1
    assert dp.counter("smtp_ct_tls_failed") == 1
    assert dp.counter("smtp_ct_tls_fallback") == 0
    assert dp.counter("smtp_ct_unreachable") == 1
    assert hop.messages() == []


@netns
def test_encrypt_hop_whose_certificate_fails_gives_way_to_the_routes_next_hop(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    """A verification failure fails the hop like a refused connection: the route's
    next hop (priority 20, in the clear by its own policy) takes the message."""
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt").replace(
        f"tls_name: {HOP_NAME}}}",
        f"tls_name: {HOP_NAME}}}\n    - {{address: {HOP_A}, port: {HOP_PORT}, priority: 20}}"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "rogue.pem", hop_certs / "rogue.key")
    tls_hops.append(hop)
    b = NextHop(dp, HOP_A, HOP_PORT, tmp_path / "b", name="hop-b")
    tls_hops.append(b)
    rcpt, final = send(dp, b"Subject: second hop\r\n\r\nvia b\r\n")
    assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
    assert len(b.wait(1)) == 1
    assert hop.messages() == []
    assert dp.wait_counter("tls_fail_verify", 1) == 1
    assert dp.counter("smtp_ct_tls_failed") == 1
    assert dp.counter("smtp_ct_hop_failures") == 1
    assert dp.counter("smtp_ct_connects") == 2


@netns
def test_encrypt_to_a_hop_without_starttls_is_451_4_7_4_never_clear_text(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    """RFC 3207 §4: a client that requires TLS does not send mail in the clear."""
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="plain")
    tls_hops.append(hop)
    smtp = session(dp)
    smtp.mail("sender@example.org")
    code, text = smtp.rcpt(RCPT)
    assert code == 451 and text.startswith(b"4.7.4"), (code, text)
    assert b"TLS is required, but was not offered" in text
    # a later RCPT of the transaction hears the same, without another try
    code2, text2 = smtp.rcpt("other@elsewhere.example")
    assert (code2, text2) == (code, text)
    smtp.quit()
    assert dp.counter("smtp_ct_tls_not_offered") == 1
    assert dp.counter("smtp_ct_starttls") == 0
    assert dp.counter("smtp_ct_connects") == 1
    assert hop.messages() == []


@netns
def test_may_falls_back_to_a_new_clear_connection_when_the_handshake_fails(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    """The hop offers STARTTLS but speaks only TLS 1.0/1.1: our handshake fails, the
    connection is closed and a new one carries the message in the clear; the client
    sees only the hop's 250."""
    dp = start_dataplane(extra=ct_tls_config(certs, "may"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="broken")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: may, broken TLS\r\n\r\nin the clear then\r\n")
    assert rcpt[0] == 250, rcpt
    assert final[0] == 250 and b"Ok: kept" in final[1], final
    got = hop.wait(1)
    assert len(got) == 1, dp.stdout()[-2000:]
    assert not got[0]["tls"], "delivered in the clear after the failed handshake"
    assert "in the clear then" in got[0]["data"]
    assert dp.counter("smtp_ct_starttls") == 1
    assert dp.counter("smtp_ct_tls_failed") == 1
    assert dp.counter("smtp_ct_tls_fallback") == 1
    assert dp.counter("smtp_ct_tls_ok") == 0
    assert dp.counter("smtp_ct_connects") == 2, "the failed one, then one in the clear"
    assert dp.counter("tls_handshakes_client") == 0


@netns
def test_may_uses_starttls_when_offered_without_verifying(start_dataplane, certs, hop_certs,
                                                          tmp_path, tls_hops):
    dp = start_dataplane(extra=ct_tls_config(certs, "may"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "rogue.pem", hop_certs / "rogue.key")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: may\r\n\r\nopportunistic\r\n")
    assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
    got = hop.wait(1)
    assert len(got) == 1 and got[0]["tls"]
    assert dp.counter("tls_fail_verify") == 0
    assert dp.counter("smtp_ct_tls_ok") == 1


@netns
def test_a_kept_connection_stays_tls_one_handshake_for_two_sessions(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key")
    tls_hops.append(hop)
    big = b"Subject: big\r\n\r\n" + (b"y" * 990 + b"\r\n") * 300  # many TLS records
    for i, body in enumerate((b"Subject: one\r\n\r\nfirst\r\n", big)):
        rcpt, final = send(dp, body)
        assert rcpt[0] == 250 and final[0] == 250, (i, rcpt, final)
    got = hop.wait(2)
    assert len(got) == 2 and all(m["tls"] for m in got), got
    assert got[1]["data"].count("y" * 990) == 300
    assert dp.wait_counter("tls_handshakes_client", 1) == 1, "one handshake for both"
    assert dp.counter("smtp_ct_connects") == 1
    assert dp.counter("smtp_ct_pool_reused") == 1
    assert dp.counter("smtp_ct_starttls") == 1


@netns
def test_a_clear_kept_connection_never_serves_a_hop_a_reload_made_encrypt(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    dp = start_dataplane(extra=ct_tls_config(certs, "none"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key",
                 mode="offer")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: clear\r\n\r\nnone\r\n")
    assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
    assert dp.wait_counter("smtp_ct_pool_kept", 1) == 1, "the clear connection is kept"
    text = dp.config.read_text()
    dp.config.write_text(text.replace("tls: none, tls_name", "tls: encrypt, tls_name"))
    r = dp.cmd("/mxgate/reload")
    assert "error" not in str(r), r
    rcpt, final = send(dp, b"Subject: now encrypted\r\n\r\nencrypt\r\n")
    assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
    got = hop.wait(2)
    assert [m["tls"] for m in got] == [False, True], got
    assert dp.counter("smtp_ct_pool_reused") == 0, "the clear one was not taken"
    assert dp.counter("smtp_ct_connects") == 2
    assert dp.counter("smtp_ct_tls_ok") == 1


# --- a next hop that misbehaves around STARTTLS -------------------------------------------

RAW_HOP = r'''
import asyncio, json, os, signal, sys

addr, port, folder, mode = sys.argv[1:5]
# "inject": a reply in the clear right behind the 220 to STARTTLS (RFC 3207 §5,
# CVE-2011-0411 turned round); "stall": the 220, then never a ServerHello;
# "refuse": 454 to STARTTLS (RFC 3207 §4), then on in the clear.
# Without STARTTLS it takes mail in the clear.
n = [0]


def log(name, line):
    with open(os.path.join(folder, name), "a") as f:
        f.write(line + "\n")


async def conn(reader, writer):
    log("connections.log", "connected")
    writer.write(b"220 raw.test ESMTP\r\n")
    await writer.drain()
    rcpts = []
    while True:
        line = await reader.readline()
        if not line:
            return
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-raw.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
        elif verb == b"STAR" and mode == "refuse":
            log("starttls.log", "refused")
            writer.write(b"454 4.7.0 TLS not available due to temporary reason\r\n")
        elif verb == b"STAR":
            if mode == "inject":
                writer.write(b"220 2.0.0 Ready to start TLS\r\n250-raw.test\r\n250 8BITMIME\r\n")
            else:
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
            await writer.drain()
            while await reader.read(4096):  # the ClientHello, never answered
                pass
            return
        elif verb == b"MAIL":
            log("mail.log", line.decode("latin-1").strip())
            writer.write(b"250 2.1.0 Ok\r\n")
        elif verb == b"RCPT":
            rcpts.append(line.decode("latin-1").strip())
            writer.write(b"250 2.1.5 Ok\r\n")
        elif verb == b"DATA":
            writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            await writer.drain()
            data = b""
            while True:
                d = await reader.readline()
                if not d:
                    return
                if d == b".\r\n":
                    break
                data += d
            n[0] += 1
            with open(os.path.join(folder, f"{n[0]}.json"), "w") as f:
                json.dump({"tls": False, "rcpt_tos": rcpts, "data": data.decode("latin-1")}, f)
            rcpts = []
            writer.write(b"250 2.0.0 Ok: kept raw\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            writer.close()
            return
        else:
            writer.write(b"250 2.0.0 Ok\r\n")
        await writer.drain()


async def main():
    server = await asyncio.start_server(conn, addr, int(port), reuse_address=True)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


asyncio.run(main())
'''


class RawTlsHop(TlsHop):
    """A bare next hop on KERNEL_ADDR:HOP_PORT that offers STARTTLS and then misbehaves."""

    def __init__(self, dp, folder, mode):
        import subprocess
        import sys
        self.dir = folder
        folder.mkdir()
        script = folder.parent / "raw_tls_hop.py"
        script.write_text(RAW_HOP)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", dp.name, sys.executable, str(script), KERNEL_ADDR,
             str(HOP_PORT), str(folder), mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"raw hop did not start: {line!r} {self.proc.stderr.read()}"


@netns
def test_plaintext_injected_after_the_starttls_220_is_never_taken_for_a_reply(
        start_dataplane, certs, tmp_path, tls_hops):
    """The hop answers STARTTLS with 220 and, in the same write, an EHLO reply in the
    clear: that is not read as the hop's word (RFC 3207 §5); under encrypt the client
    hears 451 4.7.5 and the hop never sees MAIL."""
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = RawTlsHop(dp, tmp_path / "hop", "inject")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: injected\r\n\r\nx\r\n")
    assert rcpt[0] == 451 and rcpt[1].startswith(b"4.7.5"), rcpt
    assert final is None
    assert dp.counter("smtp_ct_starttls") == 1
    assert dp.counter("smtp_ct_tls_failed") == 1
    assert dp.counter("smtp_ct_tls_ok") == 0
    assert not (tmp_path / "hop" / "mail.log").exists(), "no MAIL went to it"
    time.sleep(0.3)  # tls_* are synced every 100 ms
    # caught before TLS read anything: the injected octets were never given to TLS
    assert dp.counter("tls_fail_protocol") == 0


@netns
def test_may_whose_handshake_stalls_goes_on_in_the_clear_after_the_handshake_timeout(
        start_dataplane, certs, tmp_path, tls_hops):
    """No ServerHello ever comes: after tls.handshake_timeout_ms the connection is
    dropped and a new one in the clear carries the message; the client gets its 250."""
    dp = start_dataplane(extra=ct_tls_config(certs, "may"))
    hop = RawTlsHop(dp, tmp_path / "hop", "stall")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: stalled TLS\r\n\r\nclear after all\r\n")
    assert rcpt[0] == 250, rcpt
    assert final[0] == 250 and b"Ok: kept raw" in final[1], final
    got = hop.wait(1)
    assert len(got) == 1 and "clear after all" in got[0]["data"]
    assert dp.wait_counter("tls_fail_timeout", 1) == 1
    assert dp.counter("smtp_ct_tls_fallback") == 1
    assert dp.counter("smtp_ct_connects") == 2
    assert (tmp_path / "hop" / "connections.log").read_text().count("connected") == 2


@netns
@pytest.mark.parametrize("policy", ["may", "encrypt"])
def test_a_refused_starttls_goes_on_in_the_clear_under_may_only(
        start_dataplane, certs, tmp_path, tls_hops, policy):
    """454 to STARTTLS: "may" sends MAIL on the same connection in the clear (RFC 3207 §4
    leaves it to the client), "encrypt" does not use the hop: 451 4.7.5."""
    dp = start_dataplane(extra=ct_tls_config(certs, policy))
    hop = RawTlsHop(dp, tmp_path / "hop", "refuse")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: refused\r\n\r\nstarttls said no\r\n")
    assert (tmp_path / "hop" / "starttls.log").read_text() == "refused\n"
    assert dp.counter("smtp_ct_tls_failed") == 1
    assert dp.counter("smtp_ct_connects") == 1
    if policy == "may":
        assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
        assert len(hop.wait(1)) == 1
        assert dp.counter("smtp_ct_tls_fallback") == 1
    else:
        assert rcpt[0] == 451 and rcpt[1].startswith(b"4.7.5"), rcpt
        assert not (tmp_path / "hop" / "mail.log").exists()
        assert hop.messages() == []
        assert dp.counter("smtp_ct_tls_fallback") == 0


@netns
def test_a_kept_verified_connection_never_serves_a_hop_a_reload_gave_another_name(
        start_dataplane, certs, hop_certs, tmp_path, tls_hops):
    """Verified for hop.example.net and kept; the reload says the hop must be
    other.example.net: the kept connection proves nothing about that name, so a new
    one is made -- and fails verification (the certificate names hop.example.net)."""
    dp = start_dataplane(extra=ct_tls_config(certs, "encrypt"))
    hop = TlsHop(dp, tmp_path / "hop", hop_certs / "hop.pem", hop_certs / "hop.key")
    tls_hops.append(hop)
    rcpt, final = send(dp, b"Subject: first\r\n\r\nverified\r\n")
    assert rcpt[0] == 250 and final[0] == 250, (rcpt, final)
    assert dp.wait_counter("smtp_ct_pool_kept", 1) == 1
    text = dp.config.read_text()
    dp.config.write_text(text.replace(f"tls_name: {HOP_NAME}", "tls_name: other.example.net"))
    r = dp.cmd("/mxgate/reload")
    assert "error" not in str(r), r
    rcpt, final = send(dp, b"Subject: second\r\n\r\nnot to the old name\r\n")
    assert rcpt[0] == 451 and rcpt[1].startswith(b"4.7.5"), rcpt
    assert dp.counter("smtp_ct_pool_reused") == 0
    assert dp.counter("smtp_ct_connects") == 2
    assert dp.wait_counter("tls_fail_verify", 1) == 1
    assert len(hop.messages()) == 1
