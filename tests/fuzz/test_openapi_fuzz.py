"""schemathesis over /openapi.json, in-process against the ASGI app: no answer is a 5xx and
every answer conforms to the schema (status listed, body as documented). The budget is small
and the seed fixed, so the run is the same every time and takes a few seconds."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app, shutdown
from tests.conftest import FakeClock, bearer, make_settings, new_key

BASE = "https://rallypoint.example.org"
# Cases per operation and generation mode (valid and invalid input); raise it to fuzz longer.
EXAMPLES = int(os.environ.get("RALLYPOINT_FUZZ_EXAMPLES", "2"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_5xx_and_every_answer_as_documented(database_url: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(make_settings(database_url), clock=FakeClock())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    try:
        key = loop.run_until_complete(new_key(app.state.ctx))
        schema = schemathesis.openapi.from_dict(app.openapi())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 30

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            sent = case.as_transport_kwargs(base_url=BASE, headers=bearer(key))
            request = {
                "method": sent["method"],
                "url": sent["url"],
                "headers": sent.get("headers"),
                "params": sent.get("params"),
                "cookies": sent.get("cookies"),
            }
            if "json" in sent:
                request["json"] = sent["json"]
            elif sent.get("data") is not None:
                request["content" if isinstance(sent["data"], bytes | str) else "data"] = sent[
                    "data"
                ]
            response = loop.run_until_complete(client.request(**request))
            case.validate_response(response, checks=CHECKS)

        for operation in operations:
            for mode in schemathesis.GenerationMode:
                try:
                    given(case=operation.as_strategy(mode))(run)()
                except Unsatisfiable:
                    # An operation without parameters or body has no invalid input.
                    if mode is schemathesis.GenerationMode.POSITIVE:
                        raise
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(shutdown(app.state.ctx))
        loop.close()
