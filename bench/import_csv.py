"""`rallypoint import` of an Action Network-shaped CSV (100,000 rows): wall time and peak
memory of the CLI process, against the same run's baseline of reading and mapping the file
alone (no database). An import that outlasts its time limit is stopped and its time for
all rows projected from the progress it printed on stderr ("N rows read")."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Figure, Report
from routing.people.import_columns import map_header, read_row
from routing.people.import_file_scan import read_rows, scan

ROWS = 100_000
TARGET_SECONDS = 30.0
LIMIT_SECONDS = 240.0
HEADER = "uuid,first_name,last_name,email,zip_code,can2_phone,can2_sms_status,Volunteer Shift\n"


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            status = "unsubscribed" if i % 50 == 0 else "subscribed"
            out.write(
                f"an-{i},First{i},Last{i},p{i}@example.org,{94000 + i % 900},"
                f"+1415{5_500_000 + i:07d},{status},Saturday\n"
            )


def read_only(path: Path) -> float:
    """The baseline: the file scanned, read and mapped row by row, nothing stored."""
    start = time.perf_counter()
    with path.open("rb") as stream:
        columns = map_header(scan(stream).header)
        for _, cells in read_rows(stream):
            read_row(columns, cells)
    return time.perf_counter() - start


def run(report: Report, work: Path, rows: int = ROWS) -> None:
    path = work / "action_network.csv"
    write_file(path, rows)
    baseline = read_only(path)
    env = {
        **os.environ,
        "RALLYPOINT_DATABASE_URL": f"sqlite:///{work / 'import.db'}",
        "RALLYPOINT_DEFAULT_REGION": "US",
    }
    command = [sys.executable, "-m", "gateway.cli", "import", str(path), "--create-fields"]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=LIMIT_SECONDS)
        finished = process.returncode == 0
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        finished = False
    seconds = time.perf_counter() - start
    done = max((int(n) for n in re.findall(r"(\d+) rows read", err)), default=0)
    projected = seconds if finished else (seconds * rows / done if done else float("inf"))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    note = "" if finished else f"stopped after {seconds:.0f} s at {done:,} rows; projected"
    report.add(
        Figure(
            "import",
            f"{rows:,} rows (Action Network CSV)",
            projected,
            "s",
            baseline,
            "reading and mapping the file only",
            f"<= {TARGET_SECONDS:g} s",
            projected <= TARGET_SECONDS,
            note,
        )
    )
    report.add(Figure("import", "peak RSS of the import process", peak, "MiB"))
    if finished:
        print(out.strip(), flush=True)
