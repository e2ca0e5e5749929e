"""The documents' words in Spanish (the keys of ``en.py``)."""

WORDS = {
    # --- the frame: titles, facts, footer -------------------------------------------------------
    "statement_title": "Extracto de uso",
    "group_title": "Extracto de grupo: {name}",
    "summary_title": "Resumen de uso",
    "provisional_title": "{title} — provisional",
    "statement_no": "N.º de extracto",
    "statement_footer": "Extracto n.º {number}",
    "summary_footer": "Resumen n.º {number}",
    "page": "Página {page} de {pages}",
    "issued": "Emitido",
    "due": "Vencimiento",
    "period": "Periodo",
    "period_range": "del {start} al {end}",
    "tax_id": "NIF/IVA: {id}",
    "statement_for": "Extracto para",
    "groups_line": ("Grupo: {names}", "Grupos: {names}"),
    "group_of": ("Grupo de {n} miembro", "Grupo de {n} miembros"),
    # --- final or provisional ---------------------------------------------------------------------
    "final": ("<b>Definitivo.</b> Cerrado el {moment}: el periodo ha terminado y el coste de cada respuesta que contiene "
              "está fijado."),
    "provisional": "<b>Provisional:</b> {reasons}. Las cifras aún pueden cambiar.",
    "runs_until": "el periodo dura hasta el {date} inclusive",
    "awaiting": ("{n} respuesta ({amount} hasta ahora) sigue esperando la confirmación de su coste por OpenRouter",
                 "{n} respuestas ({amount} hasta ahora) siguen esperando la confirmación de su coste por OpenRouter"),
    "reasons_joiner": "; ",
    # --- table headings and rows ----------------------------------------------------------------
    "model": "Modelo",
    "answers": "Respuestas",
    "input_tokens": "Tokens de entrada",
    "output_tokens": "Tokens de salida",
    "cost": "Coste",
    "subtotal": "Subtotal",
    "total": "Total",
    "total_due": "Importe a pagar",
    "user": "Usuario",
    "member": "Miembro",
    "email": "Correo",
    "usage": "Uso",
    "charged": "Cobrado",
    "fees": "Comisiones",
    "group": "Grupo",
    "members": "Miembros",
    "budget": "Presupuesto",
    "spent": "Gastado",
    "used": "Usado",
    "not_billed": "no facturado",
    "unattributed": "No atribuido a un usuario",
    # --- sections --------------------------------------------------------------------------------
    "cost_per_day": "Coste por día",
    "no_usage": "Sin uso en este periodo.",
    "charges": "Cargos",
    "models": "Modelos",
    "top_models": "Modelos más usados",
    "by_group": "Por grupo",
    "by_group_note": "Miembros con uso en el periodo; un miembro de varios grupos cuenta en cada uno.",
    "budgets_heading": "Presupuestos frente al gasto real",
    "budgets_note": ("Gastado en el periodo propio de cada presupuesto (día, semana, mes o desde el inicio de una asignación "
                     "única) que contiene el final de este periodo."),
    "per_day": "por día",
    "per_week": "por semana",
    "per_month": "por mes",
    "one_off": "único",
    "shared_budget": "Presupuesto compartido",
    "shared_used": "Usado {when}: {spent} de {limit}{share}.",
    "share": " ({percent})",
    "since": "desde el {date}",
    "on_day": "el {date}",
    "week_from": "en la semana del {date}",
    "in_month": "en {month}",
    "group_rule": ("A cada miembro se le cobra como en su propio extracto: el uso, el recargo, la cuota fija y el cargo mínimo "
                   "se aplican a cada miembro por separado, y el importe a pagar del grupo es la suma de los importes de sus "
                   "miembros."),
    # --- charges ---------------------------------------------------------------------------------
    "markup": "Recargo {percent}",
    "base_fee": "Cuota fija",
    "minimum_charge": "Ajuste al cargo mínimo",
    # --- Open WebUI's own tasks --------------------------------------------------------------------
    "tasks": ("Tareas de Open WebUI (títulos, etiquetas, preguntas de seguimiento): {n} llamada, {amount}; incluido en el uso anterior.",
              "Tareas de Open WebUI (títulos, etiquetas, preguntas de seguimiento): {n} llamadas, {amount}; incluido en el uso anterior."),
    # --- prepaid balance -------------------------------------------------------------------------
    "prepaid_balance": "Saldo prepago",
    "opening_balance": "Saldo inicial",
    "top_up": "Recarga {date}",
    "adjustment": "Ajuste {date}",
    "closing_balance": "Saldo final",
    "balance_note": ("Cada importe se redondea al céntimo a partir de la cifra exacta; el saldo final se redondea a partir del "
                     "saldo exacto, por lo que las líneas pueden diferir de él en un céntimo."),
    # --- notes: where each cost came from ---------------------------------------------------------
    "confirmed_share": "El {percent} del uso se confirmó con el registro propio de OpenRouter de cada generación.",
    "inline_waiting": ("{n} respuesta ({amount}) figura con el coste informado junto a la respuesta, a la espera de la "
                       "confirmación de OpenRouter.",
                       "{n} respuestas ({amount}) figuran con el coste informado junto a la respuesta, a la espera de la "
                       "confirmación de OpenRouter."),
    "inline_kept": ("{n} respuesta ({amount}) procede del historial importado o de respuestas de las que OpenRouter no guarda "
                    "registro, al coste informado en su momento; no hay con qué confirmarla, así que se queda como está.",
                    "{n} respuestas ({amount}) proceden del historial importado o de respuestas de las que OpenRouter no guarda "
                    "registro, al coste informado en su momento; no hay con qué confirmarlas, así que se quedan como están."),
    "estimate_waiting": ("{n} respuesta ({amount}) se estimó a partir de los tokens y el precio del modelo, a la espera de la "
                         "confirmación de OpenRouter.",
                         "{n} respuestas ({amount}) se estimaron a partir de los tokens y el precio del modelo, a la espera de "
                         "la confirmación de OpenRouter."),
    "estimate_kept": ("{n} respuesta ({amount}) se estimó a partir de los tokens y el precio del modelo.",
                      "{n} respuestas ({amount}) se estimaron a partir de los tokens y el precio del modelo."),
    "pending_waiting": ("{n} respuesta ({amount}) espera la confirmación de OpenRouter (contada como {zero} por ahora).",
                        "{n} respuestas ({amount}) esperan la confirmación de OpenRouter (contadas como {zero} por ahora)."),
    "pending_kept": ("{n} respuesta ({amount}) no tiene coste (contada como {zero}).",
                     "{n} respuestas ({amount}) no tienen coste (contadas como {zero})."),
    "unpriced": ("{n} respuesta ({amount}) no tiene ningún precio conocido (contada como {zero}).",
                 "{n} respuestas ({amount}) no tienen ningún precio conocido (contadas como {zero})."),
    "pruned": ("Las respuestas anteriores al {date} se eliminaron según la política de conservación; sus cifras proceden de "
               "los totales diarios conservados."),
    "converted": "Importes convertidos desde dólares estadounidenses a un tipo fijo de 1 USD = {rate} {currency}.",
    "rounding": ("Los importes se redondean al céntimo, al par más cercano, a partir de las cifras exactas; el total de una "
                 "tabla se redondea a partir de la suma exacta, por lo que sus filas pueden diferir de él en un céntimo. "
                 "Los cargos se redondean línea a línea y su total es la suma de esas líneas."),
    "byok_split": ("Uso {usage} = proveedores {provider} (respuestas con las claves de proveedor propias del equipo, "
                   "facturadas por los proveedores) + OpenRouter {openrouter} (en esas respuestas, solo su comisión)."),
    "cache_saved": "Ahorrado con la caché de prompts: {amount}.",
    "cache_cost": "La caché de prompts costó {amount} más de lo que ahorró (escrituras en caché).",
    # --- summary ---------------------------------------------------------------------------------
    "summary_rounding": ("El importe a pagar es la suma de los extractos, cada uno redondeado al céntimo línea a línea; difiere "
                         "del total de uso redondeado una vez, más los cargos, en {amount}."),
    "reconciliation": "Conciliación con OpenRouter",
    "openrouter_billed": "Facturado por OpenRouter a la clave",
    "attributed": "Atribuido a respuestas en el registro",
    "unattributed_spend": "No atribuido (títulos, etiquetas, preguntas de seguimiento, otras aplicaciones)",
    "shared_by_use": "Gasto no atribuido repartido según el uso",
    "share_of_unattributed": "Parte de lo no atribuido",
    "reconciliation_only": ("Solo se comparan los cargos propios de OpenRouter; para las respuestas con las claves de proveedor "
                            "propias del equipo, es la comisión de OpenRouter, y los proveedores facturan el resto."),
    "reconciliation_unknown": ("Se desconoce la cifra de OpenRouter para este periodo: el medidor compara con lecturas "
                               "periódicas de lo que OpenRouter cuenta para su clave, y no tiene lecturas de antes y de "
                               "después de este periodo."),
    "reconciliation_between": ("Comparado entre las lecturas del total acumulado de OpenRouter del {start} y del {end}; las "
                               "respuestas facturadas cerca de una lectura pueden caer a uno u otro lado."),
}
