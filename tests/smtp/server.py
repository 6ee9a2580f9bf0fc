"""A real SMTP server for the email tests (aiosmtpd), on 127.0.0.1.

    python server.py --out FILE [--port N] [--tls none|starttls|implicit]
                     [--cert PEM --key PEM] [--login USER:PASSWORD]

Binds (port 0: an ephemeral one), prints the port on stdout, then appends
every message it accepts to FILE as one JSON line: the envelope, the raw
message, whether the session was encrypted and who logged in.
"""

import argparse
import asyncio
import json
import socket
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", default="none", choices=["none", "starttls", "implicit"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--login")
    a = p.parse_args()

    ctx = None
    if a.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword) or not a.login:
            return AuthResult(success=False, handled=False)
        user, password = a.login.split(":", 1)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, auth_data=user if ok else None)

    handler = Recorder(a.out)

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=ctx if a.tls == "starttls" else None,
            require_starttls=a.tls == "starttls",
            authenticator=authenticator if a.login else None,
            auth_required=bool(a.login),
            # Implicit TLS is encrypted from the first byte, but aiosmtpd only
            # counts a STARTTLS upgrade as TLS for AUTH.
            auth_require_tls=a.tls == "starttls",
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", a.port))
    sock.listen(16)

    async def serve():
        server = await asyncio.get_running_loop().create_server(
            factory, sock=sock, ssl=ctx if a.tls == "implicit" else None
        )
        print(sock.getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
