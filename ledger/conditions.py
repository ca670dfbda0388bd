"""The condition catalogue a claim's filing is checked against (docs/claims.md, "Filing"): a condition must fit
the claim's category, the member's sex and their age at diagnosis, so that a cancer is never filed as an accident
(which skips the waiting period), no one claims for an organ they do not have, and no adult claims a cancer of
early childhood."""

from __future__ import annotations

from typing import Final

ACCIDENT_CONDITIONS: Final = frozenset({
    "traffic_injury", "fall_injury", "burn", "drowning", "fracture", "poisoning", "electric_shock", "animal_bite",
    "accidental_injury",
})
"""Conditions an accident claim may name; an illness claim may name none of them."""

SEX_SPECIFIC: Final = {
    "cervical_cancer": "f", "ovarian_cancer": "f", "uterine_cancer": "f", "endometrial_cancer": "f",
    "prostate_cancer": "m", "testicular_cancer": "m",
}
"""Conditions only one sex can have (breast cancer is not one: men have it too)."""


def fits_category(condition: str, category: str) -> bool:
    """Whether a condition is of the claim's category: accidents name an injury, illnesses anything else."""
    return (condition in ACCIDENT_CONDITIONS) == (category == "accident")


def fits_sex(condition: str, sex: str) -> bool:
    """Whether a member of this sex can have the condition."""
    return SEX_SPECIFIC.get(condition, sex) == sex


AGE_LIMITED: Final = {
    "neuroblastoma": (0, 14), "retinoblastoma": (0, 9), "wilms_tumor": (0, 14), "hepatoblastoma": (0, 14),
    "medulloblastoma": (0, 39), "prostate_cancer": (18, 150), "alzheimers_disease": (30, 150),
}
"""Conditions diagnosed only within an age range (inclusive, years at diagnosis): the embryonal cancers of early
childhood, and conditions of adults."""


def fits_age(condition: str, age_years: int) -> bool:
    """Whether someone of this age at diagnosis can have the condition."""
    low, high = AGE_LIMITED.get(condition, (0, 150))
    return low <= age_years <= high
