"""Which column of an import file means what: ours, and the exports of the CRMs organizers use.

Headers are compared loosely (case, spaces, `-` and `_` ignored: "First Name", "first_name"
and "FirstName" are one), so the column names of these exports map to ours:
- Action Network: first_name, last_name, email, zip_code, can2_phone, can2_sms_status
  (`unsubscribed` opts the number out);
- NationBuilder: first_name, middle_name, last_name, email, mobile_number, phone_number,
  mobile_opt_in / email_opt_in (`false`, `N`: that address opted out), tag_list (commas);
- Mobilize: "first name", "last name", email, phone, zip;
- EveryAction / VAN: VanID, FirstName, LastName, CellPhone, Email.
A column none of these name is a custom field (slug of its header: "Zip Code" → zip_code).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# Our own columns (what the export writes), by role.
ADDRESS_COLUMNS = {
    "phone": "sms",
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "email": "email",
    "signal": "signal",
}
LIST_COLUMNS = ("preferred_channels", "tags", "teams")
TEXT_COLUMNS = ("language", "timezone")
FLAG_COLUMNS = ("data_saver",)  # true/false, yes/no, 1/0; empty leaves it as it is
COLUMNS = ("name", *ADDRESS_COLUMNS, *LIST_COLUMNS, *TEXT_COLUMNS, *FLAG_COLUMNS)

# Loose header → role. A role given by several columns takes the first non-empty cell, in
# this order (a phone column of ours before a CRM's mobile, before its other phone).
ALIASES: dict[str, str] = {
    "name": "name",
    "fullname": "name",
    "firstname": "first_name",
    "first": "first_name",
    "middlename": "middle_name",
    "lastname": "last_name",
    "last": "last_name",
    "phone": "phone",
    "mobilenumber": "phone",  # NationBuilder
    "cellphone": "phone",  # VAN
    "mobile": "phone",
    "mobilephone": "phone",
    "can2phone": "phone",  # Action Network
    "phonenumber": "phone",  # NationBuilder's other number, Mobilize
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "signal": "signal",
    "email": "email",
    "emailaddress": "email",
    "preferredchannels": "preferred_channels",
    "tags": "tags",
    "taglist": "tag_list",  # NationBuilder: comma-separated
    "teams": "teams",
    "language": "language",
    "timezone": "timezone",
    "datasaver": "data_saver",
    # Consent, honoured (never used to opt anyone back in).
    "optedout": "opted_out",  # ours (the export): the supporter is opted out
    "can2smsstatus": "sms_status",  # Action Network: subscribed / unsubscribed / bouncing
    "mobileoptin": "sms_opt_in",  # NationBuilder: Y / N
    "smsoptin": "sms_opt_in",
    "emailoptin": "email_opt_in",  # NationBuilder: Y / N
    # Ours, written by the export, not imported.
    "id": "ignored",
    "lastinboundat": "ignored",
}
# Where several columns give one role, the earlier header wins (by its loose form).
PRIORITY = {"phone": 0, "mobilenumber": 1, "cellphone": 2, "mobile": 3, "mobilephone": 4}
_FALSE = frozenset({"false", "f", "n", "no", "0", "off", "unsubscribed", "opted out"})
_TRUE = frozenset({"true", "t", "y", "yes", "1", "on"})


def loose(header: str) -> str:
    return re.sub(r"[\s_\-.]+", "", header.strip().lower())


def slug(header: str) -> str:
    """A custom field's name for a column: "Zip Code" → zip_code, "2024 vote" → f_2024_vote."""
    text = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    if not text:
        return ""
    return (text if text[0].isalpha() else f"f_{text}")[:64]


@dataclass
class ColumnMap:
    """How one file's header reads: role → column positions, and the custom field columns."""

    roles: dict[str, list[int]] = field(default_factory=dict)
    custom: dict[int, str] = field(default_factory=dict)  # position → field slug

    @property
    def has_name(self) -> bool:
        return "name" in self.roles or "first_name" in self.roles or "last_name" in self.roles

    def cell(self, cells: Sequence[str], role: str) -> str:
        for i in self.roles.get(role, ()):
            if i < len(cells) and cells[i].strip():
                return cells[i].strip()
        return ""


def map_header(header: Sequence[str]) -> ColumnMap:
    mapped = ColumnMap()
    ranked: dict[str, list[tuple[int, int]]] = {}
    for i, raw in enumerate(header):
        key = loose(raw)
        if not key:
            continue
        role = ALIASES.get(key)
        if role is None:
            name = slug(raw)
            if name and name not in mapped.custom.values():
                mapped.custom[i] = name
            continue
        ranked.setdefault(role, []).append((PRIORITY.get(key, 9), i))
    mapped.roles = {role: [i for _, i in sorted(at)] for role, at in ranked.items()}
    return mapped


def is_false(value: str) -> bool:
    return value.strip().lower() in _FALSE


def is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


class BadCell(ValueError):
    """A cell our own column cannot take (the row is rejected with this reason)."""


@dataclass
class RowData:
    """One row in our terms."""

    name: str
    addresses: list[tuple[str, str]]  # (column, cell): phone, whatsapp, telegram, email
    lists: dict[str, list[str]]
    texts: dict[str, str]
    custom: dict[str, str]  # field slug → cell
    flags: dict[str, bool] = field(default_factory=dict)  # FLAG_COLUMNS given
    opted_out: bool = False
    sms_opted_out: bool = False
    email_opted_out: bool = False


def read_row(columns: ColumnMap, cells: Sequence[str]) -> RowData:
    name = columns.cell(cells, "name") or " ".join(
        part
        for part in (columns.cell(cells, r) for r in ("first_name", "middle_name", "last_name"))
        if part
    )
    addresses = [(c, columns.cell(cells, c)) for c in ADDRESS_COLUMNS if columns.cell(cells, c)]
    lists: dict[str, list[str]] = {}
    for role in LIST_COLUMNS:
        if columns.cell(cells, role):
            lists[role] = [p.strip() for p in columns.cell(cells, role).split("|") if p.strip()]
    if columns.cell(cells, "tag_list"):
        extra = [p.strip() for p in columns.cell(cells, "tag_list").split(",") if p.strip()]
        lists["tags"] = list(dict.fromkeys([*lists.get("tags", []), *extra]))
    texts = {r: columns.cell(cells, r) for r in TEXT_COLUMNS if columns.cell(cells, r)}
    custom = {
        slug_: cells[i].strip()
        for i, slug_ in columns.custom.items()
        if i < len(cells) and cells[i].strip()
    }
    flags = {}
    for role in FLAG_COLUMNS:
        value = columns.cell(cells, role).strip().lower()
        if value in _TRUE or value in _FALSE:
            flags[role] = value in _TRUE
        elif value:
            raise BadCell(f"{role}: give true or false")
    sms_status = columns.cell(cells, "sms_status").lower()
    return RowData(
        name=name,
        addresses=addresses,
        lists=lists,
        texts=texts,
        custom=custom,
        flags=flags,
        opted_out=is_true(columns.cell(cells, "opted_out")),
        sms_opted_out=sms_status == "unsubscribed" or is_false(columns.cell(cells, "sms_opt_in")),
        email_opted_out=is_false(columns.cell(cells, "email_opt_in")),
    )
