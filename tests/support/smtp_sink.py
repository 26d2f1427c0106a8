"""A real SMTP server for pqwatch's end-to-end tests: aiosmtpd on 127.0.0.1.

Each accepted message is saved as N.eml (the bytes received), with its decoded text and
HTML parts beside it (N.txt, N.html), so that tests can assert on what a mail client shows,
and the client's address and port (N.peer), so that they can count connections.

Usage: python3 smtp_sink.py PORT DIR [--reject ADDR]... [--defer ADDR]... [--delay SECONDS]
       [--starttls CERT KEY | --tls CERT KEY] [--auth USER PASSWORD] [--fault-file FILE]
Prints "ready" once it accepts connections; runs until killed.

Fault modes: while FILE exists, its one line, read afresh at every step, says how to fail:
"mail CODE", "rcpt CODE" or "data CODE" answers that step with CODE (e.g. 451, 550) for every
message; "rcpt CODE ADDR" only for ADDR; "drop" closes the connection after the whole message
has arrived but before the reply (a drop mid-DATA); "silent" never replies to the data.
"""
import asyncio
import email
import email.policy
import os
import sys
import threading
import time

import ssl
import logging
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, folder, reject, defer, delay, fault_file=None):
        self.folder = folder
        self.fault_file = fault_file
        self.reject = {a.lower() for a in reject}
        # Addresses refused once with a 4xx, as a greylisting server does, then accepted.
        self.defer = {a.lower() for a in defer}
        self.delay = delay
        self.n = 0
        self.lock = threading.Lock()

    def fault(self, step, address=None):
        """The reply the fault file asks for at this step, if any."""
        if not self.fault_file:
            return None
        try:
            with open(self.fault_file) as f:
                words = f.read().split()
        except FileNotFoundError:
            return None
        if words in (["drop"], ["silent"]):
            return words[0] if step == "data" else None
        if len(words) >= 2 and words[0] == step:
            if len(words) >= 3 and address is not None and words[2].lower() != address.lower():
                return None
            return "%s %s.0.0 Fault injected at %s" % (words[1], words[1][0], step.upper())
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.fault("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.fault("rcpt", address)
        if reply:
            return reply
        if address.lower() in self.reject:
            return "550 5.1.1 Mailbox unavailable"
        if address.lower() in self.defer:
            self.defer.discard(address.lower())
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.fault("data")
        if reply == "drop":
            server.transport.close()
            return "451 4.0.0 dropped"
        if reply == "silent":
            await asyncio.sleep(3600)
        elif reply:
            return reply
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.n += 1
            name = f"{time.time_ns()}-{self.n}"
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for kind in ("plain", "html"):
            part = msg.get_body(preferencelist=(kind,))
            if part is not None:
                ext = "txt" if kind == "plain" else "html"
                with open(os.path.join(self.folder, f"{name}.{ext}"), "w") as f:
                    f.write(part.get_content())
        # The client's address and port: one per connection, so tests can count connections.
        with open(os.path.join(self.folder, f"{name}.peer"), "w") as f:
            f.write("%s:%s" % tuple(session.peer[:2]))
        tmp = os.path.join(self.folder, f".{name}")
        with open(tmp, "wb") as f:
            f.write(raw)
        os.rename(tmp, os.path.join(self.folder, f"{name}.eml"))
        return "250 Message accepted for delivery"


def main():
    # aiosmtpd warns about AUTH over implicit TLS and a deprecated attribute it uses itself.
    warnings.simplefilter("ignore")
    # A client that gives up mid-session (an untrusted certificate, a dropped connection) is
    # what several tests do on purpose: aiosmtpd would print a traceback for each. The tests
    # assert on what pqwatch reports instead, so a passing run prints nothing.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL + 1)
    port, folder = int(sys.argv[1]), sys.argv[2]
    reject, defer, delay, fault_file, args = [], [], 0.0, None, sys.argv[3:]
    kwargs = {}
    while args:
        flag = args[0]
        if flag in ("--starttls", "--tls"):
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args[1], args[2])
            if flag == "--tls":
                kwargs["ssl_context"] = ctx
                # aiosmtpd does not count implicit TLS as TLS when deciding to offer AUTH;
                # on this port every connection is TLS.
                kwargs["auth_require_tls"] = False
            else:
                kwargs["tls_context"] = ctx
                kwargs["require_starttls"] = True
            args = args[3:]
            continue
        if flag == "--auth":
            user, password = args[1].encode(), args[2].encode()

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
                # handled=False: aiosmtpd itself answers 235 or 535 (handled=True would
                # leave the client waiting for a reply that never comes).
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticator
            kwargs["auth_required"] = True
            args = args[3:]
            continue
        value, args = args[1], args[2:]
        if flag == "--reject":
            reject.append(value)
        elif flag == "--defer":
            defer.append(value)
        elif flag == "--delay":
            delay = float(value)
        elif flag == "--fault-file":
            fault_file = value
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder, reject, defer, delay, fault_file), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
