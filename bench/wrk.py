"""Drive a server with wrk from pre-built, pre-signed requests (each sent once)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = r"""
local bodies = {}
local sigs = {}
local counter = 1
local threads = {}
local path = "__PATH__"

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local nthreads = tonumber(args[1])
  local n = 0
  for line in io.lines("__FILE__") do
    n = n + 1
    if (n % nthreads) == (id - 1) then
      local sig, body = line:match("^(%S+) (.*)$")
      table.insert(sigs, sig)
      table.insert(bodies, body)
    end
  end
  idx = 0
  ok = 0
  bad = 0
end

function request()
  idx = idx + 1
  if idx > #bodies then
    wrk.thread:stop()
    idx = #bodies
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = sigs[idx],
  }, bodies[idx])
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_ok = 0
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format("RESULT ok=%d bad=%d p50_us=%d p99_us=%d\n",
    total_ok, total_bad, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class WrkResult:
    requests_per_second: float
    ok: int
    bad: int
    p50_ms: float
    p99_ms: float
    output: str


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    path: str,
    requests_file: Path,
    *,
    seconds: int,
    connections: int = 64,
    threads: int = 2,
    workdir: Path,
) -> WrkResult:
    script = workdir / "signed.lua"
    script.write_text(LUA.replace("__FILE__", str(requests_file)).replace("__PATH__", path))
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(threads),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
    out = proc.stdout + proc.stderr
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result = re.search(r"RESULT ok=(\d+) bad=(\d+) p50_us=(\d+) p99_us=(\d+)", out)
    if not rps or not result:
        raise RuntimeError(f"wrk failed:\n{out}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        ok=int(result.group(1)),
        bad=int(result.group(2)),
        p50_ms=int(result.group(3)) / 1000,
        p99_ms=int(result.group(4)) / 1000,
        output=out,
    )
