"""`rallypoint doctor` for email: the SMTP server answers, greets, takes STARTTLS when
asked to, and accepts our login. Nothing is sent."""

from __future__ import annotations

import asyncio

import aiosmtplib

from channels.checks import CheckResult, failed, passed
from channels.email.config import EmailConfig

NAME = "email smtp"


async def check_email(config: EmailConfig) -> list[CheckResult]:
    implicit_tls = config.port == 465
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=implicit_tls,
        start_tls=config.starttls and not implicit_tls,
        timeout=config.timeout,
    )
    steps = "connect, EHLO" + (", STARTTLS" if config.starttls and not implicit_tls else "")
    try:
        async with asyncio.timeout(config.timeout * 4):
            await smtp.connect()
            await smtp.ehlo()
            if config.username and config.password:
                steps += ", login"
                await smtp.login(config.username, config.password)
            await smtp.quit()
    except aiosmtplib.SMTPResponseException as exc:
        return [failed(NAME, f"{config.host}:{config.port}: {exc.code} {exc.message}")]
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # aiosmtplib's texts and socket errors name the server and the step, nothing else.
        reason = str(exc) or type(exc).__name__
        return [failed(NAME, f"{config.host}:{config.port}: {reason}")]
    finally:
        smtp.close()
    return [passed(NAME, f"{config.host}:{config.port}: {steps} accepted")]
