"""Learn from outcomes: how did the scored leads convert, and should the points change?

`leadscore calibrate` (connector/calibrate/cli.py) over `calibrate()` (core.py):

1. **Outcomes** (outcomes.py). A contact *converted* when it reached the model's SQL signal
   within the horizon (default 90 days) after its **first scored engagement** (its earliest event
   of a type a non-sales engagement rule scores). The conversion time is the first sales-signal
   event (`meeting_booked`, `deal_opened`: the rules named in `lifecycle.sql.events` or marked
   `sales_signal`) or, for a SQL lead status (`lifecycle.sql.lead_status`), its
   `lead_status_changed_at`, the date it entered a stage of SQL or later (HubSpot's
   `hs_lifecyclestage_<stage>_date`), or a Marketo status change activity, whichever is
   earliest; with none, a contact whose stage is SQL or later (opportunity, customer, ...) uses
   its `updated_at`, an upper bound, trusted only when it falls within the horizon (otherwise
   the outcome is unknown and the contact is left out). It
   did *not* convert when the horizon passed without that. Left out: contacts still inside their
   horizon (converted or not), contacts that converted before their first scored engagement, and
   contacts with no scored engagement.
2. **Replay** (observe.py). Each labelled contact is scored by the real engine at the end of each
   day it engaged, up to just before its conversion (or the end of its horizon), as a plain lead:
   which rules fired, the peak score, and whether it would have become an MQL.
3. **Lift** (stats.py): per rule, how often it fired, conversion with and without it (Wilson
   intervals), lift with a log-ratio interval; rules that never fire or point the wrong way are
   named.
4. **Refit** (fit.py): an L2 logistic regression (scikit-learn) on the rule firings of the older
   contacts (engagement units, profile rules, and the strong candidate rules of
   candidates.py) gives each a weight; the weights times one scale, rounded, are the suggested
   points, signs kept (disagreements reported, flips only with `--allow-sign-flips`), scaled so
   the threshold yields the requested MQL rate. Rare rules keep their points. Caps move with
   the points (caps.py); the profile's grade thresholds and per-grade score points follow from
   the refit fit points (grades.py).
5. **Comparison** (fit.py `metrics`) on the newer, held-out contacts: ROC AUC, precision and
   recall of "would have been an MQL", conversion by score band, current vs suggested, and a
   plain logistic regression on the same features and split (`baseline_auc`).
6. **Output**: a YAML file (suggest.py: the current file with only points, caps, grades,
   `lifecycle.mql.threshold`, the accounts section's contact-scale numbers and `version`
   changed and new rules appended, marked `# NEW`, comments kept), the terminal tables and an
   HTML fragment (render.py). Nothing is applied. The accounts section follows the new contact
   scale (accounts_refit.py): its numbers on the contact points' scale times the MQL
   threshold's change, and the MQA threshold that keeps the current MQAs on the stored data
   (scored by `simulate --model`'s machinery), each change and the MQAs before and after
   reported. The priority bands follow too (priority_refit.py): on the same machinery's
   scores, each band's minimum keeps the share of the contacts at or above it, a band at the
   MQL threshold follows the threshold (too few contacts: the minimums scaled), every band's
   minimum and contacts before and after reported.

7. **Accounts** (accounts.py, with account scoring on): account outcomes from the members'
   outcomes, each account replayed with the sync's account scorer; conversion by account grade
   and MQA, the lift of an MQA for its contacts, and a suggested MQA threshold (reported on the
   current model's points, never written to the model).

8. **Named scores** (target.py, `calibrate --score NAME`): a score of the model's `scores:` is
   calibrated as above on the model the sync scores it with (its own rules, window, decay and
   threshold; its own fit, else the shared one, kept), from the same outcomes; every edit of
   the suggested file lands in its `scores:` entry (and `version`).

Too little data (fewer than `min_conversions` conversions, or a held-out set that is too small
or lacks conversions or non-conversions) suggests nothing; the CLI then exits 3.

This package imports neither numpy nor scikit-learn at import time: they are the `calibrate`
extra, imported when a calibration runs (`require_sklearn()` names the extra when missing).
"""

from __future__ import annotations

from connector.calibrate.core import (
    CalibrationOptions,
    CalibrationResult,
    Comparison,
    Suggestion,
    calibrate,
    write_suggestion,
)
from connector.calibrate.fit import INSTALL_HINT, ModelMetrics, PointChange, require_sklearn
from connector.calibrate.outcomes import Outcome, SignalTypes, outcome_for
from connector.calibrate.render import (
    print_calibration,
    render_calibration_html,
    render_calibration_page,
)
from connector.calibrate.stats import RuleLift, lift_table

__all__ = [
    "INSTALL_HINT",
    "CalibrationOptions",
    "CalibrationResult",
    "Comparison",
    "ModelMetrics",
    "Outcome",
    "PointChange",
    "RuleLift",
    "SignalTypes",
    "Suggestion",
    "calibrate",
    "lift_table",
    "outcome_for",
    "print_calibration",
    "render_calibration_html",
    "render_calibration_page",
    "require_sklearn",
    "write_suggestion",
]
