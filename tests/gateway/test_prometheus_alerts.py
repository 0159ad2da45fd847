"""docs/prometheus-alerts.yml is valid YAML in Prometheus's rule-file shape, and every
rallypoint_* metric its expressions use is one GET /metrics serves."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

ALERTS = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
DURATION = re.compile(r"[0-9]+[smhd]")
# Names Prometheus itself provides for a scrape job.
PROMETHEUS_OWN = {"up"}
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    (group,) = document["groups"]
    assert group["name"] == "rallypoint"
    return list(group["rules"])


def test_every_rule_has_the_fields_prometheus_needs() -> None:
    found = rules()
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)) >= 4
    for rule in found:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert DURATION.fullmatch(rule["for"])
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


async def test_the_rules_use_metrics_that_metrics_serves(make_client: MakeClient) -> None:
    client = await make_client()
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    served = set()
    for family in text_string_to_metric_families(scrape.text):
        served.add(family.name)
        served.update(sample.name for sample in family.samples)
    expressions = " ".join(rule["expr"] for rule in rules())
    used = set(re.findall(r"\brallypoint_[a-z0-9_]+\b", expressions))
    # What the file is about: outbox age, spool size, send failures, readiness.
    assert {
        "rallypoint_outbox_oldest_due_age_seconds",
        "rallypoint_spool_records",
        "rallypoint_send_attempts",
        "rallypoint_ready",
    } <= used
    assert used <= served, used - served
    selectors = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\{", expressions))
    assert selectors - used <= PROMETHEUS_OWN
