"""Peer comparison: the same SMS announcement sent with Apprise (github.com/caronc/apprise,
BSD-2), the way an organizer would script it, to the same fake Twilio at the same 100 ms
latency, in the same run as bench/dispatch.py.

Apprise's Twilio plugin has no setting for the API host: it posts to the class attribute
`NotifyTwilio.notify_sms_url` (https://api.twilio.com/...), so the benchmark points that
one attribute at the loopback fake; everything else is Apprise's own (one `twilio://` URL
with every recipient as a target, `notify()`, its `requests` session, its pacing of 0.2 s
between requests). Apprise sends a URL's targets one after another, so a run of `count`
takes count × ~0.3 s: a short run is measured and its rate reported, with a second run
with the plugin's pacing set to zero (its HTTP path alone, still one request at a time).

`python -m bench.apprise_peer PROVIDER_URL COUNT PACING` is the measured process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import seed, twilio_forms
from bench.dispatch import LATENCY_MS, provider_cmd
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, python, running

# Apprise takes only letters and digits in an auth token; the fake is started with it.
AUTH_TOKEN = "benchauthtoken0123"  # noqa: S105


def send(provider: str, count: int, pacing: float | None) -> dict[str, float]:
    import apprise
    from apprise.plugins.twilio import NotifyTwilio

    NotifyTwilio.notify_sms_url = provider + "/2010-04-01/Accounts/{sid}/Messages.json"
    if pacing is not None:
        NotifyTwilio.request_rate_per_sec = pacing
    targets = "/".join(seed.phone(i).lstrip("+") for i in range(1, count + 1))
    organizer = apprise.Apprise()
    if not organizer.add(
        f"twilio://{twilio_forms.ACCOUNT_SID}:{AUTH_TOKEN}@{twilio_forms.TO.lstrip('+')}/{targets}"
    ):
        raise SystemExit("apprise refused the twilio:// URL")
    started, cpu = time.monotonic(), time.process_time()
    ok = organizer.notify(body="See you Saturday!")
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"ok": bool(ok), "seconds": elapsed, "rate": count / elapsed, "cpu": cpu}


def measured(work: Path, count: int, pacing: float | None) -> tuple[float, float, int]:
    """(msg/s, CPU seconds, messages the fake accepted) of one Apprise run."""
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    env = {
        "BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS),
        "BENCH_PROVIDER_LIMIT": "0",
        "BENCH_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    with running(provider_cmd(port), env, provider + "/stats", work / "apprise-provider.log"):
        args = [python(), "-m", "bench.apprise_peer", provider, str(count), str(pacing)]
        out = subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=300, check=True, cwd=ROOT
        )
        accepted = int(httpx.get(provider + "/stats", timeout=5).json()["accepted"])
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return float(answer["rate"]), float(answer["cpu"]), accepted


def run(report: Report, work: Path, rallypoint: float, count: int = 60) -> None:
    """`rallypoint`: the worker's msg/s for Twilio SMS in this run (bench/dispatch.py)."""
    try:
        import apprise  # noqa: F401
    except ImportError:
        report.notes.append("apprise: not run, not installed (scripts/bootstrap bench)")
        return
    for pacing, label in ((None, "its default pacing"), (0.0, "pacing off")):
        rate, cpu, accepted = measured(work, count, pacing)
        report.add(
            Figure(
                "dispatch",
                f"Apprise, twilio:// with {count} targets, {label}",
                rate,
                "msg/s",
                rallypoint,
                "one Rallypoint worker, same fake, this run",
                "every message accepted once",
                accepted == count,
                note=f"the fake accepted {accepted} of {count}; CPU {cpu / count * 1e6:,.0f} µs"
                " a message; 12,000 would take"
                f" {12_000 / rate / 60 if rate else 0:,.0f} min",
            )
        )


if __name__ == "__main__":
    url, total, pace = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps(send(url, total, None if pace == "None" else float(pace))))
