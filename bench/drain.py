"""Outbox drain: mails per second from a full outbox to a local SMTP sink.

    python3 bench/drain.py --bin target/release/optin [--mails 5000] [--dkim none|rsa|ed25519]

Standard library only. Steps:
  1. Fill: `optin serve` on a throw-away embedded store, its mail URL pointing at a
     server that accepts connections and never answers, one worker and a 1 s lease. The
     worker hangs on its first job, so N signups (POST /v1/signups, 16 threads) leave
     N confirmation jobs in the outbox. Then optin is killed.
  2. Drain: `optin serve` again on the same store (default 4 workers), mail URL pointing
       at a minimal in-process SMTP sink (asyncio, counts messages). The rate is taken
     from the first mail's arrival to the last one's.
Prints one line: `drain <label>: N mails in T s = R mails/s` (and a JSON line with
--json). With --dkim, a key is made with `optin keys dkim` and every mail is signed;
the sink checks that each message carries a DKIM-Signature.
"""
import argparse
import base64
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """A minimal SMTP server: enough of RFC 5321 for lettre, counting accepted mails."""

    def __init__(self, port):
        self.port = port
        self.count = 0
        self.unsigned = 0
        self.first = None
        self.last = None
        self.done = threading.Event()
        self.target = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", self.port)
        )
        self.ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _session(self, reader, writer):
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    signed = False
                    while True:
                        data_line = await reader.readline()
                        if data_line in (b".\r\n", b""):
                            break
                        if data_line[:15].lower() == b"dkim-signature:":
                            signed = True
                    self.count += 1
                    self.last = time.monotonic()
                    if self.first is None:
                        self.first = self.last
                    if not signed:
                        self.unsigned += 1
                    if self.target is not None and self.count >= self.target:
                        self.done.set()
                    writer.write(b"250 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()


class ExternalSink:
    """A mail server in its own process that prints `mesg=N` as it takes mails: Postfix's
    smtp-sink (fast, written in C) or bench/aiosmtpd_sink.py (slow, Python). Counts as
    [`Sink`] does; it does not look for DKIM signatures."""

    def __init__(self, kind, port):
        self.port = port
        self.count = 0
        self.unsigned = 0
        self.first = None
        self.last = None
        self.done = threading.Event()
        self.target = None
        if kind == "smtp-sink":
            command = ["smtp-sink", "-u", os.environ.get("USER") or "root", "-c",
                       f"127.0.0.1:{port}", "256"]
        else:
            here = os.path.dirname(os.path.abspath(__file__))
            command = [AIOSMTPD_PYTHON, os.path.join(here, "aiosmtpd_sink.py"), str(port)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit(f"{kind} did not listen on port {port}")

    def _read(self):
        pending = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            pending += chunk
            # smtp-sink ends its counter line with a carriage return, the script with \n.
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            counts = [int(l.rsplit(b"mesg=", 1)[1]) for l in lines if b"mesg=" in l]
            if counts and counts[-1] > self.count:
                self.count = counts[-1]
                self.last = time.monotonic()
                if self.first is None:
                    self.first = self.last
                if self.target is not None and self.count >= self.target:
                    self.done.set()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# aiosmtpd comes from Debian's python3-aiosmtpd, which only the system Python sees.
AIOSMTPD_PYTHON = "/usr/bin/python3"


def blackhole(port):
    """Accepts connections and never says a word, so a sender waits."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed: stop quietly
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return listener


def signup(base, i, tag):
    body = json.dumps(
        {
            "email": f"d{tag}-{i}@bench.example",
            "subscription_types": ["blog-updates"],
            "locale": "en",
        }
    ).encode()
    request = urllib.request.Request(
        base + "/v1/signups",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--dkim", choices=["none", "rsa", "ed25519"], default="none")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sink", choices=["builtin", "smtp-sink", "aiosmtpd"], default="builtin",
                        help="builtin: the in-process counting sink (checks DKIM); "
                        "smtp-sink: Postfix's; aiosmtpd: a Python mail server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)

    workdir = tempfile.mkdtemp(prefix="optin-drain.")
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIN_")}
        env.pop("RUST_LOG", None)
        env.update(
            {
                "OPTIN_LOG__FORMAT": "text",
                "OPTIN_LOG__FILTER": "warn",
                "OPTIN_SERVER__BIND": f"127.0.0.1:{port}",
                "OPTIN_SERVER__PUBLIC_URL": base,
                "OPTIN_STORE__URL": os.path.join(workdir, "optin.redb"),
                "OPTIN_MAIL__FROM": "optin <no-reply@bench.example>",
                "OPTIN_SECURITY__SIGNING_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
                "OPTIN_SECURITY__INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
                "OPTIN_SIGNUP__MAX_SIGNUPS_PER_IP": "100000000",
                # Every signup comes from 127.0.0.1, at a domain no DNS knows (and there may be no
                # network): neither ip_burst nor the MX check may hold or refuse them.
                "OPTIN_SIGNUP__MAX_UNCONFIRMED_PER_IP": "100000000",
                "OPTIN_SIGNUP__CHECK_MX": "false",
                "OPTIN_SIGNUP__MAX_CONFIRMATION_MAILS_PER_DAY": "100",
            }
        )
        types = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src",
                             "example_subscription_types.toml")
        config = os.path.join(workdir, "optin.toml")
        shutil.copy(types, config)
        env_config = ["--config", config]
        if args.dkim != "none":
            key = os.path.join(workdir, "dkim.pem")
            subprocess.run(
                [binary, "keys", "dkim", "--domain", "bench.example", "--selector", "bench",
                 "--algorithm", args.dkim, "--out", key],
                check=True, stdout=subprocess.DEVNULL,
            )
            env.update(
                {
                    "OPTIN_MAIL__DKIM__DOMAIN": "bench.example",
                    "OPTIN_MAIL__DKIM__SELECTOR": "bench",
                    "OPTIN_MAIL__DKIM__PRIVATE_KEY_FILE": key,
                }
            )

        def serve(extra):
            e = dict(env)
            e.update(extra)
            log = open(os.path.join(workdir, "optin.log"), "ab")
            proc = subprocess.Popen([binary, "serve", *env_config], cwd=workdir, env=e,
                                    stdout=log, stderr=subprocess.STDOUT)
            deadline = time.time() + 30
            while time.time() < deadline:
                if proc.poll() is not None:
                    sys.exit(f"optin exited early:\n" + open(log.name).read()[-2000:])
                try:
                    urllib.request.urlopen(base + "/readyz", timeout=1).read()
                    return proc
                except OSError:
                    time.sleep(0.05)
            proc.kill()
            sys.exit("optin did not become ready")

        # 1. Fill.
        hole_port = free_port()
        hole = blackhole(hole_port)
        proc = serve({
            "OPTIN_MAIL__URL": f"smtp://127.0.0.1:{hole_port}?tls=none",
            "OPTIN_MAIL__WORKERS": "1",
            "OPTIN_MAIL__LEASE_SECS": "1",
        })
        tag = str(int(time.time() * 1000))
        started = time.time()
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: signup(base, i, tag), range(args.mails)))
        fill_secs = time.time() - started
        accepted = sum(1 for s in statuses if s == 202)
        if accepted != args.mails:
            sys.exit(f"only {accepted} of {args.mails} signups were accepted")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        hole.close()
        time.sleep(1.2)  # the hung job's 1 s lease ends, so it is due again too

        # 2. Drain.
        if args.sink == "builtin":
            sink = Sink(free_port())
        else:
            sink = ExternalSink(args.sink, free_port())
        sink.target = args.mails
        started = time.time()
        proc = serve({
            "OPTIN_MAIL__URL": f"smtp://127.0.0.1:{sink.port}?tls=none",
            "OPTIN_MAIL__WORKERS": str(args.workers),
        })
        if not sink.done.wait(timeout=max(60, args.mails / 20)):
            proc.kill()
            sys.exit(f"only {sink.count} of {args.mails} mails arrived in time")
        total_secs = time.time() - started
        # From the first mail to the last: the drain itself, without optin's start.
        secs = sink.last - sink.first
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if args.sink != "builtin":
            sink.stop()
        if args.dkim != "none" and sink.unsigned:
            sys.exit(f"{sink.unsigned} mails arrived without a DKIM signature")
        rate = (args.mails - 1) / secs
        label = {"none": "unsigned", "rsa": "RSA-2048", "ed25519": "Ed25519"}[args.dkim]
        if args.sink != "builtin":
            label = f"{label} to {args.sink}"
        print(f"drain {label}: {args.mails} mails in {secs:.2f} s = {rate:,.0f} mails/s "
              f"from the first to the last ({args.workers} workers; {total_secs:.2f} s including "
              f"the start; outbox filled at {args.mails / fill_secs:,.0f} signups/s)")
        if args.json:
            print(json.dumps({"drain": label, "mails": args.mails, "secs": round(secs, 3),
                              "mails_per_sec": round(rate, 1)}))
    finally:
        if os.environ.get("DRAIN_KEEP") == "1":
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
