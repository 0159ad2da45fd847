"""The ingest baseline: a bare FastAPI endpoint on the same uvicorn settings that only
parses the same form and answers 200 with the same empty TwiML."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

app = FastAPI()
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@app.post("/webhooks/twilio")
@app.post("/webhooks/twilio/status")
async def twilio(request: Request) -> Response:
    form = await request.form()
    if "MessageSid" not in form:
        return Response("missing MessageSid", status_code=400)
    return Response(TWIML, media_type="text/xml")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
