"""A small SMTP server for the tests: it accepts mail on 127.0.0.1 and keeps each message it received
(envelope sender, recipients, the message bytes). It speaks the part of SMTP (RFC 5321) that Python's
smtplib uses to send: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. No TLS, no AUTH."""
import email
import email.policy
import socketserver
import threading
import time


class _Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self):
        sink = self.server.sink
        sender, recipients = None, []
        self.reply("220 sink.test ESMTP ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                self.reply("250-sink.test")
                self.reply("250-8BITMIME")
                self.reply("250 SMTPUTF8")
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].split()[0].strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                address = command.split(":", 1)[1].split()[0].strip("<>")
                if address in sink.refuse:
                    self.reply("550 No such user here")
                else:
                    recipients.append(address)
                    self.reply("250 OK")
            elif verb == "DATA":
                if not recipients:
                    self.reply("554 No valid recipients")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b".\n", b""):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                time.sleep(sink.delay)  # a slow server
                if sink.reject_data & set(recipients):
                    self.reply("552 Message size exceeds the recipient's limit")
                    continue
                sink.messages.append((sender, list(recipients), b"".join(lines)))
                self.reply("250 OK: queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply(sink.goodbye)
                return
            else:
                self.reply("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """`with SmtpSink() as sink:` serves on sink.port; sink.messages lists what arrived; addresses in
    sink.refuse are refused at RCPT (550); sink.goodbye is the answer to QUIT; sink.delay seconds pass before
    a message is accepted."""

    def __init__(self):
        self.messages, self.refuse, self.goodbye, self.delay = [], set(), "221 Bye", 0
        self.reject_data = set()  # a message to any of these is refused after DATA (552: too large for them)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def parsed(self, index=-1):
        """The message as an email.message.EmailMessage."""
        return email.message_from_bytes(self.messages[index][2], policy=email.policy.default)

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
