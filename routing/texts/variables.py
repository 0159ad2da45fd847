"""Merge variables in texts sent to many: `{first_name}`, `{name}`, `{fields.county}`, each
with an optional fallback after a bar (`{first_name|friend}`) used when the supporter has no
such value. `{{` and `}}` are a literal brace.

A text is parsed once (`parse`), checked when it is created (`check`: an unknown variable
is refused, naming it, before anything is sent), and rendered per recipient (`render`)
only when it has variables, so a plain announcement costs nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.field_values import values_by_supporter
from storage.models import CustomField, Supporter

BUILT_IN = ("first_name", "name")
FIELD_PREFIX = "fields."
_VARIABLE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?")


class TemplateError(ValueError):
    """A text whose variables cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Variable:
    name: str  # "first_name", "name" or "fields.<field>"
    fallback: str = ""


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Variable, ...]

    @property
    def has_variables(self) -> bool:
        return any(isinstance(p, Variable) for p in self.parts)

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(p for p in self.parts if isinstance(p, Variable))

    @property
    def field_names(self) -> frozenset[str]:
        """The custom fields the text uses (without the `fields.` prefix)."""
        return frozenset(
            v.name.removeprefix(FIELD_PREFIX)
            for v in self.variables
            if v.name.startswith(FIELD_PREFIX)
        )

    def render(self, name: str, fields: Mapping[str, str]) -> str:
        """The text for one supporter (`name`; `fields`: their custom values by name)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _value(part.name, name, fields)
            out.append(value if value else part.fallback)
        return "".join(out)

    def literal(self) -> str:
        """The text with every variable at its fallback (what a plain text renders to)."""
        return self.render("", {})


def _value(variable: str, name: str, fields: Mapping[str, str]) -> str:
    if variable == "name":
        return name.strip()
    if variable == "first_name":
        words = name.split()
        return words[0] if words else ""
    return fields.get(variable.removeprefix(FIELD_PREFIX), "")


def parse(text: str) -> Template:
    """The parts of `text`; TemplateError for a `{` never closed or an empty `{}`."""
    parts: list[str | Variable] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
            continue
        if char != "{":
            literal.append(char)
            i += 1
            continue
        end = text.find("}", i + 1)
        if end < 0:
            raise TemplateError("a '{' is never closed (write '{{' for a literal brace)")
        inside = text[i + 1 : end]
        variable, _, fallback = inside.partition("|")
        variable = variable.strip()
        if not variable:
            raise TemplateError("an empty variable '{}' (write '{{' for a literal brace)")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Variable(variable, fallback))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts))


def check(text: str, field_names: Iterable[str]) -> Template:
    """Parse `text` and refuse any variable that is not `first_name`, `name` or
    `fields.<a defined custom field>` (TemplateError naming it)."""
    template = parse(text)
    known = set(field_names)
    for variable in template.variables:
        name = variable.name
        if name in BUILT_IN:
            continue
        if name.startswith(FIELD_PREFIX) and name.removeprefix(FIELD_PREFIX) in known:
            continue
        if not _VARIABLE.fullmatch(name) or not name.startswith(FIELD_PREFIX):
            raise TemplateError(
                f"unknown variable {{{name}}}: use {{first_name}}, {{name}} or "
                "{fields.<custom field>} (write '{{' for a literal brace)"
            )
        raise TemplateError(f"unknown variable {{{name}}}: there is no custom field {name[7:]}")
    return template


async def check_text(session: AsyncSession, text: str) -> Template:
    """`check` against the custom fields defined now."""
    template = parse(text)
    if not template.has_variables:
        return template
    names = (await session.execute(select(col(CustomField.name)))).scalars().all()
    return check(text, names)


async def recipients_values(
    session: AsyncSession, template: Template, supporter_ids: Sequence[int]
) -> dict[int, tuple[str, Mapping[str, str]]]:
    """{supporter id: (name, custom values the text uses)} for rendering a page at once."""
    names = dict(
        (
            await session.execute(
                select(col(Supporter.id), col(Supporter.name)).where(
                    col(Supporter.id).in_(supporter_ids)
                )
            )
        ).all()
    )
    wanted = template.field_names
    values = await values_by_supporter(session, supporter_ids, only=wanted) if wanted else {}
    return {sid: (names.get(sid, ""), values.get(sid, {})) for sid in supporter_ids}
