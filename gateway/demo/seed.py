"""The demo organization: teams, supporters on every channel with names in several
languages, a few conversations, a poll and a check-in, and a console user. Everything
goes in the way it would in real use: the REST API, and supporters' messages as signed
webhooks through the simulator."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.context import GatewayContext
from gateway.demo.simulate import Simulator
from gateway.keys import insert_key
from gateway.users import create_user

DEMO_EMAIL = "demo@rallypoint.invalid"
WAIT_SECONDS = 5.0

TEAMS = (
    ("Nairobi canvassers", "Door-to-door in Nairobi's eastlands."),
    ("Equipo CDMX", "Voluntarios de la Ciudad de México."),
    ("Phone bank", "Calls from anywhere, every week."),
)
# name, language, timezone, channel, address, team
PEOPLE: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("Amina Wanjiru", "sw", "Africa/Nairobi", "whatsapp", "+254712345001", "Nairobi canvassers"),
    ("Otieno Kamau", "sw", "Africa/Nairobi", "telegram", "5550101", "Nairobi canvassers"),
    ("Grace Achieng", "en", "Africa/Nairobi", "sms", "+254722000111", "Nairobi canvassers"),
    ("Wanjiku Njeri", "sw", "Africa/Nairobi", "email", "wanjiku@example.org", "Nairobi canvassers"),
    ("Adebayo Okafor", "yo", "Africa/Lagos", "whatsapp", "+2348031234567", "Nairobi canvassers"),
    ("Lucía Hernández", "es", "America/Mexico_City", "sms", "+525598765432", "Equipo CDMX"),
    ("José Martínez", "es", "America/Mexico_City", "whatsapp", "+525512345678", "Equipo CDMX"),
    ("Ximena Ortiz", "es", "America/Mexico_City", "telegram", "5550102", "Equipo CDMX"),
    ("Mateo Ramírez", "es", "America/Mexico_City", "email", "mateo@example.org", "Equipo CDMX"),
    ("João Silva", "pt", "America/Sao_Paulo", "whatsapp", "+5511987654321", "Equipo CDMX"),
    ("Дмитрий Иванов", "ru", "Europe/Moscow", "telegram", "5550103", "Phone bank"),
    ("ليلى حسن", "ar", "Africa/Cairo", "whatsapp", "+201001234567", "Phone bank"),
    ("प्रिया शर्मा", "hi", "Asia/Kolkata", "whatsapp", "+919812345678", "Phone bank"),
    ("王芳", "zh", "Asia/Shanghai", "telegram", "5550104", "Phone bank"),
    ("Camille Dubois", "fr", "Europe/Paris", "sms", "+33612345678", "Phone bank"),
    ("Sam Taylor", "en", "America/Los_Angeles", "sms", "+14155550123", "Phone bank"),
    ("Jordan Lee", "en", "America/New_York", "sms", "+12025550143", "Phone bank"),
    ("Oliver Brown", "en", "Europe/London", "sms", "+447911123456", "Phone bank"),
    ("Maya Cohen", "en", "America/Los_Angeles", "email", "maya@example.org", "Phone bank"),
    ("Kenji Sato", "ja", "Asia/Tokyo", "email", "kenji@example.org", "Phone bank"),
)
# Supporters who write in at start: (name, what they write).
OPENERS = (
    ("Amina Wanjiru", "Habari! Can I help with the Saturday canvass?"),
    ("Lucía Hernández", "¿A qué hora es la reunión del jueves?"),
    ("Дмитрий Иванов", "I can make 30 calls this week."),
    ("Maya Cohen", "Is there a training for new phone bankers?"),
)
REPLY = ("Amina Wanjiru", "Asante Amina! Yes please: we meet at 9 at the market. See you there!")
POLL = {
    "question": "Which time works for the Saturday canvass?",
    "options": ["Saturday morning", "Saturday afternoon", "Sunday"],
    "audience": {"teams": ["Nairobi canvassers"]},
}
POLL_ANSWER = ("Grace Achieng", "2")
CHECKIN = {
    "weekday": 0,
    "local_time": "18:00",
    "prompt": "How did your calls go this week? Reply with how many you made.",
    "inactive_days": 14,
}


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    api_key: str


async def seed(ctx: GatewayContext, simulator: Simulator) -> DemoLogin:
    """Fill the (new, empty) demo database; the console user's and API key's secrets."""
    async with ctx.sessions() as session:
        api_key = await insert_key(session, role="admin", name="demo")
        await session.commit()
    password = secrets.token_urlsafe(12)
    async with ctx.sessions() as session:
        await create_user(
            session,
            email=DEMO_EMAIL,
            password=password,
            role="admin",
            name="Demo organizer",
            now=ctx.clock(),
        )
    api = simulator.client
    headers = {"Authorization": f"Bearer {api_key}"}
    teams: dict[str, int] = {}
    for name, description in TEAMS:
        team = await _call(api, "/teams", headers, {"name": name, "description": description})
        teams[name] = team["id"]
    ids: dict[str, int] = {}
    for name, language, timezone, channel, address, team_name in PEOPLE:
        body: dict[str, Any] = {
            "name": name,
            "language": language,
            "timezone": timezone,
            "addresses": [{"channel": channel, "address": address}],
            "preferred_channels": [channel],
            "teams": [teams[team_name]],
        }
        ids[name] = (await _call(api, "/supporters", headers, body))["id"]
    by_name = {row[0]: row for row in PEOPLE}
    for name, text in OPENERS:
        _, _, _, channel, address, _ = by_name[name]
        await simulator.send(channel, address, text, name)
    name, text = REPLY
    await _call(api, f"/supporters/{ids[name]}/messages", headers, {"body": text})
    await _call(api, "/polls", headers, POLL)
    name, answer = POLL_ANSWER
    _, _, _, channel, address, _ = by_name[name]
    if await _delivered(simulator, channel, address):
        await simulator.send(channel, address, answer, name)
    await _call(api, f"/teams/{teams['Phone bank']}/checkins", headers, CHECKIN)
    return DemoLogin(DEMO_EMAIL, password, api_key)


async def _call(
    api: httpx.AsyncClient, path: str, headers: dict[str, str], body: dict[str, Any]
) -> Any:
    answer = await api.post("/api/v1" + path, json=body, headers=headers)
    if answer.status_code >= 300:
        raise RuntimeError(f"demo seed: POST {path} answered {answer.status_code}")
    return answer.json()


async def _delivered(simulator: Simulator, channel: str, address: str) -> bool:
    """Whether something reached `address` within WAIT_SECONDS (the poll, here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        simulator.providers.observe()
        if any(
            e.direction == "out" for e in simulator.providers.transcript.between(channel, address)
        ):
            return True
        await asyncio.sleep(0.1)
    return False
