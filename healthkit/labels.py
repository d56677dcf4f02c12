"""Display names for the codes that background jobs write as an event's actor.

Events written by a person carry the user (or their user name); events written by a job carry
a short code (`actor_label`), which staff and residents should read in their own language.
"""

from django.utils.translation import gettext_lazy as _

SYSTEM_ACTORS = {
    "engine": _("Popup engine"),
    "upstream": _("Upstream data feed"),
    "community": _("Community"),
    "resident": _("Resident"),
    "system": _("System"),
    "sla-sweep": _("SLA monitor"),
    "clearance": _("Community clearance"),
    "clearance-sweep": _("Community clearance"),
    "relief": _("Relief job"),
    "scenario": _("Simulator"),
    "venues": _("Venue exposure"),
    "venue-exposure": _("Venue exposure"),
}


def actor_name(label: str) -> str:
    """A job's display name for its code; anything else (a user name) as written."""
    return str(SYSTEM_ACTORS.get(label, label))


# The "four kinds" of drugs and the 11 symptoms, as the feeds send them (healthkit.ingest).
DRUG_CATEGORY_LABELS = {
    "fever": _("fever reducers"),
    "cough": _("cough medicine"),
    "anti_infection": _("antivirals or antibiotics"),
    "sore_throat": _("sore-throat medicine"),
}
SYMPTOM_LABELS = {
    "fever": _("fever"),
    "dry_cough": _("dry cough"),
    "fatigue": _("fatigue"),
    "sore_throat": _("sore throat"),
    "smell_taste_loss": _("loss of smell or taste"),
    "nasal_congestion": _("blocked nose"),
    "runny_nose": _("runny nose"),
    "conjunctivitis": _("conjunctivitis"),
    "muscle_pain": _("muscle pain"),
    "diarrhoea": _("diarrhoea"),
    "shortness_of_breath": _("shortness of breath"),
}

# Who acted, as a role a resident understands (never a staff user name).
ACTOR_ROLES = {
    "engine": _("the popup rules (automatically)"),
    "upstream": _("the upstream big-data match"),
    "community": _("the community"),
    "clearance": _("the community"),
    "clearance-sweep": _("the community"),
    "venues": _("the venue exposure check"),
    "venue-exposure": _("the venue exposure check"),
    "relief": _("the relief for stranded residents"),
    "sla-sweep": _("the response-time monitor"),
    "scenario": _("the simulator"),
}
USER_ROLES = {
    "community_worker": _("the community"),
    "operator": _("the 12345 hotline"),
    "supervisor": _("a supervisor"),
    "administrator": _("an administrator"),
    "venue_manager": _("the venue"),
}


def actor_role(actor: object | None, label: str = "") -> str:
    """The role that acted: the user's role if a person did, else the job's role."""
    role = getattr(actor, "role", None)
    if role in USER_ROLES:
        return str(USER_ROLES[role])
    if label in ACTOR_ROLES:
        return str(ACTOR_ROLES[label])
    return str(_("staff"))
