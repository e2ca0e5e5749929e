"""Finding users by what a person types: case- and accent-insensitive in every script.

SQLite's LIKE folds ASCII only, so names are folded here: "muller" finds "Zoë Müller",
"дмит" finds "Дмитрий Смирнов", "jose" finds "José". A team's users are few (hundreds, a few
thousand at most), so folding them per search costs about a millisecond and needs no stored key.
"""

from __future__ import annotations

import unicodedata

from ..ledger import UNATTRIBUTED, UNATTRIBUTED_LABEL

# letters that have no decomposition but are read as their base letter
_LETTERS = str.maketrans({"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "Æ": "ae",
                          "œ": "oe", "Œ": "oe", "þ": "th", "ð": "d"})


def fold(text: str | None) -> str:
    """Lower case without accents: "Zoë Müller" -> "zoe muller", "Дмитрий" -> "дмитрии"."""
    decomposed = unicodedata.normalize("NFKD", (text or "").translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def matching_user_ids(db, text: str) -> list[str]:
    """Ids of the users whose name, email or id contains ``text`` (folded)."""
    wanted = fold(text.strip())
    found = []
    for row in db.query("SELECT id, name, email FROM users"):
        name = UNATTRIBUTED_LABEL if row["id"] == UNATTRIBUTED else row["name"]
        if wanted in fold(name) or wanted in fold(row["email"]) or wanted == fold(row["id"]):
            found.append(row["id"])
    return found
