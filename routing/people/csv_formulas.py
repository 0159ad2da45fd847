"""Formula escaping for the supporters CSV (OWASP "CSV Injection").

Excel, LibreOffice and Google Sheets evaluate a cell that starts with `=`, `+`, `-`, `@`,
a tab or a carriage return as a formula, and supporters choose much of what the export
holds (a name sent by an unknown sender, an onboarding answer). The export prefixes such a
cell with a single quote, which spreadsheets show as text; the import drops that quote
again, so an exported file re-imports unchanged.

Phone numbers are the exception: an address column keeps a value in the canonical form
`routing.people.addresses` gives every address it validates on the way in when that form is a
number to a spreadsheet, never a formula (E.164 `+15551234567`, Telegram chat id
`-1001234567890`). An email address can begin with `-`, `+` or `=` and is escaped like text.
"""

from __future__ import annotations

import re

from routing.people.addresses import E164, TELEGRAM_CHAT_ID

FORMULA_STARTS = frozenset("=+-@\t\r")
# An escaped cell: quotes, then a formula character. A value that itself begins this way
# (a literal "'=x") gets one more quote, so the import's dropping one quote gives it back.
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
# Address columns whose valid values are numbers to a spreadsheet.
_NUMBERS = {"phone": E164, "whatsapp": E164, "telegram": TELEGRAM_CHAT_ID, "signal": E164}


def escape_cell(column: str, value: str) -> str:
    """`value` as the export writes it in `column`."""
    if not value:
        return value
    number = _NUMBERS.get(column)
    if number is not None and number.fullmatch(value):
        return value
    if value[0] in FORMULA_STARTS or _ESCAPED.match(value):
        return "'" + value
    return value


def unescape_cell(cell: str) -> str:
    """A cell as the import reads it: an escaped cell without its first quote."""
    return cell[1:] if _ESCAPED.match(cell) else cell
