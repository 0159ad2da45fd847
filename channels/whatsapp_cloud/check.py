"""`rallypoint doctor` for the WhatsApp Cloud API: the access token may read the phone
number id (GET /{phone-number-id}). The app's callback URL is read only with an app
token, which Rallypoint does not hold: it is not checked."""

from __future__ import annotations

import httpx

from channels.checks import CheckResult, failed, passed, unreachable
from channels.whatsapp_cloud.config import WhatsAppCloudConfig

NAME = "whatsapp credentials"


async def check_whatsapp_cloud(
    config: WhatsAppCloudConfig, client: httpx.AsyncClient
) -> list[CheckResult]:
    url = f"{config.api_base.rstrip('/')}/{config.phone_number_id}"
    try:
        response = await client.get(
            url,
            params={"fields": "display_phone_number,verified_name,quality_rating"},
            headers={"Authorization": f"Bearer {config.access_token}"},
        )
    except httpx.HTTPError as exc:
        return [failed(NAME, unreachable(exc))]
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        detail = f"Meta answered {response.status_code}" + (f" ({message})" if message else "")
        return [failed(NAME, detail)]
    number = body.get("display_phone_number", "?")
    name = body.get("verified_name", "?")
    quality = body.get("quality_rating", "?")
    detail = f"phone number id {config.phone_number_id}: {number} ({name}, quality {quality})"
    return [passed(NAME, detail)]
