"""The physical floor of a send on this machine: aiohttp alone posting the same requests an
adapter writes (same URL, headers and body shape; the answer read and decoded) with the
same number in flight, to the same fake provider; no adapter, no httpx, no database.
Prints the rate (msg/s) and the CPU seconds spent, as JSON.

Usage: python -m bench.bare_http PROVIDER_URL COUNT CONCURRENCY [twilio|whatsapp|telegram]
"""

from __future__ import annotations

import json
from base64 import b64encode
from urllib.parse import urlencode

import aiohttp

from bench import seed, twilio_forms
from bench.bare_sender import cli, timed
from bench.fake_provider import TELEGRAM_TOKEN, WHATSAPP_PHONE_ID, WHATSAPP_TOKEN
from gateway.heap import settle_heap

BODY = "See you Saturday!"


def request_for(kind: str, provider: str, i: int) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of the `i`th send on `kind`, as its adapter writes them."""
    if kind == "whatsapp":
        to = seed.phone(i).lstrip("+")
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        payload |= {"type": "text", "text": {"body": BODY, "preview_url": False}}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {WHATSAPP_TOKEN}", "Content-Type": "application/json"}
        return f"{provider}/v21.0/{WHATSAPP_PHONE_ID}/messages", headers, body
    if kind == "telegram":
        body = json.dumps({"chat_id": str(i), "text": BODY}).encode()
        headers = {"Content-Type": "application/json"}
        return f"{provider}/bot{TELEGRAM_TOKEN}/sendMessage", headers, body
    basic = b64encode(f"{twilio_forms.ACCOUNT_SID}:{twilio_forms.AUTH_TOKEN}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = {"To": seed.phone(i), "From": twilio_forms.TO, "Body": BODY}
    url = f"{provider}/2010-04-01/Accounts/{twilio_forms.ACCOUNT_SID}/Messages.json"
    return url, headers, urlencode(form).encode()


async def main(provider: str, count: int, concurrency: int, kind: str) -> int:
    settle_heap(20_000)  # as the worker does (RALLYPOINT_GC_THRESHOLD's default)
    numbers = iter(range(1, count + 1))
    sent = 0
    connector = aiohttp.TCPConnector(limit=max(concurrency, 100), limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            nonlocal sent
            for i in numbers:
                url, headers, body = request_for(kind, provider, i)
                async with session.post(url, data=body, headers=headers) as response:
                    answer = json.loads(await response.read())
                if response.status >= 300 or not answer:
                    raise SystemExit(f"send {i} answered HTTP {response.status}")
                sent += 1

        elapsed, cpu = await timed(sender, concurrency)
    print(json.dumps({"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "cpu": cpu}))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli(main))
