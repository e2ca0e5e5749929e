"""The documents' words in German (the keys of ``en.py``)."""

WORDS = {
    # --- the frame: titles, facts, footer -------------------------------------------------------
    "statement_title": "Nutzungsabrechnung",
    "group_title": "Gruppenabrechnung: {name}",
    "summary_title": "Nutzungsübersicht",
    "provisional_title": "{title} — vorläufig",
    "statement_no": "Abrechnungsnr.",
    "statement_footer": "Abrechnungsnr. {number}",
    "summary_footer": "Übersicht Nr. {number}",
    "page": "Seite {page} von {pages}",
    "issued": "Ausgestellt",
    "due": "Fällig",
    "period": "Zeitraum",
    "period_range": "{start} – {end}",
    "tax_id": "USt-IdNr.: {id}",
    "statement_for": "Abrechnung für",
    "groups_line": ("Gruppe: {names}", "Gruppen: {names}"),
    "group_of": ("Gruppe mit {n} Mitglied", "Gruppe mit {n} Mitgliedern"),
    # --- final or provisional ---------------------------------------------------------------------
    "final": ("<b>Endgültig.</b> Abgeschlossen am {moment}: Der Zeitraum ist vorbei und die Kosten jeder Antwort darin "
              "stehen fest."),
    "provisional": "<b>Vorläufig:</b> {reasons}. Die Beträge können sich noch ändern.",
    "runs_until": "Der Zeitraum läuft noch bis einschließlich {date}",
    "awaiting": ("{n} Antwort ({amount} bisher) wartet noch auf die Bestätigung der Kosten durch OpenRouter",
                 "{n} Antworten ({amount} bisher) warten noch auf die Bestätigung der Kosten durch OpenRouter"),
    "reasons_joiner": "; ",
    # --- table headings and rows ----------------------------------------------------------------
    "model": "Modell",
    "answers": "Antworten",
    "input_tokens": "Eingabe-Tokens",
    "output_tokens": "Ausgabe-Tokens",
    "cost": "Kosten",
    "subtotal": "Zwischensumme",
    "total": "Summe",
    "total_due": "Zu zahlen",
    "user": "Nutzer",
    "member": "Mitglied",
    "email": "E-Mail",
    "usage": "Nutzung",
    "charged": "Berechnet",
    "fees": "Gebühren",
    "group": "Gruppe",
    "members": "Mitglieder",
    "budget": "Budget",
    "spent": "Verbraucht",
    "used": "Anteil",
    "not_billed": "nicht berechnet",
    "unattributed": "Keinem Nutzer zugeordnet",
    # --- sections --------------------------------------------------------------------------------
    "cost_per_day": "Kosten pro Tag",
    "no_usage": "Keine Nutzung in diesem Zeitraum.",
    "charges": "Posten",
    "models": "Modelle",
    "top_models": "Meistgenutzte Modelle",
    "by_group": "Nach Gruppe",
    "by_group_note": "Mitglieder mit Nutzung im Zeitraum; wer mehreren Gruppen angehört, zählt in jeder.",
    "budgets_heading": "Budgets und tatsächliche Ausgaben",
    "budgets_note": ("Verbraucht im eigenen Zeitraum jedes Budgets (Tag, Woche, Monat oder seit Beginn eines einmaligen "
                     "Kontingents), der das Ende dieses Zeitraums enthält."),
    "per_day": "pro Tag",
    "per_week": "pro Woche",
    "per_month": "pro Monat",
    "one_off": "einmalig",
    "shared_budget": "Gemeinsames Budget",
    "shared_used": "Verbraucht {when}: {spent} von {limit}{share}.",
    "share": " ({percent})",
    "since": "seit dem {date}",
    "on_day": "am {date}",
    "week_from": "in der Woche ab dem {date}",
    "in_month": "im {month}",
    "group_rule": ("Jedes Mitglied wird wie auf seiner eigenen Abrechnung belastet: Nutzung, Aufschlag, Grundgebühr und "
                   "Mindestbetrag gelten für jedes Mitglied einzeln, und der zu zahlende Betrag der Gruppe ist die Summe der "
                   "Beträge ihrer Mitglieder."),
    # --- charges ---------------------------------------------------------------------------------
    "markup": "Aufschlag {percent}",
    "base_fee": "Grundgebühr",
    "minimum_charge": "Ausgleich zum Mindestbetrag",
    # --- Open WebUI's own tasks --------------------------------------------------------------------
    "tasks": ("Aufgaben von Open WebUI (Titel, Tags, Folgefragen): {n} Aufruf, {amount}; in der Nutzung oben enthalten.",
              "Aufgaben von Open WebUI (Titel, Tags, Folgefragen): {n} Aufrufe, {amount}; in der Nutzung oben enthalten."),
    # --- prepaid balance -------------------------------------------------------------------------
    "prepaid_balance": "Guthaben",
    "opening_balance": "Anfangsguthaben",
    "top_up": "Aufladung {date}",
    "adjustment": "Korrektur {date}",
    "closing_balance": "Endguthaben",
    "balance_note": ("Jeder Betrag ist aus dem genauen Wert auf den Cent gerundet; das Endguthaben ist aus dem genauen "
                     "Guthaben gerundet, daher können die Zeilen um einen Cent davon abweichen."),
    # --- notes: where each cost came from ---------------------------------------------------------
    "confirmed_share": "{percent} der Nutzung wurden mit OpenRouters eigenem Nachweis jeder Generierung bestätigt.",
    "inline_waiting": ("{n} Antwort ({amount}) ist wie mit der Antwort gemeldet verbucht und wartet auf die Bestätigung durch OpenRouter.",
                       "{n} Antworten ({amount}) sind wie mit der Antwort gemeldet verbucht und warten auf die Bestätigung durch OpenRouter."),
    "inline_kept": ("{n} Antwort ({amount}) stammt aus importiertem Verlauf oder von Antworten, über die OpenRouter keinen "
                    "Nachweis führt, zu den damals gemeldeten Kosten; es gibt nichts, womit sie bestätigt werden könnten, "
                    "daher bleiben sie so.",
                    "{n} Antworten ({amount}) stammen aus importiertem Verlauf oder von Antworten, über die OpenRouter keinen "
                    "Nachweis führt, zu den damals gemeldeten Kosten; es gibt nichts, womit sie bestätigt werden könnten, "
                    "daher bleiben sie so."),
    "estimate_waiting": ("{n} Antwort ({amount}) wurde aus Tokens und dem Preis des Modells geschätzt und wartet auf die "
                         "Bestätigung durch OpenRouter.",
                         "{n} Antworten ({amount}) wurden aus Tokens und dem Preis des Modells geschätzt und warten auf die "
                         "Bestätigung durch OpenRouter."),
    "estimate_kept": ("{n} Antwort ({amount}) wurde aus Tokens und dem Preis des Modells geschätzt.",
                      "{n} Antworten ({amount}) wurden aus Tokens und dem Preis des Modells geschätzt."),
    "pending_waiting": ("{n} Antwort ({amount}) wartet auf die Bestätigung durch OpenRouter (bisher mit {zero} gezählt).",
                        "{n} Antworten ({amount}) warten auf die Bestätigung durch OpenRouter (bisher mit {zero} gezählt)."),
    "pending_kept": ("{n} Antwort ({amount}) hat keine Kosten (mit {zero} gezählt).",
                     "{n} Antworten ({amount}) haben keine Kosten (mit {zero} gezählt)."),
    "unpriced": ("{n} Antwort ({amount}) hat keinen bekannten Preis (mit {zero} gezählt).",
                 "{n} Antworten ({amount}) haben keinen bekannten Preis (mit {zero} gezählt)."),
    "pruned": ("Antworten vor dem {date} wurden nach der Aufbewahrungsregel gelöscht; ihre Beträge stammen aus den "
               "aufbewahrten Tagessummen."),
    "converted": "Beträge aus US-Dollar umgerechnet zum festen Kurs 1 USD = {rate} {currency}.",
    "rounding": ("Beträge sind aus den genauen Werten auf den Cent gerundet (ein halber Cent zur geraden Ziffer); die Summe einer "
                 "Tabelle ist aus der genauen Summe gerundet, daher können ihre Zeilen um einen Cent davon abweichen. "
                 "Die Abrechnung wird Zeile für Zeile gerundet, ihre Summe ist die Summe dieser Zeilen."),
    "byok_split": ("Nutzung {usage} = Anbieter {provider} (Antworten über die eigenen Anbieterschlüssel des Teams, von den "
                   "Anbietern berechnet) + OpenRouter {openrouter} (für diese Antworten nur seine Gebühr)."),
    "cache_saved": "Durch Prompt-Caching gespart: {amount}.",
    "cache_cost": "Prompt-Caching hat {amount} mehr gekostet als gespart (Cache-Schreibvorgänge).",
    # --- summary ---------------------------------------------------------------------------------
    "summary_rounding": ("Der zu zahlende Betrag ist die Summe der Abrechnungen, jede Zeile für Zeile auf den Cent gerundet; "
                         "er weicht von der einmal gerundeten Nutzungssumme plus Gebühren um {amount} ab."),
    "reconciliation": "Abgleich mit OpenRouter",
    "openrouter_billed": "Von OpenRouter für den Schlüssel berechnet",
    "attributed": "Den Antworten im Journal zugeordnet",
    "unattributed_spend": "Nicht zugeordnet (Titel, Tags, Folgefragen, andere Apps)",
    "shared_by_use": "Nicht zugeordnete Ausgaben nach Nutzung verteilt",
    "share_of_unattributed": "Anteil am nicht Zugeordneten",
    "reconciliation_only": ("Verglichen werden nur die eigenen Beträge von OpenRouter; für Antworten über die eigenen "
                            "Anbieterschlüssel des Teams ist das die Gebühr von OpenRouter, den Rest berechnen die Anbieter."),
    "reconciliation_unknown": ("Der Betrag von OpenRouter für diesen Zeitraum ist unbekannt: Der Zähler vergleicht mit "
                               "regelmäßigen Ablesungen dessen, was OpenRouter für seinen Schlüssel zählt, hat aber nicht je "
                               "eine Ablesung vor und nach diesem Zeitraum."),
    "reconciliation_between": ("Verglichen zwischen den Ablesungen des laufenden Zählerstands von OpenRouter am {start} und "
                               "am {end}; Antworten, die nahe an einer Ablesung berechnet wurden, können auf jede Seite fallen."),
}
