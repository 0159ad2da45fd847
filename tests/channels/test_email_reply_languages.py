"""Reply stripping in the languages supporters write in: what is kept as much as what is
cut (a line that merely starts like a quote header stays)."""

from __future__ import annotations

import pytest

from channels.email.reply import strip_reply

QUOTE = "\n> Will you come Saturday?\n> Reply STOP to stop.\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP\n\nLe lun. 7 déc. 2026 à 10:00, Rally <t@r.org> a écrit\u00a0:" + QUOTE, "STOP"),
        ("Oui\n\nLe 7 déc. 2026 à 10:00, Rally <t@r.org>\na écrit :" + QUOTE, "Oui"),
        ("Sí\n\nEl lun, 7 dic 2026 a las 10:00, Rally (<t@r.org>) escribió:" + QUOTE, "Sí"),
        ("Sim\n\nEm seg., 7 de dez. de 2026 às 10:00, Rally <t@r.org> escreveu:" + QUOTE, "Sim"),
        ("Ja\n\nAm Mo., 7. Dez. 2026 um 10:00 Uhr schrieb Rally <t@r.org>:" + QUOTE, "Ja"),
        ("Ndiyo\n\nMnamo Jum, 7 Des 2026 saa 10:00, Rally <t@r.org> aliandika:" + QUOTE, "Ndiyo"),
        ("STOP\n\nVon meinem iPhone gesendet" + QUOTE, "STOP"),
        ("STOP\n\nEnvoyé de mon iPhone" + QUOTE, "STOP"),
        ("STOP\n\nImetumwa kutoka iPhone yangu" + QUOTE, "STOP"),
        ("STOP\n\n-----Message d'origine-----\nDe : Rally\nEnvoyé : lundi\nÀ : moi", "STOP"),
        ("STOP\n\nKutoka: Rally\nImetumwa: Jumatatu\nKwa: Ana\nMada: Jumamosi\n\nx", "STOP"),
        # Kept: lines that begin like a header but are not one.
        ("Am Samstag um 10 bin ich da.\nBis dann", "Am Samstag um 10 bin ich da.\nBis dann"),
        ("Le 7 je peux venir.\nMerci", "Le 7 je peux venir.\nMerci"),
        ("Em 2026 vou ajudar.\nAbraço", "Em 2026 vou ajudar.\nAbraço"),
        (
            "Thanks!\nBob <b@x.org> said I should write",
            "Thanks!\nBob <b@x.org> said I should write",
        ),
        ("De nada.\nPara o sábado: sim", "De nada.\nPara o sábado: sim"),
        # A no-break space inside the reply itself is kept as written.
        ("10\u00a0h ça marche", "10\u00a0h ça marche"),
    ],
)
def test_strip_reply_in_each_language(text: str, expected: str) -> None:
    assert strip_reply(text) == expected
