"""Does a public signup's latency tell an opted-in address from a new one?

    python3 bench/signup_timing.py --bin target/release/optin [--probes 6000] [--seconds 120]

Standard library only. Starts `optin serve` on a throw-away embedded store with the
default settings (the file mail transport included), apart from fresh keys, an admin key
and a per-IP signup limit raised so that one client may probe. Opts in `--known`
addresses through the admin API, then sends `POST /v1/signups` over one keep-alive
connection, each for an opted-in address or for an address never seen by a fair coin,
until `--probes` probes or `--seconds` have passed.

Prints the median and quartiles of each kind, the difference of the medians with a 95%
bootstrap interval, and how often one probe is told right by the best threshold: chosen
on the first half of the probes, scored on the second half, as the mean of the two
kinds' hit rates (50% is a coin toss).
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TYPE = "blog-updates"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, workdir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin_key = base64.urlsafe_b64encode(os.urandom(24)).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIN_")}
    env.pop("RUST_LOG", None)
    env.update(
        {
            "OPTIN_LOG__FILTER": "warn",
            "OPTIN_SERVER__BIND": f"127.0.0.1:{port}",
            "OPTIN_SERVER__PUBLIC_URL": base,
            "OPTIN_STORE__URL": os.path.join(workdir, "optin.redb"),
            "OPTIN_MAIL__URL": "file://" + os.path.join(workdir, "mail"),
            "OPTIN_MAIL__FROM": "optin <no-reply@bench.example>",
            "OPTIN_SECURITY__SIGNING_KEYS": "bench:" + base64.b64encode(os.urandom(32)).decode(),
            "OPTIN_SECURITY__INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
            "OPTIN_SECURITY__API_KEYS": "bench:admin:" + hashlib.sha256(admin_key.encode()).hexdigest(),
            "OPTIN_SIGNUP__MAX_SIGNUPS_PER_IP": "100000000",
            # One client probes: the firewall's burst hold would hold its new addresses,
            # and the MX check needs a network the probe does not use.
            "OPTIN_SIGNUP__MAX_UNCONFIRMED_PER_IP": "100000000",
            "OPTIN_SIGNUP__CHECK_MX": "false",
        }
    )
    types = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src",
                         "example_subscription_types.toml")
    config = os.path.join(workdir, "optin.toml")
    shutil.copy(types, config)
    log = open(os.path.join(workdir, "optin.log"), "ab")
    proc = subprocess.Popen([binary, "serve", "--config", config], cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("optin exited early:\n" + open(log.name).read()[-2000:])
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1).read()
            return proc, port, admin_key
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("optin did not become ready")


def request(conn, method, path, body, headers=None):
    data = json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    started = time.perf_counter_ns()
    conn.request(method, path, body=data, headers=all_headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter_ns() - started
    return response.status, elapsed


def quantiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--probes", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--known", type=int, default=200)
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    rng = random.Random(20261207)

    workdir = tempfile.mkdtemp(prefix="optin-timing.")
    proc = None
    try:
        proc, port, admin_key = start(binary, workdir)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        known = [f"known{i}@bench.example" for i in range(args.known)]
        for address in known:
            status, _ = request(
                conn, "PUT", f"/v1/contacts/{address}/subscriptions/{TYPE}",
                {"status": "opted_in", "lawful_basis": "consent",
                 "consent_evidence": "timing benchmark"},
                {"Authorization": f"Bearer {admin_key}"},
            )
            if status != 200:
                sys.exit(f"opting in {address} answered {status}")

        def probe(address):
            status, elapsed = request(conn, "POST", "/v1/signups",
                                      {"email": address, "subscription_types": [TYPE]})
            if status != 202:
                sys.exit(f"a signup answered {status}")
            return elapsed

        for i in range(200):  # warm-up, both kinds
            probe(known[i % len(known)])
            probe(f"warm{i}@bench.example")

        opted_in, new = [], []
        deadline = time.time() + args.seconds
        for i in range(args.probes):
            if time.time() > deadline:
                break
            # Each probe's kind is a fair coin of its own: a new address's mail is sent in
            # the milliseconds after its answer, and slows whichever probe comes next, so
            # the kind of the next probe must not depend on this one's.
            if rng.random() < 0.5:
                opted_in.append(probe(known[i % len(known)]))
            else:
                new.append(probe(f"new{i}@bench.example"))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    us = lambda ns: ns / 1000
    k25, k50, k75 = (us(v) for v in quantiles(opted_in))
    n25, n50, n75 = (us(v) for v in quantiles(new))
    boot = []
    for _ in range(2000):
        a = [rng.choice(opted_in) for _ in opted_in]
        b = [rng.choice(new) for _ in new]
        boot.append(us(statistics.median(a) - statistics.median(b)))
    boot.sort()
    low, high = boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot))]

    # The attacker's best single-probe rule, chosen on one half and scored on the other.
    k_half, n_half = len(opted_in) // 2, len(new) // 2

    def accuracy(known_sample, new_sample, threshold, faster_is_known):
        known_right = sum(1 for v in known_sample if (v < threshold) == faster_is_known)
        new_right = sum(1 for v in new_sample if (v < threshold) != faster_is_known)
        return (known_right / len(known_sample) + new_right / len(new_sample)) / 2

    train = (opted_in[:k_half], new[:n_half])
    candidates = sorted(set(train[0]) | set(train[1]))[:: max(1, (k_half + n_half) // 400)]
    best = max(((t, d) for t in candidates for d in (True, False)),
               key=lambda rule: accuracy(*train, *rule))
    told = accuracy(opted_in[k_half:], new[n_half:], *best)

    print(f"signup timing: {len(opted_in)} opted-in and {len(new)} new addresses in a random order,"
          " over one keep-alive connection, default settings, embedded store")
    print(f"  opted-in address: median {k50:.1f} µs (quartiles {k25:.1f}–{k75:.1f})")
    print(f"  new address:      median {n50:.1f} µs (quartiles {n25:.1f}–{n75:.1f})")
    print(f"  difference of medians: {k50 - n50:+.1f} µs (95% bootstrap interval {low:+.1f} to {high:+.1f})")
    print(f"  one probe told right by the best threshold: {told:.1%} (50% is a coin toss)")


if __name__ == "__main__":
    main()
