# SPDX-License-Identifier: BSD-3-Clause
"""A next hop for relay tests: an aiosmtpd server run as its own process
(inside the test's namespace, through `ip netns exec`) that writes every
message it accepts to a folder, one file per message, and answers as told:

    nexthop.py --listen 198.51.100.1:2525 --dir DIR [--tempfail-until T]
               [--reject-rcpt ADDR]... [--name NAME]

--tempfail-until T: every transaction gets 451 4.3.0 at MAIL until the
    unix time T (a next hop that is down for a while, then recovers).
--reject-rcpt ADDR: RCPT TO ADDR gets 550 5.1.1.
--data-delay S: the reply to the end of data comes S seconds late (a slow next hop).
--reject-data: the end of data gets 554 5.7.1 (nothing is written).
--drop-after-mail: the first RCPT of a connection resets it (no reply): a next
    hop lost mid-transaction, after MAIL.
--rcpt-421: every RCPT gets 421 4.3.2 (the next hop closing mid-transaction).
--drop-reused: a connection's second MAIL resets it (no reply): a kept
    connection that died while it was idle.
--pipelining: offer PIPELINING (RFC 2920) in the EHLO reply; each message file
    then says whether its first RCPT was already in the input when MAIL was
    handled ("rcpt_with_mail": sent as one group, without waiting for MAIL's 250).
--log-reads: each message file also lists the connection's reads ("reads": what
    each socket read delivered, latin-1, the first 4096 octets of each) since the
    previous message's end of data: a test sees which commands came as one write.
--reject-mail-from ADDR: MAIL FROM ADDR gets 550 5.7.1 (its pipelined RCPTs then
    get aiosmtpd's 503 5.5.1).
--group-replies: the replies to a pipelined group are written together, once
    the input holds no further whole command (as Postfix flushes its replies,
    RFC 2920 §3.2), so they reach the client in one segment: a refused MAIL's
    550 arrives together with its RCPTs' replies.
--offer-auth: offer AUTH (RFC 4954) in the EHLO reply and take MAIL's AUTH=
    parameter (without it, aiosmtpd refuses AUTH= with 555 like any unknown
    parameter); each message file says what AUTH= carried, as sent ("mail_auth",
    null when MAIL had none). The hop never asks anyone to authenticate.
--stall-content: not aiosmtpd but a bare server that answers the greeting,
    EHLO (PIPELINING), MAIL, RCPT and DATA (354), then never reads again, with
    a small receive buffer: its TCP window shuts and stays shut.

Every message file also names the connection that carried it ("peer": the
client's address:port), so a test counts the connections a relay used. The
server appends one line per connection it accepted to DIR/connections.log.

Each file is JSON: {"mail_from", "rcpt_tos", "data" (latin-1 text),
"sha256" of the content without our first Received: header}. The server
prints "ready" once it listens and stops on SIGTERM."""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class HopSMTP(SMTP):
    """aiosmtpd's server, keeping what each read of the socket delivered (--log-reads)
    and holding back replies while pipelined commands wait (--group-replies)."""

    mx_log_reads = False
    mx_group = False
    mx_offer_auth = False

    async def smtp_MAIL(self, arg):
        # RFC 4954 §5: AUTH=xtext or AUTH=<>, kept as sent; aiosmtpd knows no AUTH=
        self.session.mx_auth = None
        if self.mx_offer_auth and arg:
            words = arg.split(" ")
            for w in words[1:]:
                if w.upper().startswith("AUTH="):
                    self.session.mx_auth = w[5:]
            arg = " ".join([words[0]] + [w for w in words[1:]
                                         if not w.upper().startswith("AUTH=")])
        return await super().smtp_MAIL(arg)

    def data_received(self, data):
        if self.mx_log_reads:
            self.mx_reads = getattr(self, "mx_reads", [])
            self.mx_reads.append(bytes(data[:4096]).decode("latin-1"))
        super().data_received(data)

    async def push(self, status):
        if not self.mx_group:
            return await super().push(status)
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        self.mx_out = getattr(self, "mx_out", b"") + status + b"\r\n"
        if b"\n" in bytes(self._reader._buffer):
            return  # another command of the group is read: its reply goes along
        out, self.mx_out = self.mx_out, b""
        self._writer.write(out)
        await self._writer.drain()


class HopController(Controller):
    def __init__(self, handler, log_reads, group, offer_auth=False, **kw):
        self.mx_log_reads, self.mx_group, self.mx_offer_auth = log_reads, group, offer_auth
        super().__init__(handler, **kw)

    def factory(self):
        smtp = HopSMTP(self.handler, **self.SMTP_kwargs)
        smtp.mx_log_reads, smtp.mx_group = self.mx_log_reads, self.mx_group
        smtp.mx_offer_auth = self.mx_offer_auth
        return smtp


def content_hash(data: bytes) -> str:
    """sha256 of DATA without its first header field if that is a Received: (ours)."""
    if data[:9].lower() == b"received:":
        end = 0
        while True:  # the field ends at a CRLF not followed by folding white space
            end = data.index(b"\r\n", end) + 2
            if data[end:end + 1] not in (b" ", b"\t"):
                break
        data = data[end:]
    return hashlib.sha256(data).hexdigest()


class Handler:
    def __init__(self, args):
        self.args = args
        self.n = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        session.mails = getattr(session, "mails", 0) + 1
        # what the client sent along with MAIL, not yet read: a pipelined group
        session.rcpt_with_mail = b"RCPT" in bytes(server._reader._buffer).upper()
        if self.args.drop_reused and session.mails > 1:
            server.transport.abort()
            return "250 OK"
        if time.time() < self.args.tempfail_until:
            return "451 4.3.0 Try again later (test next hop)"
        if address.lower() in self.args.reject_mail_from:
            return f"550 5.7.1 <{address}>: Sender address rejected: Access denied"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_HELO(self, server, session, envelope, hostname):
        self.new_conn(session)
        session.host_name = hostname
        return "250 {}".format(server.hostname)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.new_conn(session)
        session.host_name = hostname
        if self.args.pipelining:
            responses.insert(1, "250-PIPELINING")
        if self.args.offer_auth:
            responses.insert(1, "250-AUTH PLAIN LOGIN")
        return responses

    def new_conn(self, session):  # one line per connection, at its (first) EHLO
        if getattr(session, "counted", False):
            return
        session.counted = True
        with open(os.path.join(self.args.dir, "connections.log"), "a") as f:
            f.write(f"{session.peer[0]}:{session.peer[1]}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.drop_after_mail:
            server.transport.abort()  # a reset: the MAIL was answered, this RCPT never is
            return "250 OK"
        if self.args.rcpt_421:
            return "421 4.3.2 Service shutting down (test next hop)"
        if address.lower() in self.args.reject_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if self.args.data_delay:
            await asyncio.sleep(self.args.data_delay)
        if self.args.reject_data:
            return "554 5.7.1 Message refused by the test next hop: policy"
        self.n += 1
        reads = getattr(server, "mx_reads", None)
        server.mx_reads = []
        name = os.path.join(self.args.dir, f"{os.getpid()}-{self.n:07d}.json")
        with open(name + ".tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "mail_options": envelope.mail_options,
                       "rcpt_options": envelope.rcpt_options,
                       "data": data.decode("latin-1"), "sha256": content_hash(data),
                       "next_hop": self.args.name,
                       "peer": f"{session.peer[0]}:{session.peer[1]}",
                       "rcpt_with_mail": getattr(session, "rcpt_with_mail", None),
                       "mail_auth": getattr(session, "mx_auth", None),
                       "reads": reads}, f)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 Ok: stored"


async def stall_conn(reader, writer):
    """Speaks SMTP up to DATA's 354, then reads nothing more: the window shuts."""
    writer.write(b"220 stall.test ESMTP\r\n")
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            return
        verb = line[:4].upper()
        if verb == b"EHLO":
            writer.write(b"250-stall.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            await asyncio.sleep(3600)  # never read the content
            return
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            writer.close()
            return
        else:
            writer.write(b"250 2.0.0 Ok\r\n")
        await writer.drain()


def stall_server(host, port):
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # a small fixed buffer (inherited by accepted sockets): no autotuning to megabytes
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((host, port))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(stall_conn, sock=sock))
    print("ready", flush=True)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        loop.run_until_complete(asyncio.sleep(0.1))
    server.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--tempfail-until", type=float, default=0.0)
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--name", default="nexthop")
    p.add_argument("--data-delay", type=float, default=0.0)
    p.add_argument("--reject-data", action="store_true")
    p.add_argument("--drop-after-mail", action="store_true")
    p.add_argument("--rcpt-421", action="store_true")
    p.add_argument("--drop-reused", action="store_true")
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--stall-content", action="store_true")
    p.add_argument("--log-reads", action="store_true")
    p.add_argument("--reject-mail-from", action="append", default=[])
    p.add_argument("--group-replies", action="store_true")
    p.add_argument("--offer-auth", action="store_true")
    args = p.parse_args()
    args.reject_rcpt = {a.lower() for a in args.reject_rcpt}
    args.reject_mail_from = {a.lower() for a in args.reject_mail_from}
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.dir, exist_ok=True)
    if args.stall_content:
        return stall_server(host, int(port))

    ctl = HopController(
        Handler(args), args.log_reads, args.group_replies, offer_auth=args.offer_auth, hostname=host, port=int(port), server_hostname=args.name,
        enable_SMTPUTF8=True, data_size_limit=64 << 20, decode_data=False)
    ctl.start()
    print("ready", flush=True)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    while not stop[0]:
        time.sleep(0.1)
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
