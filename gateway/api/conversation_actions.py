"""Changes to a conversation: PATCH /api/v1/conversations/{id} (status, snooze, assignment
to a console user) and its private notes (/api/v1/conversations/{id}/notes). The console
calls the same functions (routing/inbox)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.exceptions import RequestValidationError

from gateway.api.conversations import conversation_public
from gateway.api.ids import IdPath
from gateway.api.schemas_messages import (
    ConversationPublic,
    ConversationUpdate,
    NoteCreate,
    NotePublic,
)
from gateway.api.scope import SessionDep, lead_team, visible_conversation
from gateway.auth import AnyRole, Context
from routing.inbox.notes import add_note, notes_of
from routing.inbox.state import InboxError, assign, set_status
from storage.models import ConversationNote, Supporter

router = APIRouter(prefix="/conversations", tags=["conversations"])


def invalid(error: InboxError, where: str = "body") -> RequestValidationError:
    """An InboxError as the API's usual 422 body."""
    return RequestValidationError(
        [{"loc": (where, error.field), "msg": error.message, "type": "value_error"}]
    )


def note_public(note: ConversationNote) -> NotePublic:
    assert note.id is not None
    return NotePublic(
        id=note.id,
        conversation_id=note.conversation_id,
        author=note.author,
        author_user_id=note.author_user_id,
        body=note.body,
        created_at=note.created_at,
    )


@router.patch("/{conversation_id}", response_model=ConversationPublic)
async def update_conversation(
    conversation_id: IdPath,
    body: ConversationUpdate,
    principal: AnyRole,
    session: SessionDep,
    ctx: Context,
) -> ConversationPublic:
    """Resolve, reopen or snooze (until `snoozed_until`) a conversation, and/or assign it
    to a console user (`assigned_user_id`, null to unassign; a team lead only to a lead
    of their team). Bad input → 422 and nothing changes."""
    convo = await visible_conversation(session, principal, conversation_id)
    now = ctx.clock()
    fields = body.model_fields_set
    try:
        if "status" in fields or "snoozed_until" in fields:
            set_status(
                convo, body.status or convo.status, now=now, snoozed_until=body.snoozed_until
            )
        if "assigned_user_id" in fields:
            await assign(session, convo, body.assigned_user_id, lead_team=lead_team(principal))
    except InboxError as exc:
        await session.rollback()
        raise invalid(exc) from exc
    session.add(convo)
    await session.commit()
    supporter = await session.get(Supporter, convo.supporter_id)
    return conversation_public(convo, supporter.name if supporter else "", now)


@router.get("/{conversation_id}/notes", response_model=list[NotePublic])
async def list_notes(
    conversation_id: IdPath, principal: AnyRole, session: SessionDep
) -> list[NotePublic]:
    """The conversation's private notes, oldest first (never sent to the supporter)."""
    await visible_conversation(session, principal, conversation_id)
    return [note_public(n) for n in await notes_of(session, conversation_id)]


@router.post(
    "/{conversation_id}/notes", status_code=status.HTTP_201_CREATED, response_model=NotePublic
)
async def create_note(
    conversation_id: IdPath,
    body: NoteCreate,
    principal: AnyRole,
    session: SessionDep,
    ctx: Context,
) -> NotePublic:
    """Add a private note between organizers; it is never sent."""
    await visible_conversation(session, principal, conversation_id)
    try:
        note = await add_note(
            session,
            conversation_id,
            body.body,
            author=principal.label,
            author_user_id=principal.user_id,
            now=ctx.clock(),
        )
    except InboxError as exc:
        raise invalid(exc) from exc
    await session.commit()
    return note_public(note)
