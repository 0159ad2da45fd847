"""`rallypoint doctor` for Twilio: the account answers to our credentials and is active;
the SMS number (TWILIO_SMS_FROM) is the account's and its 'A message comes in' webhook is
ours. A Messaging Service's or a WhatsApp sender's webhook is not read (other APIs)."""

from __future__ import annotations

from typing import Any

import httpx

from channels.checks import CheckResult, failed, passed, unreachable
from channels.twilio.config import TwilioConfig

API_VERSION = "2010-04-01"


class _Refused(Exception):
    pass


async def _get(
    config: TwilioConfig, client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> Any:
    url = f"{config.api_base.rstrip('/')}/{API_VERSION}/Accounts/{config.account_sid}{path}"
    auth = httpx.BasicAuth(config.account_sid, config.auth_token)
    try:
        response = await client.get(url, params=params, auth=auth)
    except httpx.HTTPError as exc:
        raise _Refused(unreachable(exc)) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        raise _Refused(
            f"Twilio answered {response.status_code}" + (f" ({code}: {message})" if message else "")
        )
    return body


async def check_twilio(
    config: TwilioConfig, client: httpx.AsyncClient, expected_webhook: str
) -> list[CheckResult]:
    try:
        account = await _get(config, client, ".json", {})
    except _Refused as exc:
        return [failed("twilio credentials", str(exc))]
    status = account.get("status")
    if status != "active":
        return [failed("twilio credentials", f"account {config.account_sid} is {status}")]
    results = [passed("twilio credentials", f"account {config.account_sid} is active")]
    if not config.sms_from:
        return results
    name = f"twilio webhook of {config.sms_from}"
    try:
        found = await _get(
            config, client, "/IncomingPhoneNumbers.json", {"PhoneNumber": config.sms_from}
        )
    except _Refused as exc:
        return [*results, failed(name, str(exc))]
    numbers = found.get("incoming_phone_numbers") or []
    if not numbers:
        return [*results, failed(name, "TWILIO_SMS_FROM is not a number of this account")]
    sms_url = numbers[0].get("sms_url") or ""
    if sms_url == expected_webhook:
        return [*results, passed(name, sms_url)]
    where = f"Twilio posts to {sms_url}" if sms_url else "no 'A message comes in' URL is set"
    return [*results, failed(name, f"{where}, not {expected_webhook}")]
