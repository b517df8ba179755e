"""Webhook fan-out: deliveries per second to a local receiver, and what configured
endpoints cost the writes that queue them.

    python3 bench/fanout.py --bin target/release/optin [--changes 3000] [--repeat 2]

Standard library only. Every case runs `optin serve` on its own throw-away embedded store
(file mail transport), with the endpoints in its TOML file. One case:
  1. Fill: the endpoints point at a port that accepts connections and never answers, with
     one outbox worker, a 1 s lease and a 600 s webhook timeout: the worker hangs on its
     first delivery, so nothing drains and nothing is retried. N writes, each from a new
     address, are timed:
       put     PUT /v1/contacts/{email}/subscriptions/blog-updates, opted_in with consent
               evidence (16 threads, a keep-alive connection each); queues a
               `subscription.opted_in` delivery per endpoint;
       import  the same N changes as NDJSON lines of POST /v1/imports (4 streams at once);
       signup  POST /v1/signups (16 threads): only a pending confirmation and its mail, no
               webhook; the mail goes to the file transport meanwhile.
     Then optin is killed (SIGKILL).
  2. Drain (fan-out cases only): optin again on the same store (default 4 workers), the
     endpoints pointing at an in-process asyncio HTTP/1.1 receiver (keep-alive, answers
     204 at once). The receiver checks every request's `webhook-id`, `webhook-timestamp`
     and `webhook-signature` (HMAC-SHA256 over `{id}.{timestamp}.{body}` with the
     endpoint's secret) and counts distinct ids. The rate is taken from the first
     delivery's arrival to the last one's; all N x endpoints must arrive.
The write cases run with no endpoint and with 3, alternately, `--repeat` times each, and
the best rate of each is compared (the VM is shared, so the best is the least disturbed).
Last, what consent receipts cost: PUT opt-ins (no endpoint) with a receipt key
configured against none, alternately, `--repeat` times each; with the key, one Ed25519
receipt is signed and stored per opt-in, and the script checks that the last address
has one.

Prints lines such as
  write put, 0 endpoints: 3000 changes in 4.01 s = 749 changes/s (optin CPU 710 µs each)
  write ratio put: 3 endpoints / none = 0.73 (546 / 749 changes/s, best of 2; goal >= 0.8)
  fanout 3 endpoints: 9000 deliveries in 13.45 s = 669 deliveries/s from the first to the last (…)
  write ratio receipts: signed / none = 0.95 (712 / 749 changes/s, best of 2)
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True  # no __pycache__ in bench/ from the import below
from drain import blackhole, free_port  # noqa: E402 (bench/drain.py, next to this file)

SUBSCRIPTION_TYPE = "blog-updates"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class Receiver:
    """A minimal HTTP/1.1 server for webhook deliveries: keep-alive, answers 204 at once,
    checks the Standard Webhooks headers and signature, counts distinct ids per path."""

    def __init__(self, port, secrets):
        self.port = port
        # path -> key (the secret's bytes after `whsec_`, base64-decoded)
        self.keys = {path: base64.b64decode(s[len("whsec_"):]) for path, s in secrets.items()}
        self.ids = {path: set() for path in secrets}
        self.count = 0
        self.duplicates = 0
        self.bad = []
        self.first = None
        self.last = None
        self.target = None
        self.done = threading.Event()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def distinct(self):
        return sum(len(s) for s in self.ids.values())

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", self.port, backlog=256)
        )
        ready.set()
        self.loop.run_until_complete(server.serve_forever())

    def _check(self, path, headers, body):
        """Why this delivery is wrong, or None."""
        key = self.keys.get(path)
        if key is None:
            return f"unknown path {path}"
        wid = headers.get("webhook-id")
        ts = headers.get("webhook-timestamp")
        sig = headers.get("webhook-signature")
        if not (wid and ts and sig):
            return "a webhook-id, webhook-timestamp or webhook-signature header is missing"
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return f"webhook-timestamp {ts!r} is not within 5 minutes of now"
        mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        if not any(hmac.compare_digest(expected, s) for s in sig.split()):
            return "webhook-signature does not verify"
        return None

    async def _session(self, reader, writer):
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                parts = request_line.split()
                if len(parts) < 2 or parts[0] != b"POST":
                    self.bad.append(f"request line {request_line[:80]!r}")
                    break
                path = parts[1].decode()
                headers = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    self.bad.append("chunked body")
                    break
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                problem = self._check(path, headers, body)
                if problem is None and json.loads(body).get("type") != "subscription.opted_in":
                    problem = f"unexpected event {body[:120]!r}"
                now = time.monotonic()
                if problem is not None:
                    self.bad.append(problem)
                    writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                else:
                    self.count += 1
                    self.last = now
                    if self.first is None:
                        self.first = now
                    seen = self.ids[path]
                    if headers["webhook-id"] in seen:
                        self.duplicates += 1
                    seen.add(headers["webhook-id"])
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    if self.target is not None and self.distinct() >= self.target:
                        self.done.set()
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as error:  # a bug here must show, not hang the bench
            self.bad.append(f"receiver: {error!r}")
        writer.close()


class Optin:
    """One throw-away store and configuration; `serve` starts optin on it."""

    def __init__(self, binary, workdir, endpoints):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        out = subprocess.run([binary, "keys", "new", "--scope", "admin", "--name", "bench"],
                             check=True, capture_output=True, text=True).stdout
        self.api_key = entry = None
        for line in out.splitlines():
            if line.startswith("API key"):
                self.api_key = line.split(": ", 1)[1].strip()
            elif line.startswith("Add this entry"):
                entry = line.split(": ", 1)[1].strip()
        if not (self.api_key and entry):
            sys.exit(f"could not parse the output of 'optin keys new':\n{out}")
        # endpoint id -> secret; the receiver tells them apart by path /<id>
        self.secrets = {}
        for i in range(endpoints):
            secret = subprocess.run([binary, "keys", "webhook"], check=True,
                                    capture_output=True, text=True).stdout.split()[0]
            if not secret.startswith("whsec_"):
                sys.exit(f"unexpected output of 'optin keys webhook': {secret!r}")
            self.secrets[f"ep{i + 1}"] = secret
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIN_")}
        self.env.pop("RUST_LOG", None)
        self.env.update(
            {
                "OPTIN_LOG__FORMAT": "text",
                "OPTIN_LOG__FILTER": "warn",
                "OPTIN_SERVER__BIND": f"127.0.0.1:{self.port}",
                "OPTIN_SERVER__PUBLIC_URL": self.base,
                "OPTIN_STORE__URL": os.path.join(workdir, "optin.redb"),
                "OPTIN_MAIL__URL": "file://" + os.path.join(workdir, "mail"),
                "OPTIN_MAIL__FROM": "optin <no-reply@bench.example>",
                "OPTIN_SECURITY__SIGNING_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
                "OPTIN_SECURITY__INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
                "OPTIN_SECURITY__API_KEYS": entry,
                "OPTIN_SIGNUP__MAX_SIGNUPS_PER_IP": "100000000",
                # Every signup comes from 127.0.0.1, at a domain no DNS knows (and there may be no
                # network): neither ip_burst nor the MX check may hold or refuse them.
                "OPTIN_SIGNUP__MAX_UNCONFIRMED_PER_IP": "100000000",
                "OPTIN_SIGNUP__CHECK_MX": "false",
                "OPTIN_SIGNUP__MAX_CONFIRMATION_MAILS_PER_DAY": "100",
            }
        )
        self.proc = None

    def serve(self, webhook_port, timeout_secs, extra_env):
        """Writes the configuration (endpoints at 127.0.0.1:webhook_port/<id>) and starts
        optin; returns when /readyz answers."""
        config = os.path.join(self.workdir, "optin.toml")
        with open(os.path.join(ROOT, "src", "example_subscription_types.toml")) as f:
            text = f.read()
        text += f"\n[webhooks]\nmax_attempts = 10\nretry_base_secs = 5\ntimeout_secs = {timeout_secs}\n"
        for endpoint, secret in self.secrets.items():
            text += (f'\n[[webhooks.endpoints]]\nid = "{endpoint}"\n'
                     f'url = "http://127.0.0.1:{webhook_port}/{endpoint}"\nsecret = "{secret}"\n')
        with open(config, "w") as f:
            f.write(text)
        env = dict(self.env)
        env.update(extra_env)
        log = open(os.path.join(self.workdir, "optin.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", config], cwd=self.workdir,
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit("optin exited early:\n" + open(log.name).read()[-2000:])
            try:
                urllib.request.urlopen(self.base + "/readyz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        sys.exit("optin did not become ready")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid):
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def change_line(email):
    return {"email": email, "subscription_type": SUBSCRIPTION_TYPE, "status": "opted_in",
            "lawful_basis": "consent", "consent_evidence": "bench"}


def run_threads(n, one):
    """A thread body for a thread pool: opens a keep-alive connection with the
    function it is given, calls one(conn, i) for the next i of 0..n until none is left,
    and returns the statuses. All threads share the one counter."""
    counter = iter(range(n))
    lock = threading.Lock()

    def worker(make_conn):
        conn = make_conn()
        statuses = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            statuses.append(one(conn, i))
        conn.close()
        return statuses

    return worker


def write(optin, via, n, tag):
    """Makes n writes through `via`; returns the seconds they took."""
    host = f"127.0.0.1:{optin.port}"
    auth = {"Authorization": f"Bearer {optin.api_key}"}

    def email(i):
        return f"f{tag}-{i}@bench.example"

    if via == "import":
        streams = 4
        bodies = ["".join(json.dumps(change_line(email(i))) + "\n" for i in range(s, n, streams))
                  for s in range(streams)]

        def post(body):
            conn = http.client.HTTPConnection(host, timeout=120)
            conn.request("POST", "/v1/imports", body=body.encode(),
                         headers={**auth, "Content-Type": "application/x-ndjson"})
            answer = conn.getresponse().read().decode()
            conn.close()
            done = [json.loads(l) for l in answer.splitlines() if '"done":true' in l]
            return done[0]["succeeded"] if done else 0

        started = time.monotonic()
        with ThreadPoolExecutor(streams) as pool:
            succeeded = sum(pool.map(post, bodies))
        secs = time.monotonic() - started
        if succeeded != n:
            sys.exit(f"only {succeeded} of {n} import lines succeeded")
        return secs

    if via == "put":
        def one(conn, i):
            path = (f"/v1/contacts/{urllib.parse.quote(email(i), safe='')}"
                    f"/subscriptions/{SUBSCRIPTION_TYPE}")
            body = dict(change_line(email(i)))
            del body["email"], body["subscription_type"]
            conn.request("PUT", path, body=json.dumps(body).encode(),
                         headers={**auth, "Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            return response.status if b'"changed"' in answer else f"{response.status} {answer[:200]!r}"
        ok = 200
    else:  # signup
        def one(conn, i):
            body = {"email": email(i), "subscription_types": [SUBSCRIPTION_TYPE], "locale": "en"}
            conn.request("POST", "/v1/signups", body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            return response.status if response.status == 202 else f"{response.status} {answer[:200]!r}"
        ok = 202

    threads = 16
    worker = run_threads(n, one)
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(worker, [lambda: http.client.HTTPConnection(host, timeout=60)] * threads))
    secs = time.monotonic() - started
    statuses = [s for r in results for s in r]
    failed = [s for s in statuses if s != ok]
    if len(statuses) != n or failed:
        sys.exit(f"{len(failed)} of {n} {via} requests failed, e.g. {failed[:3]}")
    return secs


def sign_receipts(binary, optin, workdir):
    """Gives `optin` a receipt key: every opt-in gets its signed receipt."""
    key = os.path.join(workdir, "receipt.pem")
    subprocess.run([binary, "keys", "receipt", "--out", key], check=True, capture_output=True)
    optin.env.update({
        "OPTIN_CONSENT__RECEIPT_KEYS": key,
        "OPTIN_CONSENT__CONTROLLER__NAME": "Bench Ltd",
        "OPTIN_CONSENT__CONTROLLER__EMAIL": "privacy@bench.example",
        "OPTIN_CONSENT__CONTROLLER__URL": "https://bench.example/privacy",
    })


def receipts_of(optin, email):
    conn = http.client.HTTPConnection("127.0.0.1", optin.port, timeout=30)
    conn.request("GET", f"/v1/contacts/{urllib.parse.quote(email, safe='')}/receipts",
                 headers={"Authorization": f"Bearer {optin.api_key}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        sys.exit(f"GET receipts answered {response.status}: {body[:200]!r}")
    answer = json.loads(body)
    return answer.get("receipts", answer) if isinstance(answer, dict) else answer


def case(binary, via, endpoints, n, drain, workers, receipts=False):
    """One fill (and drain); returns (writes/s, drain line or None)."""
    workdir = tempfile.mkdtemp(prefix="optin-fanout.")
    try:
        optin = Optin(binary, workdir, endpoints)
        if receipts:
            sign_receipts(binary, optin, workdir)
        hole_port = free_port()
        hole = blackhole(hole_port)
        # One worker, hung on its first delivery for far longer than the fill lasts, and
        # a 1 s lease, so the hung job is due again as soon as optin is restarted.
        optin.serve(hole_port, 600, {"OPTIN_MAIL__WORKERS": "1", "OPTIN_MAIL__LEASE_SECS": "1"})
        tag = f"{int(time.time() * 1000)}-{endpoints}"
        cpu0 = cpu_secs(optin.proc.pid)
        secs = write(optin, via, n, tag)
        cpu = cpu_secs(optin.proc.pid) - cpu0
        if receipts and not receipts_of(optin, f"f{tag}-{n - 1}@bench.example"):
            sys.exit("an opt-in made with a receipt key has no receipt")
        optin.kill()
        hole.close()
        rate = n / secs
        noun = "signups" if via == "signup" else "changes"
        print(f"write {via}, {endpoints} endpoint{'s' if endpoints != 1 else ''}: {n} {noun} in "
              f"{secs:.2f} s = {rate:,.0f} {noun}/s (optin CPU {cpu / n * 1e6:,.0f} µs each)", flush=True)
        if not drain:
            return rate, None
        time.sleep(1.2)  # the hung job's 1 s lease ends, so it is due again too

        expected = n * endpoints
        receiver = Receiver(free_port(), {f"/{e}": s for e, s in optin.secrets.items()})
        receiver.target = expected
        started = time.monotonic()
        optin.serve(receiver.port, 10, {"OPTIN_MAIL__WORKERS": str(workers)})
        arrived = receiver.done.wait(timeout=max(60, expected / 20))
        total_secs = time.monotonic() - started
        cpu = cpu_secs(optin.proc.pid)  # since it started: the start is in it
        optin.stop()
        if receiver.bad:
            sys.exit(f"{len(receiver.bad)} bad deliveries, e.g. {receiver.bad[:3]}")
        if not arrived:
            sys.exit(f"only {receiver.distinct()} of {expected} deliveries arrived in time")
        if receiver.distinct() != expected:
            sys.exit(f"{receiver.distinct()} distinct deliveries arrived, expected {expected}")
        secs = receiver.last - receiver.first
        drate = (expected - 1) / secs
        line = (f"fanout {endpoints} endpoint{'s' if endpoints != 1 else ''}: {expected} deliveries in "
                f"{secs:.2f} s = {drate:,.0f} deliveries/s from the first to the last "
                f"({workers} workers; {total_secs:.2f} s including the start; optin CPU "
                f"{cpu / expected * 1e6:,.0f} µs each, with its start; every signature verified; "
                f"{receiver.duplicates} repeated)")
        print(line, flush=True)
        return rate, line
    finally:
        if os.environ.get("FANOUT_KEEP") == "1":
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--changes", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each write case; the best rate of each is compared")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--via", default="put,import,signup",
                        help="write cases, comma-separated: put, import, signup")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    n = args.changes
    results = {}

    # Fan-out: 1 and 3 endpoints, filled through PUTs.
    fanout = {}
    for endpoints in (1, 3):
        rate, line = case(binary, "put", endpoints, n, True, args.workers)
        fanout[endpoints] = line
        if endpoints == 3:
            results.setdefault(("put", 3), []).append(rate)

    # Writes with no endpoint against 3, alternately.
    for via in args.via.split(","):
        if via not in ("put", "import", "signup"):
            sys.exit(f"unknown write case {via!r}")
        for round_ in range(args.repeat):
            order = (0, 3) if round_ % 2 == 0 else (3, 0)
            for endpoints in order:
                if via == "put" and endpoints == 3 and round_ == 0:
                    continue  # the fan-out run above was this one
                rate, _ = case(binary, via, endpoints, n, False, args.workers)
                results.setdefault((via, endpoints), []).append(rate)
        none = max(results[(via, 0)])
        three = max(results[(via, 3)])
        noun = "signups" if via == "signup" else "changes"
        print(f"write ratio {via}: 3 endpoints / none = {three / none:.2f} ({three:,.0f} / "
              f"{none:,.0f} {noun}/s, best of {args.repeat}; goal >= 0.8)", flush=True)
        if args.json:
            print(json.dumps({"write": via, "none": round(none, 1), "three": round(three, 1),
                              "ratio": round(three / none, 3)}))

    # PUT opt-ins with a receipt key against none, alternately.
    signed, unsigned = [], []
    for round_ in range(args.repeat):
        for receipts in ((False, True) if round_ % 2 == 0 else (True, False)):
            rate, _ = case(binary, "put", 0, n, False, args.workers, receipts=receipts)
            (signed if receipts else unsigned).append(rate)
    print(f"write ratio receipts: signed / none = {max(signed) / max(unsigned):.2f} "
          f"({max(signed):,.0f} / {max(unsigned):,.0f} changes/s, best of {args.repeat})",
          flush=True)


if __name__ == "__main__":
    main()
