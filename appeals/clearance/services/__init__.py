"""Writes of community clearance: open a task, send the resident's link, record what they
confirm, investigate, decide and lift. Each function runs in one transaction and writes a
ClearanceEvent; SMS go through the healthkit outbox in that same transaction.

Split by concern, one file per sitting; every public name stays importable from here:
  common     the task state machine, its event log, the resident's SMS
  links      opening tasks, one-time links, what the resident submits through them
  decisions  the worker's decisions (accept/lift, reject, ask, resend, calls, reveal)
  measures   type-3 investigations, the checkpoint route, lifting once measures are done
  follow     the one boundary where a change to an appeal reaches its open task
  sweeps     set-based beat jobs
Imports go one way: common <- links <- decisions <- measures <- sweeps (links reaches
measures only lazily, to lift after a submission). Selectors never import services.
"""

from appeals.clearance.services.common import (
    check_not_closed,
    clearance_task_transition,
    closed_task_message,
    sla_hours_for,
)
from appeals.clearance.services.decisions import (
    clearance_accept,
    clearance_call_log,
    clearance_link_resend,
    clearance_reject,
    clearance_request_info,
    clearance_reveal,
    clearance_withdraw_for_appeal,
)
from appeals.clearance.services.follow import clearance_follow_appeal, lock_appeal_tasks
from appeals.clearance.services.links import (
    COMMITMENT_LETTER_VERSION,
    LinkRefused,
    SignatureMismatch,
    clearance_confirm_submit,
    clearance_link_issue,
    clearance_open_for_appeal,
    clearance_task_open,
    commitment_letter_text,
    letter_digest,
    link_url,
    signature_name_key,
    token_hash,
    unsign_token,
)
from appeals.clearance.services.measures import (
    clearance_checkpoint_preapprove,
    clearance_investigate,
    clearance_measures_complete,
)
from appeals.clearance.services.sweeps import (
    ReliefResult,
    clearance_link_catch_up,
    clearance_measures_sweep,
    clearance_popup_sweep,
    clearance_relief_sweep,
    clearance_send_first_link,
    clearance_sla_sweep,
)

__all__ = [
    "COMMITMENT_LETTER_VERSION",
    "LinkRefused",
    "ReliefResult",
    "SignatureMismatch",
    "check_not_closed",
    "closed_task_message",
    "clearance_accept",
    "clearance_call_log",
    "clearance_checkpoint_preapprove",
    "clearance_confirm_submit",
    "clearance_follow_appeal",
    "clearance_investigate",
    "clearance_link_catch_up",
    "clearance_link_issue",
    "clearance_link_resend",
    "clearance_measures_complete",
    "clearance_measures_sweep",
    "clearance_open_for_appeal",
    "clearance_popup_sweep",
    "clearance_reject",
    "clearance_relief_sweep",
    "clearance_request_info",
    "clearance_reveal",
    "clearance_send_first_link",
    "clearance_sla_sweep",
    "clearance_task_open",
    "clearance_task_transition",
    "clearance_withdraw_for_appeal",
    "commitment_letter_text",
    "letter_digest",
    "lock_appeal_tasks",
    "link_url",
    "signature_name_key",
    "sla_hours_for",
    "token_hash",
    "unsign_token",
]
