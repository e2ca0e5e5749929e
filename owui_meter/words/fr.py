"""The documents' words in French (the keys of ``en.py``). French counts 0 and 1 as one."""

WORDS = {
    # --- the frame: titles, facts, footer -------------------------------------------------------
    "statement_title": "Relevé d'utilisation",
    "group_title": "Relevé de groupe\u00a0: {name}",
    "summary_title": "Synthèse d'utilisation",
    "provisional_title": "{title} — provisoire",
    "statement_no": "Relevé n°",
    "statement_footer": "Relevé n° {number}",
    "summary_footer": "Synthèse n° {number}",
    "page": "Page {page} sur {pages}",
    "issued": "Émis le",
    "due": "Échéance",
    "period": "Période",
    "period_range": "du {start} au {end}",
    "tax_id": "N° de TVA\u00a0: {id}",
    "statement_for": "Relevé pour",
    "groups_line": ("Groupe\u00a0: {names}", "Groupes\u00a0: {names}"),
    "group_of": ("Groupe de {n} membre", "Groupe de {n} membres"),
    # --- final or provisional ---------------------------------------------------------------------
    "final": ("<b>Définitif.</b> Arrêté le {moment}\u00a0: la période est terminée et le coût de chaque réponse qu'elle "
              "contient est établi."),
    "provisional": "<b>Provisoire\u00a0:</b> {reasons}. Les montants peuvent encore changer.",
    "runs_until": "la période court jusqu'au {date} inclus",
    "awaiting": ("{n} réponse ({amount} à ce jour) attend encore la confirmation de son coût par OpenRouter",
                 "{n} réponses ({amount} à ce jour) attendent encore la confirmation de leur coût par OpenRouter"),
    "reasons_joiner": "\u202f; ",
    # --- table headings and rows ----------------------------------------------------------------
    "model": "Modèle",
    "answers": "Réponses",
    "input_tokens": "Tokens en entrée",
    "output_tokens": "Tokens en sortie",
    "cost": "Coût",
    "subtotal": "Sous-total",
    "total": "Total",
    "total_due": "Montant dû",
    "user": "Utilisateur",
    "member": "Membre",
    "email": "E-mail",
    "usage": "Utilisation",
    "charged": "Facturé",
    "fees": "Frais",
    "group": "Groupe",
    "members": "Membres",
    "budget": "Budget",
    "spent": "Dépensé",
    "used": "Utilisé",
    "not_billed": "non facturé",
    "unattributed": "Non attribué à un utilisateur",
    # --- sections --------------------------------------------------------------------------------
    "cost_per_day": "Coût par jour",
    "no_usage": "Aucune utilisation sur cette période.",
    "charges": "Facturation",
    "models": "Modèles",
    "top_models": "Modèles les plus utilisés",
    "by_group": "Par groupe",
    "by_group_note": "Membres ayant une utilisation sur la période\u202f; un membre de plusieurs groupes compte dans chacun.",
    "budgets_heading": "Budgets et dépenses réelles",
    "budgets_note": ("Dépensé dans la période propre à chaque budget (jour, semaine, mois ou depuis le début d'une enveloppe "
                     "unique) qui contient la fin de cette période."),
    "per_day": "par jour",
    "per_week": "par semaine",
    "per_month": "par mois",
    "one_off": "unique",
    "shared_budget": "Budget partagé",
    "shared_used": "Utilisé {when}\u00a0: {spent} sur {limit}{share}.",
    "share": " ({percent})",
    "since": "depuis le {date}",
    "on_day": "le {date}",
    "week_from": "dans la semaine du {date}",
    "in_month": "en {month}",
    "group_rule": ("Chaque membre est facturé comme sur son propre relevé\u00a0: l'utilisation, la majoration, les frais fixes et "
                   "le montant minimum s'appliquent à chaque membre séparément, et le montant dû du groupe est la somme des "
                   "montants de ses membres."),
    # --- charges ---------------------------------------------------------------------------------
    "markup": "Majoration {percent}",
    "base_fee": "Frais fixes",
    "minimum_charge": "Complément au montant minimum",
    # --- Open WebUI's own tasks --------------------------------------------------------------------
    "tasks": ("Tâches d'Open WebUI (titres, étiquettes, questions de suivi)\u00a0: {n} appel, {amount}\u202f; inclus dans l'utilisation ci-dessus.",
              "Tâches d'Open WebUI (titres, étiquettes, questions de suivi)\u00a0: {n} appels, {amount}\u202f; inclus dans l'utilisation ci-dessus."),
    # --- prepaid balance -------------------------------------------------------------------------
    "prepaid_balance": "Solde prépayé",
    "opening_balance": "Solde d'ouverture",
    "top_up": "Rechargement {date}",
    "adjustment": "Ajustement {date}",
    "closing_balance": "Solde de clôture",
    "balance_note": ("Chaque montant est arrondi au centime à partir du chiffre exact\u202f; le solde de clôture est arrondi à partir "
                     "du solde exact, les lignes peuvent donc s'en écarter d'un centime."),
    # --- notes: where each cost came from ---------------------------------------------------------
    "confirmed_share": "{percent} de l'utilisation a été confirmée par le relevé d'OpenRouter de chaque génération.",
    "inline_waiting": ("{n} réponse ({amount}) est comptée au coût indiqué avec la réponse, en attente de la confirmation d'OpenRouter.",
                       "{n} réponses ({amount}) sont comptées au coût indiqué avec la réponse, en attente de la confirmation d'OpenRouter."),
    "inline_kept": ("{n} réponse ({amount}) provient de l'historique importé ou de réponses dont OpenRouter ne garde aucune trace, "
                    "au coût indiqué à l'époque\u202f; rien ne permet de la confirmer, elle reste donc telle quelle.",
                    "{n} réponses ({amount}) proviennent de l'historique importé ou de réponses dont OpenRouter ne garde aucune "
                    "trace, au coût indiqué à l'époque\u202f; rien ne permet de les confirmer, elles restent donc telles quelles."),
    "estimate_waiting": ("{n} réponse ({amount}) a été estimée d'après les tokens et le prix du modèle, en attente de la "
                         "confirmation d'OpenRouter.",
                         "{n} réponses ({amount}) ont été estimées d'après les tokens et le prix du modèle, en attente de la "
                         "confirmation d'OpenRouter."),
    "estimate_kept": ("{n} réponse ({amount}) a été estimée d'après les tokens et le prix du modèle.",
                      "{n} réponses ({amount}) ont été estimées d'après les tokens et le prix du modèle."),
    "pending_waiting": ("{n} réponse ({amount}) attend la confirmation d'OpenRouter (comptée {zero} pour l'instant).",
                        "{n} réponses ({amount}) attendent la confirmation d'OpenRouter (comptées {zero} pour l'instant)."),
    "pending_kept": ("{n} réponse ({amount}) n'a pas de coût (comptée {zero}).",
                     "{n} réponses ({amount}) n'ont pas de coût (comptées {zero})."),
    "unpriced": ("{n} réponse ({amount}) n'a aucun prix connu (comptée {zero}).",
                 "{n} réponses ({amount}) n'ont aucun prix connu (comptées {zero})."),
    "pruned": ("Les réponses antérieures au {date} ont été supprimées selon la politique de conservation\u202f; leurs montants "
               "proviennent des totaux journaliers conservés."),
    "converted": "Montants convertis depuis le dollar américain au taux fixe de 1 USD = {rate} {currency}.",
    "rounding": ("Les montants sont arrondis au centime, au pair le plus proche, à partir des chiffres exacts\u202f; le total d'un "
                 "tableau est arrondi à partir de la somme exacte, ses lignes peuvent donc s'en écarter d'un centime. La "
                 "facturation est arrondie ligne par ligne et son total est la somme de ces lignes."),
    "byok_split": ("Utilisation {usage} = fournisseurs {provider} (réponses via les propres clés de fournisseur de l'équipe, "
                   "facturées par les fournisseurs) + OpenRouter {openrouter} (sur ces réponses, seulement ses frais)."),
    "cache_saved": "Économisé grâce au cache des prompts\u00a0: {amount}.",
    "cache_cost": "Le cache des prompts a coûté {amount} de plus qu'il n'a économisé (écritures en cache).",
    # --- summary ---------------------------------------------------------------------------------
    "summary_rounding": ("Le montant dû est la somme des relevés, chacun arrondi au centime ligne par ligne\u202f; il diffère du "
                         "total d'utilisation arrondi une fois, plus les frais, de {amount}."),
    "reconciliation": "Rapprochement avec OpenRouter",
    "openrouter_billed": "Facturé par OpenRouter pour la clé",
    "attributed": "Attribué aux réponses du registre",
    "unattributed_spend": "Non attribué (titres, étiquettes, questions de suivi, autres applications)",
    "shared_by_use": "Dépenses non attribuées réparties selon l'utilisation",
    "share_of_unattributed": "Part du non attribué",
    "reconciliation_only": ("Seuls les montants propres à OpenRouter sont comparés\u202f; pour les réponses via les propres clés de "
                            "fournisseur de l'équipe, ce sont les frais d'OpenRouter, et les fournisseurs facturent le reste."),
    "reconciliation_unknown": ("Le montant d'OpenRouter pour cette période est inconnu\u00a0: le compteur compare avec des relevés "
                               "périodiques de ce qu'OpenRouter compte pour sa clé, et n'en a pas à la fois d'avant et "
                               "d'après cette période."),
    "reconciliation_between": ("Comparé entre les relevés du total cumulé d'OpenRouter du {start} et du {end}\u202f; les réponses "
                               "facturées près d'un relevé peuvent tomber d'un côté ou de l'autre."),
}
