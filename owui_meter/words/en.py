"""The documents' words in English (the reference: every other language has the same keys).

A pair is a counted phrase (one, many); ``{n}`` is the count. Phrases are paragraph markup.
"""

WORDS = {
    # --- the frame: titles, facts, footer -------------------------------------------------------
    "statement_title": "Usage statement",
    "group_title": "Group statement: {name}",
    "summary_title": "Usage summary",
    "provisional_title": "{title} — Provisional",
    "statement_no": "Statement no.",
    "statement_footer": "Statement no. {number}",
    "summary_footer": "Summary no. {number}",
    "page": "Page {page} of {pages}",
    "issued": "Issued",
    "due": "Due",
    "period": "Period",
    "period_range": "{start} – {end}",
    "tax_id": "Tax ID: {id}",
    "statement_for": "Statement for",
    "groups_line": ("Group: {names}", "Groups: {names}"),
    "group_of": ("Group of {n} member", "Group of {n} members"),
    # --- final or provisional ---------------------------------------------------------------------
    "final": "<b>Final.</b> Finalised on {moment}: the period has ended and the cost of every answer in it is settled.",
    "provisional": "<b>Provisional:</b> {reasons}. The figures can still change.",
    "runs_until": "the period runs until the end of {date}",
    "awaiting": ("{n} answer ({amount} so far) is still awaiting OpenRouter's confirmation of the cost",
                 "{n} answers ({amount} so far) are still awaiting OpenRouter's confirmation of the cost"),
    "reasons_joiner": "; ",
    # --- table headings and rows ----------------------------------------------------------------
    "model": "Model",
    "answers": "Answers",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost": "Cost",
    "subtotal": "Subtotal",
    "total": "Total",
    "total_due": "Total due",
    "user": "User",
    "member": "Member",
    "email": "Email",
    "usage": "Usage",
    "charged": "Charged",
    "fees": "Fees",
    "group": "Group",
    "members": "Members",
    "budget": "Budget",
    "spent": "Spent",
    "used": "Used",
    "not_billed": "not billed",
    "unattributed": "Not attributed to a user",
    # --- sections --------------------------------------------------------------------------------
    "cost_per_day": "Cost per day",
    "no_usage": "No usage in this period.",
    "charges": "Charges",
    "models": "Models",
    "top_models": "Top models",
    "by_group": "By group",
    "by_group_note": "Members with usage in the period; a member of several groups counts in each.",
    "budgets_heading": "Budgets against actual spend",
    "budgets_note": ("Spent in each budget's own period (day, week, month or since a one-off allowance began) that holds the "
                     "end of this period."),
    "per_day": "per day",
    "per_week": "per week",
    "per_month": "per month",
    "one_off": "one-off",
    "shared_budget": "Shared budget",
    "shared_used": "Used {when}: {spent} of {limit}{share}.",
    "share": " ({percent})",
    "since": "since {date}",
    "on_day": "on {date}",
    "week_from": "in the week from {date}",
    "in_month": "in {month}",
    "group_rule": ("Each member is charged as on their own statement: usage, markup, base fee and minimum charge apply to "
                   "each member separately, and the group's total due is the sum of its members' charges."),
    # --- charges ---------------------------------------------------------------------------------
    "markup": "Markup {percent}",
    "base_fee": "Base fee",
    "minimum_charge": "Minimum charge adjustment",
    # --- Open WebUI's own tasks --------------------------------------------------------------------
    "tasks": ("Open WebUI tasks (titles, tags, follow-ups): {n} call, {amount}; included in the usage above.",
              "Open WebUI tasks (titles, tags, follow-ups): {n} calls, {amount}; included in the usage above."),
    # --- prepaid balance -------------------------------------------------------------------------
    "prepaid_balance": "Prepaid balance",
    "opening_balance": "Opening balance",
    "top_up": "Top-up {date}",
    "adjustment": "Adjustment {date}",
    "closing_balance": "Closing balance",
    "balance_note": ("Each amount is rounded to the cent from the exact figure; the closing balance is rounded from the exact "
                     "balance, so the lines may differ from it by a cent."),
    # --- notes: where each cost came from ---------------------------------------------------------
    "confirmed_share": "{percent} of the usage was confirmed against OpenRouter's own record of each generation.",
    "inline_waiting": ("{n} answer ({amount}) was as reported with the answer, awaiting OpenRouter's confirmation.",
                       "{n} answers ({amount}) were as reported with the answer, awaiting OpenRouter's confirmation."),
    "inline_kept": ("{n} answer ({amount}) was imported history, or answers OpenRouter keeps no record of, at the cost reported "
                    "at the time; there is nothing to confirm them against, so they stay as they are.",
                    "{n} answers ({amount}) were imported history, or answers OpenRouter keeps no record of, at the cost reported "
                    "at the time; there is nothing to confirm them against, so they stay as they are."),
    "estimate_waiting": ("{n} answer ({amount}) was estimated from tokens and the model's price, awaiting OpenRouter's confirmation.",
                         "{n} answers ({amount}) were estimated from tokens and the model's price, awaiting OpenRouter's confirmation."),
    "estimate_kept": ("{n} answer ({amount}) was estimated from tokens and the model's price.",
                      "{n} answers ({amount}) were estimated from tokens and the model's price."),
    "pending_waiting": ("{n} answer ({amount}) was awaiting OpenRouter's confirmation (counted as {zero} so far).",
                        "{n} answers ({amount}) were awaiting OpenRouter's confirmation (counted as {zero} so far)."),
    "pending_kept": ("{n} answer ({amount}) was without a cost (counted as {zero}).",
                     "{n} answers ({amount}) were without a cost (counted as {zero})."),
    "unpriced": ("{n} answer ({amount}) was without any known price (counted as {zero}).",
                 "{n} answers ({amount}) were without any known price (counted as {zero})."),
    "pruned": "Answers before {date} were pruned by the retention policy; their figures come from the daily totals that were kept.",
    "converted": "Amounts converted from US dollars at a fixed rate of 1 USD = {rate} {currency}.",
    "rounding": ("Amounts are rounded to the cent, half to even, from the exact figures; a table's total is rounded from "
                 "the exact sum, so its rows may differ from it by a cent. Charges are rounded line by line and their total "
                 "is the sum of those lines."),
    "byok_split": ("Usage {usage} = provider {provider} (answers through the team's own provider keys, billed by the providers) "
                   "+ OpenRouter {openrouter} (on those answers only its fee)."),
    "cache_saved": "Saved by prompt caching: {amount}.",
    "cache_cost": "Prompt caching cost {amount} more than it saved (cache writes).",
    # --- summary ---------------------------------------------------------------------------------
    "summary_rounding": ("The total due is the sum of the statements, each rounded to the cent line by line; it differs from "
                         "the usage total rounded once, plus fees, by {amount}."),
    "reconciliation": "Reconciliation with OpenRouter",
    "openrouter_billed": "OpenRouter billed the key",
    "attributed": "Attributed to answers in the ledger",
    "unattributed_spend": "Unattributed (titles, tags, follow-ups, other apps)",
    "shared_by_use": "Unattributed spend shared by use",
    "share_of_unattributed": "Share of unattributed",
    "reconciliation_only": ("Only OpenRouter's own charges are compared; for answers through the team's own provider keys that is "
                            "OpenRouter's fee, and the providers bill the rest."),
    "reconciliation_unknown": ("OpenRouter's figure for this period is unknown: the meter compares with periodic readings of what "
                               "OpenRouter counts for its key, and has none from both before and after this period."),
    "reconciliation_between": ("Compared between the readings of OpenRouter's running total at {start} and {end}; "
                               "answers billed close to a reading can fall on either side of it."),
}
